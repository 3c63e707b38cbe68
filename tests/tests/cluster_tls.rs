//! Certificate checks with real `qraft` processes: with `--client-cert-auth` a client without
//! a certificate, or with one from another CA, is refused while one from the cluster's CA is
//! served; a member whose peer certificate comes from another CA cannot take part in the
//! cluster (its connections are refused, it never learns a leader, never applies, never
//! serves clients — it cannot publish itself), the others
//! keep working, and with its proper certificate back it catches up.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use qraft_io::client::{Client, ClientConfig};
use qraft_io::runtime;
use qraft_io::tls::ensure_auto_tls;
use qraft_tests::cluster::{Cluster, ClusterOptions, binary};
use qraft_tests::cluster_faults::{logs, status, try_client, wait_converged, wait_leader};
use qraft_tests::cluster_ops::{member_get, member_log, wait_until};
use qraft_tests::prometheus::Scrape;

/// A put through a client built from `config`: the error text, or `None` if it succeeded.
fn put_error(config: ClientConfig, key: &str) -> Option<String> {
    runtime::block_on(async {
        let client = match Client::connect(config).await {
            Ok(c) => c,
            Err(e) => return Some(format!("connect: {e}")),
        };
        let result = client.put_kv(key, "v").await;
        client.close();
        result.err().map(|e| format!("put: {e}"))
    })
}

fn config(c: &Cluster, cert_key: Option<(&Path, &Path)>) -> ClientConfig {
    let mut config = ClientConfig::from_files(
        vec![c.nodes[0].client_url()],
        &c.ca_dir.join("ca.crt"),
        cert_key,
    )
    .expect("client config");
    config.request_timeout = Duration::from_secs(3);
    config.dial_timeout = Duration::from_secs(2);
    config.max_retries = 1;
    config
}

#[test]
fn client_cert_auth_refuses_clients_without_a_certificate_from_the_ca() {
    let mut c = Cluster::spawn_with(1, ClusterOptions::default(), |node| {
        node.extra_args = vec!["--client-cert-auth".into()];
    });
    c.client_cert = Some((c.ca_dir.join("client.crt"), c.ca_dir.join("client.key")));
    c.wait_for_writes(Duration::from_secs(30));

    let refused =
        put_error(config(&c, None), "no-cert").expect("a client without a certificate was served");
    println!("no certificate: {refused}");

    let foreign = c.root.join("foreign-ca");
    let (paths, _) = ensure_auto_tls(&foreign, &[]).expect("a foreign CA");
    let refused = put_error(
        config(&c, Some((&paths.client_cert, &paths.client_key))),
        "foreign-cert",
    )
    .expect("a client with a certificate from another CA was served");
    println!("foreign certificate: {refused}");

    // qraftctl without --cert is refused too.
    let out = Command::new(binary("qraftctl"))
        .args(["--endpoints", &c.nodes[0].client_url(), "--cacert"])
        .arg(c.ca_dir.join("ca.crt"))
        .args(["--command-timeout", "3s", "put", "ctl-no-cert", "v"])
        .output()
        .expect("run qraftctl");
    assert!(
        !out.status.success(),
        "qraftctl without a certificate succeeded"
    );

    // The cluster's own client certificate works, and nothing the others sent got in.
    let good = config(
        &c,
        Some((&c.ca_dir.join("client.crt"), &c.ca_dir.join("client.key"))),
    );
    assert_eq!(put_error(good, "with-cert"), None);
    let (ok, out, err) = c.ctl(0, &["get", "", "--prefix", "--keys-only"]);
    assert!(ok, "{err}");
    assert!(out.contains("with-cert"), "{out}");
    for refused in ["no-cert", "foreign-cert", "ctl-no-cert"] {
        assert!(!out.contains(refused), "{refused} was written: {out}");
    }
}

#[test]
fn a_member_with_a_peer_certificate_from_another_ca_cannot_take_part() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    // A follower, so the two others keep their leader and the test is about certificates,
    // not about an election.
    let (leader, _) = wait_leader(&mut c, None, Duration::from_secs(20));
    let outsider = (leader + 1) % 3;
    let outsider_id = status(&c, outsider)
        .and_then(|s| s.header)
        .map(|h| h.member_id)
        .expect("status");
    c.kill(outsider);

    // The outsider's peer certificate now comes from a CA of its own.
    let peer_dir = c.nodes[outsider].data_dir.join("fixtures/peer");
    let saved = c.root.join("saved-peer-fixtures");
    std::fs::rename(&peer_dir, &saved).expect("move the peer fixtures aside");
    ensure_auto_tls(&peer_dir, &[]).expect("a foreign peer CA");
    c.spawn(outsider, "new");

    // The two others keep serving writes while the outsider is up (a write that times out on
    // the loaded machine is retried; the cluster must not stay unavailable).
    let insider = leader;
    let client = try_client(&c, insider).expect("connect to the leader");
    let applied_before = status(&c, insider).map_or(0, |s| s.raft_applied_index);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut written = 0;
    while written == 0 || Instant::now() < deadline {
        let key = format!("during/{written}");
        wait_until(&format!("put {key}"), Duration::from_secs(20), || {
            runtime::block_on(client.put_kv(key.clone(), "v")).map_err(|e| e.to_string())
        });
        written += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    // The outsider is alive, never learned a leader and applied none of those writes. It
    // never applied its own member record since it started, so, as an etcd member that could
    // not publish, it serves no client: its metrics listener tells.
    assert!(c.nodes[outsider].is_running(), "{}", logs(&c));
    assert!(
        status(&c, outsider).is_none(),
        "the outsider serves clients without having published"
    );
    let metrics = member_get(&c, outsider, "/metrics").expect("the outsider's metrics");
    let metrics = Scrape::parse(&metrics.body).expect("metrics");
    assert_eq!(
        metrics.value("qraft_server_has_leader", &[]),
        Some(0.0),
        "the outsider found a leader"
    );
    let applied = metrics
        .value("qraft_server_proposals_applied_total", &[])
        .expect("applied index");
    assert!(
        (applied as u64) < applied_before + written,
        "the outsider applied the new writes"
    );
    // The members refused its handshakes (wrong CA), they did not just miss it.
    let refusals = (0..3)
        .filter(|&i| i != outsider && member_log(&c, i).contains("peer handshake failed"))
        .count();
    assert!(
        refusals > 0,
        "no member logged a refused handshake\n{}",
        logs(&c)
    );
    let members = c.ctl(insider, &["member", "list"]);
    assert!(members.0, "{}", members.2);
    assert!(
        members.1.contains(&format!("{outsider_id:x}")),
        "{}",
        members.1
    );

    // With its own certificate back, the same member rejoins and catches up (so the refusal
    // above was the certificate's doing).
    c.kill(outsider);
    std::fs::remove_dir_all(&peer_dir).expect("remove the foreign fixtures");
    std::fs::rename(&saved, &peer_dir).expect("restore the peer fixtures");
    c.spawn(outsider, "new");
    let converged = wait_converged(&mut c, Duration::from_secs(30));
    assert!(converged.kvs.contains_key(b"during/0".as_slice()));
}
