//! One set of client URLs for every client, as etcd has: each `--listen-client-urls` URL serves
//! etcd's v3 gRPC API over TCP (beside qraft's QUIC protocol on the UDP port of the same number
//! for `https://` URLs), so the real etcdctl 3.4 reaches a cluster through the URLs the member
//! list advertises — `--cluster` included — with no `--listen-grpc-urls`. An `http://` client
//! URL serves plaintext gRPC only.

use std::path::Path;
use std::time::{Duration, Instant};

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::etcdctl::{ETCDCTL, Etcdctl};
use serde_json::Value;

fn require_etcdctl() {
    assert!(
        Path::new(ETCDCTL).exists(),
        "{ETCDCTL} is missing: install Debian's etcd-client (bash .ci/test does)"
    );
}

/// Retries `etcdctl endpoint health` (bounded) until it succeeds; returns its output.
fn wait_healthy(etcdctl: &Etcdctl, args: &[&str], cluster: &Cluster) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut all = vec!["endpoint", "health"];
    all.extend_from_slice(args);
    loop {
        let output = etcdctl.run(&all, None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.success() {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "etcdctl endpoint health never succeeded: {text}\nmember log:\n{}",
            cluster.nodes[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn etcdctl_reaches_every_member_through_the_advertised_client_urls() {
    require_etcdctl();
    let cluster = Cluster::start(3, ClusterOptions::default());
    // Only the first member's client URL: everything else is discovered from the member list.
    let first = cluster.nodes[0].client_url();
    let etcdctl = Etcdctl::tls(vec![first], cluster.ca_dir.join("ca.crt"));

    let health = wait_healthy(&etcdctl, &["--cluster"], &cluster);
    for node in &cluster.nodes {
        assert!(
            health.contains(&format!("{} is healthy", node.client_url())),
            "{} missing from `endpoint health --cluster`: {health}",
            node.client_url()
        );
    }

    let members = etcdctl
        .json(&["member", "list"], None)
        .expect("member list");
    let mut advertised: Vec<String> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .flat_map(|m| m["clientURLs"].as_array().cloned().unwrap_or_default())
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect();
    advertised.sort();
    let mut expected: Vec<String> = cluster.nodes.iter().map(|n| n.client_url()).collect();
    expected.sort();
    assert_eq!(advertised, expected);

    // Writes and reads through the discovered endpoints: every member's TCP side is etcd's API.
    assert!(etcdctl.succeeds(&["put", "drop-in", "yes"]));
    let status = etcdctl
        .json(&["endpoint", "status", "--cluster"], None)
        .expect("endpoint status --cluster");
    assert_eq!(status.as_array().map(Vec::len), Some(3), "{status}");
    let got = etcdctl.json(&["get", "drop-in"], None).expect("get");
    assert_eq!(got["count"], Value::from(1), "{got}");

    // The QUIC side of the same URLs still serves qraft's own clients.
    let client = cluster.client(1);
    let range = qraft_io::runtime::block_on(client.get("drop-in")).expect("QUIC get");
    assert_eq!(range.kvs.len(), 1);
}

#[test]
fn an_http_client_url_serves_plaintext_grpc() {
    require_etcdctl();
    let cluster = Cluster::spawn_with(1, ClusterOptions::default(), |node| {
        node.client_scheme = "http";
    });
    let url = cluster.nodes[0].client_url();
    assert!(url.starts_with("http://"), "{url}");
    let etcdctl = Etcdctl::plaintext(vec![url.clone()]);
    let health = wait_healthy(&etcdctl, &["--cluster"], &cluster);
    assert!(health.contains(&format!("{url} is healthy")), "{health}");
    assert!(etcdctl.succeeds(&["put", "plain", "text"]));
    let got = etcdctl.json(&["get", "plain"], None).expect("get");
    assert_eq!(got["count"], Value::from(1), "{got}");
    let log = std::fs::read_to_string(cluster.root.join("m0.log")).unwrap_or_default();
    assert!(
        log.contains("serving plaintext gRPC only on this client URL"),
        "the member should say why its http:// client URL has no QUIC: {log}"
    );
}
