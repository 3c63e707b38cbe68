use super::*;
use clap::Parser;
use std::time::Duration;

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    let mut argv = vec!["qraft"];
    argv.extend_from_slice(args);
    let flags = Flags::try_parse_from(argv).map_err(|e| invalid(e.to_string()))?;
    Config::from_flags(flags).map(|(c, _)| c)
}

fn err(args: &[&str]) -> String {
    match parse(args) {
        Ok(c) => panic!("expected an error for {args:?}, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn http_client_urls_are_accepted_as_in_etcd() {
    let c = parse(&[
        "--listen-client-urls",
        "http://127.0.0.1:2379,https://127.0.0.1:3379",
        "--advertise-client-urls",
        "http://10.0.0.1:2379",
    ])
    .unwrap();
    assert_eq!(
        join_list(&c.listen_client_urls),
        "http://127.0.0.1:2379,https://127.0.0.1:3379"
    );
    assert_eq!(join_list(&c.advertise_client_urls), "http://10.0.0.1:2379");
}

#[test]
fn no_flags_is_a_single_node_member_with_auto_tls() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.name, "default");
    assert_eq!(c.data_dir, PathBuf::from("default.qraft"));
    assert_eq!(join_list(&c.listen_client_urls), "https://127.0.0.1:2379");
    assert_eq!(join_list(&c.listen_peer_urls), "https://127.0.0.1:2380");
    assert!(
        c.listen_metrics_urls.is_empty(),
        "no metrics listener by default, as etcd"
    );
    assert!(
        c.listen_grpc_urls.is_empty(),
        "no extra gRPC listener unless asked (the client URLs serve gRPC)"
    );
    assert_eq!(c.initial_cluster.len(), 1);
    assert_eq!(c.initial_cluster_state, ClusterState::New);
    assert_eq!(c.election_ticks(), 10);
    assert_eq!(c.max_request_bytes, 1_572_864);
    assert_eq!(
        c.client_tls.source,
        TlsSource::Auto {
            dir: PathBuf::from("default.qraft/fixtures/client"),
            validity_years: 1
        }
    );
    assert!(c.peer_tls.client_cert_auth);
    assert!(!c.client_tls.client_cert_auth);
}

#[test]
fn three_member_cluster_agrees_on_ids() {
    let cluster = "a=https://127.0.0.1:12380,b=https://127.0.0.1:22380,c=https://127.0.0.1:32380";
    let ids: Vec<(u64, u64)> = ["a", "b", "c"]
        .iter()
        .zip(["12380", "22380", "32380"])
        .map(|(name, port)| {
            let url = format!("https://127.0.0.1:{port}");
            let c = parse(&[
                "--name",
                name,
                "--initial-cluster",
                cluster,
                "--listen-peer-urls",
                &url,
                "--initial-cluster-token",
                "t1",
            ])
            .unwrap();
            (c.member_id(), c.cluster_id())
        })
        .collect();
    assert_eq!(ids[0].1, ids[1].1);
    assert_eq!(ids[1].1, ids[2].1);
    assert_ne!(ids[0].0, ids[1].0);
    assert_ne!(ids[1].0, ids[2].0);
}

/// The IDs etcd gives the same flags: `etcd` with no flags (member 8e9e05c52164694d in cluster
/// cdf818194e3a8c32), and the cluster ID etcd 3.4's e2e suite expects in its protobuf output
/// (one member on https://localhost:20001, token `new`).
#[test]
fn ids_are_derived_as_etcd_derives_them() {
    let ids = |peer: &str, token: &str| {
        let c = parse(&["--listen-peer-urls", peer, "--initial-cluster-token", token]).unwrap();
        (c.member_id(), c.cluster_id())
    };
    assert_eq!(
        ids("http://localhost:2380", "etcd-cluster"),
        (0x8e9e_05c5_2164_694d, 0xcdf8_1819_4e3a_8c32)
    );
    assert_eq!(
        ids("https://localhost:20001", "new").1,
        0x34c2_1a2d_427d_b393
    );
}

#[test]
fn timing_rules_match_etcd() {
    assert!(
        err(&["--heartbeat-interval", "100", "--election-timeout", "400"])
            .contains("should be at least as 5 times as --heartbeat-interval[100ms]")
    );
    assert!(err(&["--election-timeout", "60000"]).contains("is too long"));
    assert!(err(&["--heartbeat-interval", "0"]).contains("greater than 0"));
    let c = parse(&["--heartbeat-interval", "50", "--election-timeout", "500"]).unwrap();
    assert_eq!(c.election_ticks(), 10);
}

#[test]
fn cluster_errors_name_the_flag() {
    assert!(
        err(&["--initial-cluster", "x=https://127.0.0.1:1"]).contains("couldn't find local name")
    );
    assert!(
        err(&["--initial-cluster", "default=https://127.0.0.1:1"])
            .contains("missing from --initial-advertise-peer-urls")
    );
    assert!(err(&["--initial-cluster-state", "old"]).contains("--initial-cluster-state"));
    assert!(err(&["--initial-cluster", "nonsense"]).contains("name=peer-url"));
    assert!(err(&["--listen-client-urls", "127.0.0.1:2379"]).contains("--listen-client-urls"));
    assert!(
        err(&[
            "--listen-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls",
            "https://127.0.0.1:2380"
        ])
        .contains("use one scheme for all")
    );
    assert!(err(&["--listen-client-urls", "https://example.com:2379"]).contains("IP address"));
    assert!(err(&["--listen-grpc-urls", "127.0.0.1:1"]).contains("--listen-grpc-urls"));
    assert!(err(&["--listen-grpc-urls", "https://example.com:1"]).contains("IP address"));
}

#[test]
fn grpc_urls_may_be_tls_or_explicit_plaintext() {
    let c = parse(&[
        "--listen-grpc-urls",
        "https://127.0.0.1:2379,http://127.0.0.1:23790",
    ])
    .unwrap();
    assert_eq!(
        join_list(&c.listen_grpc_urls),
        "https://127.0.0.1:2379,http://127.0.0.1:23790"
    );
}

/// As Go's flag package: a flag given twice is not an error, the last value wins (etcd's e2e
/// suite starts members with `--client-cert-auth` twice when it adds a CRL file).
#[test]
fn a_repeated_flag_keeps_its_last_value() {
    let c = parse(&["--name", "first", "--name", "second"]).unwrap();
    assert_eq!(c.name, "second");
    let twice = [
        "--cert-file",
        "c",
        "--key-file",
        "k",
        "--trusted-ca-file",
        "ca",
        "--client-cert-auth",
        "--client-cert-auth",
    ];
    assert!(parse(&twice).unwrap().client_tls.client_cert_auth);
    let off_then_on = ["--client-cert-auth=false", "--client-cert-auth"];
    let mut args = twice[..6].to_vec();
    args.extend(off_then_on);
    assert!(parse(&args).unwrap().client_tls.client_cert_auth);
}

#[test]
fn tls_errors() {
    assert!(err(&["--cert-file", "c.pem"]).contains("must be given together"));
    assert!(
        err(&["--cert-file", "c", "--key-file", "k", "--client-cert-auth"])
            .contains("needs --trusted-ca-file")
    );
    assert!(err(&["--peer-auto-tls=false"]).contains("--peer-auto-tls=false"));
    assert!(err(&["--peer-client-cert-auth=false"]).contains("always authenticate"));
    let c = parse(&[
        "--cert-file",
        "c",
        "--key-file",
        "k",
        "--trusted-ca-file",
        "ca",
        "--client-cert-auth",
    ])
    .unwrap();
    assert!(c.client_tls.client_cert_auth);
    let c = parse(&["--client-cert-auth=false"]).unwrap();
    assert!(!c.client_tls.client_cert_auth);
}

#[test]
fn log_level_and_emulated_version() {
    assert_eq!(
        parse(&["--log-level", "warn"]).unwrap().log_level,
        tracing::Level::WARN
    );
    assert!(err(&["--log-level", "loud"]).contains("--log-level"));
    assert_eq!(
        parse(&["--emulated-version", "0.1"])
            .unwrap()
            .emulated_version,
        Some(qraft_core::version::V0_1)
    );
    assert_eq!(
        parse(&["--emulated-version", "v0.2.7"])
            .unwrap()
            .emulated_version,
        Some(qraft_core::version::V0_2)
    );
    assert!(err(&["--emulated-version", "one"]).contains("major.minor"));
    assert_eq!(
        err(&["--emulated-version", "0.3"]),
        "invalid --emulated-version 0.3.0: a binary cannot emulate a newer version (binary version 0.2.0)"
    );
    assert_eq!(
        err(&["--emulated-version", "0.0"]),
        "invalid --emulated-version 0.0.0: only the previous minor version can be emulated (binary version 0.2.0)"
    );
    assert!(err(&["--emulated-version", "1.1"]).contains("different major"));
}

#[test]
fn yaml_file_in_etcds_format() {
    let flags = parse_file(
        "name: n1\n\
         data-dir: /tmp/n1\n\
         listen-client-urls: https://127.0.0.1:3379\n\
         heartbeat-interval: 50\n\
         election-timeout: 500\n\
         emulated-version: \"0.1\"\n\
         client-transport-security:\n  cert-file: c.pem\n  key-file: k.pem\n  \
         trusted-ca-file: ca.pem\n  client-cert-auth: true\n",
    )
    .unwrap();
    let c = Config::resolve(flags).unwrap();
    assert_eq!(c.name, "n1");
    assert_eq!(c.data_dir, PathBuf::from("/tmp/n1"));
    assert_eq!(c.heartbeat_interval_ms, 50);
    assert_eq!(c.emulated_version, Some(qraft_core::version::V0_1));
    assert!(c.client_tls.client_cert_auth);
    assert!(matches!(c.client_tls.source, TlsSource::Files { .. }));

    let typo = parse_file("nmae: x\n").unwrap_err().to_string();
    assert!(typo.contains("nmae"), "{typo}");
    assert!(parse_file("").is_ok());
}

#[test]
fn plaintext_grpc_listener_refuses_client_cert_auth() {
    let e = err(&[
        "--listen-grpc-urls",
        "http://127.0.0.1:2390",
        "--client-cert-auth",
    ]);
    assert!(e.contains("http://127.0.0.1:2390 is plaintext"), "{e}");
    assert!(e.contains("--client-cert-auth"), "{e}");
    // TLS gRPC with client-cert-auth, or plaintext without it, stay fine.
    parse(&[
        "--listen-grpc-urls",
        "https://127.0.0.1:2390",
        "--client-cert-auth",
    ])
    .unwrap();
    parse(&["--listen-grpc-urls", "http://127.0.0.1:2390"]).unwrap();
}

#[test]
fn grpc_keepalive_flags_with_etcds_defaults() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.grpc_keepalive.min_time, Duration::from_secs(5));
    assert_eq!(c.grpc_keepalive.interval, Some(Duration::from_secs(7200)));
    assert_eq!(c.grpc_keepalive.timeout, Some(Duration::from_secs(20)));
    let c = parse(&[
        "--grpc-keepalive-min-time",
        "1s",
        "--grpc-keepalive-interval",
        "0",
        "--grpc-keepalive-timeout",
        "3s",
    ])
    .unwrap();
    assert_eq!(c.grpc_keepalive.min_time, Duration::from_secs(1));
    assert_eq!(c.grpc_keepalive.interval, None);
    assert_eq!(c.grpc_keepalive.timeout, Some(Duration::from_secs(3)));
    assert!(err(&["--grpc-keepalive-timeout", "soon"]).contains("--grpc-keepalive-timeout"));
}

#[test]
fn crl_and_allowed_peer_names() {
    assert!(err(&["--client-crl-file", "crl.pem"]).contains("needs --client-cert-auth"));
    let c = parse(&[
        "--peer-crl-file",
        "peer.crl",
        "--peer-cert-allowed-cn",
        "member",
        "--peer-cert-allowed-hostname",
        "node1.example",
    ])
    .unwrap();
    assert_eq!(c.peer_tls.crl_file, Some(PathBuf::from("peer.crl")));
    assert_eq!(c.peer_tls.allowed_cn.as_deref(), Some("member"));
    assert_eq!(
        c.peer_tls.allowed_hostname.as_deref(),
        Some("node1.example")
    );
    let flags =
        parse_file("peer-transport-security:\n  allowed-cn: member\n").expect("allowed-cn in YAML");
    assert_eq!(
        Config::resolve(flags)
            .unwrap()
            .peer_tls
            .allowed_cn
            .as_deref(),
        Some("member")
    );
}

#[test]
fn watch_progress_notify_interval_as_etcd() {
    let interval = watch_progress_notify_ms;
    assert_eq!(interval(None, None).ok(), Some(600_000));
    assert_eq!(interval(Some("30s"), None).ok(), Some(30_000));
    assert_eq!(interval(None, Some("2m")).ok(), Some(120_000));
    assert_eq!(interval(Some("1s"), Some("2m")).ok(), Some(1_000));
    assert_eq!(interval(Some("0"), None).ok(), Some(600_000));
    assert_eq!(interval(Some("10ms"), None).ok(), Some(100));
    assert!(interval(Some("soon"), None).is_err());
    assert!(interval(None, Some("-1s")).is_err());
}

#[test]
fn etcd_style_durations() {
    assert_eq!(parse_duration_ms("0"), Some(0));
    assert_eq!(parse_duration_ms("0s"), Some(0));
    assert_eq!(parse_duration_ms("500ms"), Some(500));
    assert_eq!(parse_duration_ms("30s"), Some(30_000));
    assert_eq!(parse_duration_ms("5m"), Some(300_000));
    assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
    assert_eq!(parse_duration_ms("5"), None);
    assert_eq!(parse_duration_ms("s"), None);
    assert_eq!(parse_duration_ms("1d"), None);
}

#[test]
fn peer_verification_follows_etcds_peer_url_scheme_and_auto_tls() {
    let verify = |args: &[&str]| parse(args).unwrap().peer_verify;
    assert_eq!(verify(&[]), PeerVerify::Ca);
    let http = PeerVerify::AnyCertificate(PeerVerifyReason::HttpUrls);
    assert_eq!(
        verify(&["--listen-peer-urls", "http://127.0.0.1:2380"]),
        http
    );
    // Plaintext peers need no TLS flags, even `--peer-auto-tls=false` (etcd's plaintext).
    assert_eq!(
        verify(&[
            "--listen-peer-urls",
            "http://127.0.0.1:2380",
            "--peer-auto-tls=false"
        ]),
        http
    );
    let auto = PeerVerify::AnyCertificate(PeerVerifyReason::PeerAutoTls);
    assert_eq!(verify(&["--peer-auto-tls"]), auto);
    let files = [
        "--peer-auto-tls",
        "--peer-cert-file",
        "c",
        "--peer-key-file",
        "k",
    ];
    assert_eq!(verify(&files), PeerVerify::Ca);
}

/// etcd's split of the client port: HTTP/1.1 on `--listen-client-http-urls`, never on a port
/// that already serves gRPC.
#[test]
fn http_client_urls_need_ports_of_their_own() {
    let c = parse(&[
        "--listen-client-urls",
        "http://127.0.0.1:2379",
        "--listen-client-http-urls",
        "http://127.0.0.1:2390",
    ])
    .unwrap();
    assert_eq!(
        join_list(&c.listen_client_http_urls),
        "http://127.0.0.1:2390"
    );
    assert!(c.enable_grpc_gateway);
    assert!(
        !parse(&["--enable-grpc-gateway=false"])
            .unwrap()
            .enable_grpc_gateway
    );
    let same = err(&[
        "--listen-client-urls",
        "http://127.0.0.1:2379",
        "--listen-client-http-urls",
        "http://127.0.0.1:2379",
    ]);
    assert!(same.contains("also a gRPC client URL"), "{same}");
}

#[test]
fn max_txn_ops_as_etcd() {
    assert_eq!(parse(&[]).unwrap().max_txn_ops, 128);
    assert_eq!(parse(&["--max-txn-ops", "3"]).unwrap().max_txn_ops, 3);
    assert!(err(&["--max-txn-ops", "many"]).contains("--max-txn-ops"));
}

#[test]
fn strict_reconfig_check_as_etcd() {
    assert!(parse(&[]).unwrap().strict_reconfig_check);
    assert!(
        parse(&["--strict-reconfig-check"])
            .unwrap()
            .strict_reconfig_check
    );
    let off = parse(&["--strict-reconfig-check=false"]).unwrap();
    assert!(!off.strict_reconfig_check);
    assert!(
        !parse(&["--strict-reconfig-check=0"])
            .unwrap()
            .strict_reconfig_check
    );
    assert!(err(&["--strict-reconfig-check=maybe"]).contains("--strict-reconfig-check"));
    let from_file = Config::resolve(parse_file("strict-reconfig-check: false\n").unwrap());
    assert!(!from_file.unwrap().strict_reconfig_check);
}

#[test]
fn tls_versions_and_cipher_suites_as_etcd() {
    use qraft_io::tls::TlsVersion;
    let c = parse(&[]).unwrap();
    assert_eq!(
        (c.tcp_tls.min, c.tcp_tls.max),
        (TlsVersion::Tls12, TlsVersion::Tls13)
    );
    assert!(c.tcp_tls.tls12_suites.is_empty());
    let c = parse(&["--tls-min-version=TLS1.3"]).unwrap();
    assert_eq!(c.tcp_tls.min, TlsVersion::Tls13);
    let suites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
    let c = parse(&["--cipher-suites", suites, "--tls-max-version=TLS1.2"]).unwrap();
    assert_eq!(c.tcp_tls.tls12_suites.len(), 2);
    assert_eq!(c.tcp_tls.max, TlsVersion::Tls12);
    let e = err(&["--cipher-suites", "TLS_FOO"]);
    assert!(e.contains("unexpected TLS cipher suite \"TLS_FOO\""), "{e}");
    let e = err(&["--cipher-suites", "TLS_RSA_WITH_AES_128_CBC_SHA"]);
    assert!(e.contains("not supported by qraft"), "{e}");
    let e = err(&["--tls-min-version=TLS1.3", "--cipher-suites", suites]);
    assert!(e.contains("only TLS1.3 is enabled"), "{e}");
    assert!(err(&["--tls-max-version=TLS1.0"]).contains("must be one of: TLS1.2, TLS1.3"));
    let file = parse_file(
        "cipher-suites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\ntls-max-version: TLS1.2\n",
    )
    .unwrap();
    let c = Config::resolve(file).unwrap();
    assert_eq!(c.tcp_tls.tls12_suites.len(), 1);
    assert_eq!(c.tcp_tls.max, TlsVersion::Tls12);
}
