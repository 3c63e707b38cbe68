//! `--tls-min-version`, `--tls-max-version` and `--cipher-suites` on the TCP client listener,
//! probed with `openssl s_client` as a client would: TLS 1.2 is accepted by default (etcd 3.6's
//! minimum is TLS1.2), refused with `--tls-min-version=TLS1.3`; TLS 1.3 refused with
//! `--tls-max-version=TLS1.2`; a cipher suite list restricts TLS 1.2 and leaves TLS 1.3 alone.
//! The default and the suite list are checked side by side with etcd 3.4 (`--auto-tls`, which
//! has `--cipher-suites` but not the version flags).

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::etcd::{EtcdProcess, require_etcd};

const ECDSA_AES128: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";

/// The handshakes a client tries, as `openssl s_client` arguments (OpenSSL's suite names).
const PROBES: &[(&str, &[&str])] = &[
    ("TLS 1.2", &["-tls1_2"]),
    ("TLS 1.3", &["-tls1_3"]),
    (
        "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256",
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    ),
    (
        "TLS 1.2 ECDHE-ECDSA-AES256-GCM-SHA384",
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
    ),
];

fn require_openssl() {
    let found = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "openssl is needed to probe TLS handshakes");
}

/// Whether a handshake with `args` completes against `addr`.
fn handshake(addr: &str, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(["s_client", "-connect", addr])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Every probe with its outcome.
fn probe(addr: &str) -> Vec<String> {
    (PROBES.iter())
        .map(|(what, args)| {
            let outcome = if handshake(addr, args) {
                "accepted"
            } else {
                "refused"
            };
            format!("{what}: {outcome}")
        })
        .collect()
}

/// etcd 3.4 with `--auto-tls` (an ECDSA P-256 certificate, as qraft's auto-TLS) and `flags`,
/// once it completes a TLS 1.3 handshake.
fn etcd_auto_tls(flags: &[&str]) -> EtcdProcess {
    EtcdProcess::start_auto_tls(flags, |addr| handshake(addr, &["-tls1_3"]))
}

fn qraft_probe(flags: &[&str]) -> Vec<String> {
    let options = ClusterOptions {
        extra_args: flags.iter().map(|f| f.to_string()).collect(),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start(1, options);
    let node = &cluster.nodes[0];
    probe(&format!("{}:{}", node.host, node.client_port))
}

#[test]
fn default_and_cipher_suites_as_etcd() {
    require_openssl();
    require_etcd("default_and_cipher_suites_as_etcd");
    let suites = format!("--cipher-suites={ECDSA_AES128}");
    let qraft = [qraft_probe(&[]), qraft_probe(&[&suites])];
    let etcd = [
        probe(&etcd_auto_tls(&[]).client_addr),
        probe(&etcd_auto_tls(&[&suites]).client_addr),
    ];
    assert_eq!(
        etcd[1],
        [
            "TLS 1.2: accepted",
            "TLS 1.3: accepted",
            "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256: accepted",
            "TLS 1.2 ECDHE-ECDSA-AES256-GCM-SHA384: refused",
        ]
    );
    assert_eq!(qraft, etcd);
}

#[test]
fn tls_version_bounds() {
    require_openssl();
    let min13 = qraft_probe(&["--tls-min-version=TLS1.3"]);
    assert_eq!(&min13[..2], ["TLS 1.2: refused", "TLS 1.3: accepted"]);
    let max12 = qraft_probe(&["--tls-max-version=TLS1.2"]);
    assert_eq!(&max12[..2], ["TLS 1.2: accepted", "TLS 1.3: refused"]);
}
