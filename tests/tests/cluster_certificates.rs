//! Certificates with real `qraft` processes and the real etcdctl (issue 16, items 4, 6, 8;
//! issue 24, item 7): with `--client-cert-auth` a request without a token runs as the client
//! certificate's common name, on the gRPC and QUIC listeners, unary calls and watch streams
//! alike; `--client-crl-file` and
//! `--peer-crl-file` refuse revoked certificates; `--peer-cert-allowed-cn` refuses peers with
//! another name; a self-signed CA certificate presented as a client certificate is refused with
//! a log line naming the reason.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qraft_io::client::{Client, ClientConfig, ClientError};
use qraft_io::runtime;
use qraft_io::tls::{ALPN_PEER, Identity, roots_from_pem_file};
use qraft_proto::etcdserverpb::WatchCreateRequest;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::{member_log, wait_until};
use qraft_tests::etcd_cluster::free_port;
use qraft_tests::etcdctl::ETCDCTL;
use qraft_tests::quic_raw;
use rcgen::{
    CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};

fn ca_issuer(ca_dir: &Path) -> Issuer<'static, KeyPair> {
    let key = KeyPair::from_pem(&std::fs::read_to_string(ca_dir.join("ca.key")).expect("ca.key"))
        .expect("CA key");
    Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(ca_dir.join("ca.crt")).expect("ca.crt"),
        key,
    )
    .expect("CA issuer")
}

/// A certificate with common name `cn` and serial `serial` from the cluster CA, usable as
/// TLS client and (for 127.0.0.1) server: written to `<dir>/<file>.crt|.key`.
fn issue(ca_dir: &Path, dir: &Path, file: &str, cn: &str, serial: u64) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.serial_number = Some(SerialNumber::from(serial));
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca_issuer(ca_dir)).expect("sign");
    let (crt, key_path) = (
        dir.join(format!("{file}.crt")),
        dir.join(format!("{file}.key")),
    );
    std::fs::write(&crt, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (crt, key_path)
}

/// A CRL from the cluster CA revoking `serials`, as PEM at `path`.
fn revoke(ca_dir: &Path, path: &Path, serials: &[u64]) {
    let now = time::OffsetDateTime::now_utc();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(30),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: now - time::Duration::minutes(5),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca_issuer(ca_dir))
    .expect("sign CRL");
    std::fs::write(path, crl.pem().expect("CRL PEM")).expect("write CRL");
}

/// etcdctl over TLS with a client certificate: (success, stdout + stderr).
fn etcdctl(addr: &str, ca: &Path, cert: &(PathBuf, PathBuf), args: &[&str]) -> (bool, String) {
    let out = Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=https://{addr}"))
        .arg(format!("--cacert={}", ca.display()))
        .arg(format!("--cert={}", cert.0.display()))
        .arg(format!("--key={}", cert.1.display()))
        .args(["--command-timeout=5s", "--dial-timeout=3s"])
        .args(args)
        .output()
        .expect("run etcdctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `etcdctl watch` with a client certificate, running `action` once the watch had a second to
/// start; stops when stdout holds `until` or `wait` passed: (exit code, `None` if it was still
/// watching, stdout, stderr).
fn etcdctl_watch(
    addr: &str,
    ca: &Path,
    cert: &(PathBuf, PathBuf),
    args: &[&str],
    until: &str,
    action: impl FnOnce(),
) -> (Option<i32>, String, String) {
    let wait = Duration::from_secs(10);
    let mut child = Command::new(ETCDCTL)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=https://{addr}"))
        .arg(format!("--cacert={}", ca.display()))
        .arg(format!("--cert={}", cert.0.display()))
        .arg(format!("--key={}", cert.1.display()))
        .arg("--dial-timeout=3s")
        .arg("watch")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdctl watch");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    action();
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut code = None;
    while Instant::now() < deadline {
        while let Ok(chunk) = rx.try_recv() {
            out.extend(chunk);
        }
        if let Ok(Some(status)) = child.try_wait() {
            code = Some(status.code().unwrap_or(-1));
            break;
        }
        if String::from_utf8_lossy(&out).contains(until) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if code.is_none() {
        let _ = child.kill();
    }
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    let _ = child.wait();
    let _ = reader.join();
    while let Ok(chunk) = rx.try_recv() {
        out.extend(chunk);
    }
    (code, String::from_utf8_lossy(&out).into_owned(), err)
}

fn quic_client(c: &Cluster, cert: &(PathBuf, PathBuf)) -> Result<Client, String> {
    let mut config = ClientConfig::from_files(
        vec![c.nodes[0].client_url()],
        &c.ca_dir.join("ca.crt"),
        Some((&cert.0, &cert.1)),
    )
    .map_err(|e| e.to_string())?;
    config.request_timeout = Duration::from_secs(3);
    config.dial_timeout = Duration::from_secs(2);
    config.max_retries = 1;
    runtime::block_on(Client::connect(config)).map_err(|e| e.to_string())
}

fn require_etcdctl() {
    assert!(
        Path::new(ETCDCTL).exists(),
        "{ETCDCTL} is missing (apt-get install etcd-client)"
    );
}

#[test]
fn client_certificates_name_users_and_revoked_ones_are_refused() {
    require_etcdctl();
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut certs = Vec::new();
    let mut c = Cluster::spawn_with(1, ClusterOptions::default(), |node| {
        let root = node.data_dir.parent().expect("cluster root").to_path_buf();
        let ca_dir = root.join("ca");
        let alice = issue(&ca_dir, &root, "alice", "alice", 0x1001);
        let nobody = issue(&ca_dir, &root, "nobody", "nobody", 0x1002);
        // root's name, but revoked.
        let revoked = issue(&ca_dir, &root, "revoked-root", "root", 0x1003);
        let crl = root.join("client.crl");
        revoke(&ca_dir, &crl, &[0x1003]);
        certs = vec![alice, nobody, revoked];
        node.extra_args.extend([
            "--client-cert-auth".into(),
            format!("--client-crl-file={}", crl.display()),
            format!("--listen-grpc-urls=https://{grpc}"),
        ]);
    });
    let root_cert = (c.ca_dir.join("client.crt"), c.ca_dir.join("client.key"));
    c.client_cert = Some(root_cert.clone());
    c.wait_for_writes(Duration::from_secs(30));
    let (alice, nobody, revoked) = (&certs[0], &certs[1], &certs[2]);
    let ca = c.ca_dir.join("ca.crt");
    let run = |cert: &(PathBuf, PathBuf), args: &[&str]| etcdctl(&grpc, &ca, cert, args);

    // Users and permissions, set up by root before auth is on.
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["user", "add", "alice", "--new-user-password=alicepw"],
        &["role", "add", "reader"],
        &[
            "role",
            "grant-permission",
            "reader",
            "read",
            "a/",
            "--prefix=true",
        ],
        &["user", "grant-role", "alice", "reader"],
        &["put", "a/1", "one"],
        &["put", "b/1", "secret"],
        &["auth", "enable"],
    ] {
        let (ok, out) = run(&root_cert, args);
        assert!(ok, "etcdctl {args:?}: {out}");
    }

    // root by certificate, no token, no password.
    let (ok, out) = run(&root_cert, &["put", "a/2", "two"]);
    assert!(ok, "root by certificate CN: {out}");
    // alice may read a/ only.
    let (ok, out) = run(alice, &["get", "a/1", "--print-value-only"]);
    assert!(ok && out.trim() == "one", "alice reads a/1: {out}");
    let (ok, out) = run(alice, &["put", "a/3", "x"]);
    assert!(
        !ok && out.contains("permission denied"),
        "alice writes: {out}"
    );
    let (ok, out) = run(alice, &["get", "b/1"]);
    assert!(
        !ok && out.contains("permission denied"),
        "alice reads b/: {out}"
    );
    // Watch streams run as the certificate's user too: alice's watch on a/ gets root's
    // write; hers on b/ is refused at once, as etcd refuses a watch without read permission.
    let (code, out, err) = etcdctl_watch(&grpc, &ca, alice, &["a/w"], "uno", || {
        let (ok, out) = run(&root_cert, &["put", "a/w", "uno"]);
        assert!(ok, "root puts a/w: {out}");
    });
    assert_eq!(
        (code, out.as_str()),
        (None, "PUT\na/w\nuno\n"),
        "alice watches a/w; stderr {err:?}"
    );
    let (code, out, err) = etcdctl_watch(&grpc, &ca, alice, &["b/1"], "secret", || {
        let (ok, out) = run(&root_cert, &["put", "b/1", "secret"]);
        assert!(ok, "root puts b/1: {out}");
    });
    assert_eq!(
        code,
        Some(5),
        "alice watches b/1: stdout {out:?} stderr {err:?}"
    );
    assert!(
        out.is_empty() && err.contains("etcdserver: permission denied"),
        "alice watches b/1: stdout {out:?} stderr {err:?}"
    );
    // A certificate naming no user gets nothing.
    let (ok, out) = run(nobody, &["get", "a/1"]);
    assert!(
        !ok && out.contains("permission denied"),
        "nobody reads: {out}"
    );
    // A revoked certificate is refused in the handshake, whatever its name.
    let (ok, out) = run(revoked, &["get", "a/1"]);
    assert!(!ok, "revoked certificate served over gRPC: {out}");

    // The QUIC listener the same way.
    let client = quic_client(&c, alice).expect("alice connects");
    let got = runtime::block_on(client.get("a/1")).expect("alice reads over QUIC");
    assert_eq!(
        got.kvs.first().map(|kv| kv.value.to_vec()),
        Some(b"one".to_vec())
    );
    let denied = runtime::block_on(client.put_kv("a/4", "x")).expect_err("alice writes over QUIC");
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    // And her watches: created on a/, refused on b/.
    for (key, refused) in [("a/1", false), ("b/1", true)] {
        let first = runtime::block_on(runtime::timeout(Duration::from_secs(10), async {
            let mut watch = client
                .watch(WatchCreateRequest {
                    key: key.as_bytes().to_vec().into(),
                    ..Default::default()
                })
                .await?;
            watch.next().await.unwrap_or(Err(ClientError::StreamClosed))
        }))
        .expect("a watch answer within 10 s")
        .expect("alice's watch over QUIC");
        assert!(first.created, "alice watches {key} over QUIC: {first:?}");
        assert_eq!(
            first.canceled, refused,
            "alice watches {key} over QUIC: {first:?}"
        );
        if refused {
            assert!(
                first
                    .cancel_reason
                    .contains("etcdserver: permission denied"),
                "{first:?}"
            );
        }
    }
    client.close();
    let refused = quic_client(&c, revoked)
        .and_then(|client| {
            runtime::block_on(client.get("a/1"))
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .expect_err("revoked certificate served over QUIC");
    println!("revoked over QUIC: {refused}");

    let log = member_log(&c, 0);
    assert!(
        log.lines()
            .any(|l| l.contains("client certificate refused") && l.contains("revoked")),
        "no log line for the revoked certificate:\n{log}"
    );
}

#[test]
fn peer_port_refuses_revoked_and_unlisted_certificates() {
    let mut c = Cluster::spawn_with(1, ClusterOptions::default(), |node| {
        let root = node.data_dir.parent().expect("cluster root").to_path_buf();
        let crl = root.join("peer.crl");
        revoke(&root.join("ca"), &crl, &[0x2002]);
        node.extra_args.extend([
            format!("--peer-crl-file={}", crl.display()),
            "--peer-cert-allowed-cn=member-a".into(),
        ]);
    });
    c.wait_for_writes(Duration::from_secs(30));
    let dir = c.root.clone();
    let allowed = issue(&c.ca_dir, &dir, "member-a", "member-a", 0x2001);
    let revoked = issue(&c.ca_dir, &dir, "member-a-old", "member-a", 0x2002);
    let intruder = issue(&c.ca_dir, &dir, "intruder", "intruder", 0x2003);
    let roots = roots_from_pem_file(&c.ca_dir.join("ca.crt")).expect("CA");
    let peer = format!("127.0.0.1:{}", c.nodes[0].peer_port)
        .parse()
        .expect("peer addr");
    let dial = |cert: &(PathBuf, PathBuf)| {
        let identity = Identity::from_pem_files(&cert.0, &cert.1).expect("identity");
        let mut tls = qraft_io::tls::peer_client_config(
            &identity,
            &roots.clone().into(),
            &Default::default(),
        )
        .expect("peer TLS");
        tls.alpn_protocols = vec![ALPN_PEER.to_vec()];
        let endpoint = quic_raw::endpoint(tls);
        runtime::block_on(quic_raw::connect(&endpoint, peer)).map(drop)
    };
    dial(&allowed).expect("the allowed, unrevoked peer certificate");
    dial(&revoked).expect_err("a revoked peer certificate was accepted");
    dial(&intruder).expect_err("a peer certificate with another CN was accepted");
    wait_until("the refusals in the log", Duration::from_secs(5), || {
        let log = member_log(&c, 0);
        let refused = |what: &str| {
            log.lines()
                .any(|l| l.contains("peer certificate refused") && l.contains(what))
        };
        if refused("revoked") && refused("allowed CN") {
            Ok(())
        } else {
            Err(log.lines().rev().take(10).collect::<Vec<_>>().join("\n"))
        }
    });
}

/// etcd's (Go's) rule: a self-signed CA certificate, trusted as the client CA and presented as
/// the client certificate, is accepted (WebPKI alone refuses it: CA:TRUE); a self-signed CA
/// certificate that is not the trusted one stays refused, with the reason in the log.
#[test]
fn a_trusted_ca_is_accepted_as_its_own_client_certificate_and_other_cas_are_refused() {
    require_etcdctl();
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut made = None;
    let mut c = Cluster::spawn_with(1, ClusterOptions::default(), |node| {
        let root = node.data_dir.parent().expect("cluster root").to_path_buf();
        let trusted = self_signed_ca(&root, "self", "root");
        let stranger = self_signed_ca(&root, "stranger", "root");
        let server = issue(&root.join("ca"), &root, "server", "server", 0x3001);
        node.extra_args.extend([
            format!("--cert-file={}", server.0.display()),
            format!("--key-file={}", server.1.display()),
            format!("--trusted-ca-file={}", trusted.0.display()),
            "--client-cert-auth".into(),
            format!("--listen-grpc-urls=https://{grpc}"),
        ]);
        made = Some((trusted, stranger));
    });
    let (trusted, stranger) = made.expect("certificates made");
    c.client_cert = Some(trusted.clone());
    wait_until("the member serves", Duration::from_secs(30), || {
        if member_log(&c, 0).contains("serving") {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    let ca = c.ca_dir.join("ca.crt");
    let (ok, out) = etcdctl(&grpc, &ca, &trusted, &["put", "k", "v"]);
    assert!(ok, "the trusted CA's own certificate was refused: {out}");
    let (ok, out) = etcdctl(&grpc, &ca, &stranger, &["put", "k", "v"]);
    assert!(
        !ok,
        "an untrusted self-signed CA certificate was accepted: {out}"
    );
    wait_until("the reason in the log", Duration::from_secs(5), || {
        let log = member_log(&c, 0);
        if log
            .lines()
            .any(|l| l.contains("client certificate refused") && l.contains("CA certificate"))
        {
            Ok(())
        } else {
            Err(log.lines().rev().take(10).collect::<Vec<_>>().join("\n"))
        }
    });
}

/// A self-signed CA certificate with subject CN `cn` (client authentication allowed), written
/// as `<name>.crt` / `<name>.key` under `dir`.
fn self_signed_ca(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    let paths = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&paths.0, cert.pem()).expect("write");
    std::fs::write(&paths.1, key.serialize_pem()).expect("write");
    paths
}
