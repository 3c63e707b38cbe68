//! etcd's `--listen-client-http-urls` and `--enable-grpc-gateway`: by default every client URL
//! serves gRPC and HTTP/1.1 (the JSON gateway, the probes) on one port; with
//! `--listen-client-http-urls` HTTP/1.1 moves to those URLs and the client URLs serve gRPC only;
//! `--enable-grpc-gateway=false` takes `/v3/...` away and leaves the probes.

use std::path::Path;
use std::time::{Duration, Instant};

use qraft_tests::cluster::{Cluster, ClusterOptions, free_tcp_port};
use qraft_tests::etcdctl::{ETCDCTL, Etcdctl};
use qraft_tests::http::{HttpResponse, get, post_json};

fn require_etcdctl() {
    assert!(
        Path::new(ETCDCTL).exists(),
        "{ETCDCTL} is missing: install Debian's etcd-client (bash .ci/test does)"
    );
}

/// GET `path` until the member answers it (bounded): the listeners start after the member.
fn get_when_up(addr: &str, path: &str, cluster: &Cluster) -> HttpResponse {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match get(addr, path) {
            Ok(response) => return response,
            Err(error) => assert!(
                Instant::now() < deadline,
                "GET {path} on {addr} never answered: {error}\n{}",
                cluster.nodes[0].log_tail()
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn http_client_urls_take_http_and_leave_grpc_on_the_client_urls() {
    require_etcdctl();
    let http = format!("127.0.0.1:{}", free_tcp_port());
    let plain_grpc = format!("127.0.0.1:{}", free_tcp_port());
    let cluster = Cluster::spawn_with(1, ClusterOptions::default(), |node| {
        node.extra_args.extend([
            format!("--listen-client-http-urls=http://{http}"),
            format!("--listen-grpc-urls=http://{plain_grpc}"),
        ]);
    });

    // HTTP/1.1 on the HTTP URL: probes and the JSON gateway.
    let health = get_when_up(&http, "/health", &cluster);
    assert_eq!(health.status, 200, "{health:?}");
    assert!(health.body.contains(r#""health":"true""#), "{health:?}");
    let put = post_json(&http, "/v3/kv/put", r#"{"key":"YQ==","value":"Yg=="}"#).expect("put");
    assert_eq!(put.status, 200, "{put:?}");

    // gRPC on the client URLs: etcdctl reads what the gateway wrote.
    let etcdctl = Etcdctl::plaintext(vec![format!("http://{plain_grpc}")]);
    let got = etcdctl.json(&["get", "a"], None).expect("etcdctl get");
    assert_eq!(got["kvs"][0]["value"], "Yg==", "{got}");
    let tls = Etcdctl::tls(
        vec![cluster.nodes[0].client_url()],
        cluster.ca_dir.join("ca.crt"),
    );
    assert!(tls.succeeds(&["put", "c", "d"]));

    // Neither takes the other's protocol any more.
    assert!(
        get(&plain_grpc, "/health").is_err_or_not_ok(),
        "a gRPC-only client URL answered HTTP/1.1"
    );
    let wrong = Etcdctl::plaintext(vec![format!("http://{http}")]);
    let (code, out, err) = wrong.run_for(&["get", "a"], Duration::from_secs(20));
    assert_ne!(
        code,
        Some(0),
        "the HTTP/1.1-only URL answered gRPC: {out}{err}"
    );
}

#[test]
fn without_the_gateway_v3_paths_are_not_found_and_probes_stay() {
    let plain = format!("127.0.0.1:{}", free_tcp_port());
    let cluster = Cluster::spawn_with(1, ClusterOptions::default(), |node| {
        node.extra_args.extend([
            "--enable-grpc-gateway=false".to_string(),
            format!("--listen-grpc-urls=http://{plain}"),
        ]);
    });
    let health = get_when_up(&plain, "/health", &cluster);
    assert_eq!(health.status, 200, "{health:?}");
    let range = post_json(&plain, "/v3/kv/range", r#"{"key":"YQ=="}"#).expect("range");
    assert_eq!(range.status, 404, "{range:?}");
}

trait NotOk {
    fn is_err_or_not_ok(&self) -> bool;
}

impl NotOk for std::io::Result<HttpResponse> {
    /// The connection was closed or refused, or answered something other than 200.
    fn is_err_or_not_ok(&self) -> bool {
        !matches!(self, Ok(response) if response.status == 200)
    }
}
