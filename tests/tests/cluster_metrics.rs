//! `/metrics` of a live three-member cluster after a known workload: N puts through a
//! follower (with a watch open on it), a lease granted, kept alive and revoked through the
//! leader, a restart of the follower (live keys counted from its data), then a put the
//! cut-off leader cannot commit; and of one member after requests through its gRPC listener.
//! Each family is checked on the member where the event happens, by parsing the Prometheus
//! text ([`Scrape`]): counters moved by at least the expected amounts, histograms have
//! observations, per-peer families carry the peer's member id in hex under `To` / `From`.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::Duration;

use qraft_io::runtime;
use qraft_proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, WatchCreateRequest};
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::{status, try_client, wait_leader};
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::cluster_ops::{member_get, wait_serving, wait_until};
use qraft_tests::prometheus::Scrape;

/// Puts of the workload.
const PUTS: usize = 25;
const WAIT: Duration = Duration::from_secs(30);

fn scrape(c: &Cluster, i: usize) -> Result<Scrape, String> {
    let r = member_get(c, i, "/metrics")?;
    if r.status != 200 {
        return Err(format!("/metrics on m{i}: {} {}", r.status, r.body));
    }
    Scrape::parse(&r.body)
}

fn must_scrape(c: &Cluster, i: usize) -> Scrape {
    scrape(c, i).unwrap_or_else(|e| panic!("{e}"))
}

/// Unlabelled sample `name`, which must be present.
fn value(s: &Scrape, name: &str) -> f64 {
    s.value(name, &[])
        .unwrap_or_else(|| panic!("no sample {name}"))
}

fn requests(s: &Scrape, kind: &str) -> f64 {
    s.value_or_zero("qraft_server_client_requests_total", &[("type", kind)])
}

/// Waits until `check` holds on member `i`'s scrape; returns that scrape.
fn wait_scrape(
    c: &Cluster,
    i: usize,
    what: &str,
    check: impl Fn(&Scrape) -> Result<(), String>,
) -> Scrape {
    wait_until(&format!("m{i}: {what}"), WAIT, || {
        let s = scrape(c, i)?;
        check(&s).map(|()| s)
    })
}

/// `Ok` when `now - before >= at_least` for the unlabelled sample `name`.
fn moved(before: &Scrape, now: &Scrape, name: &str, at_least: f64) -> Result<(), String> {
    let delta = value(now, name) - value(before, name);
    if delta >= at_least {
        Ok(())
    } else {
        Err(format!("{name} moved by {delta}, want >= {at_least}"))
    }
}

#[test]
fn metrics_follow_a_known_workload() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    c.wait_for_writes(WAIT);
    let (leader, leader_id) = wait_leader(&mut c, None, WAIT);
    let follower = (leader + 1) % 3;
    let follower_id = status(&c, follower)
        .and_then(|s| s.header)
        .map(|h| h.member_id)
        .expect("the follower's member id");
    let (leader_hex, follower_hex) = (format!("{leader_id:x}"), format!("{follower_id:x}"));
    let before: Vec<Scrape> = (0..3).map(|i| must_scrape(&c, i)).collect();

    // N puts through the follower, watched on the follower.
    let client = c.client(follower);
    let watching = runtime::block_on(async {
        let mut watch = client
            .watch(WatchCreateRequest {
                key: b"metrics/".to_vec().into(),
                range_end: b"metrics0".to_vec().into(),
                ..Default::default()
            })
            .await
            .expect("watch");
        let created = watch.next().await.expect("watch created").expect("watch");
        assert!(created.created, "{created:?}");
        for i in 0..PUTS {
            client
                .put_kv(format!("metrics/{i}"), "v")
                .await
                .expect("put");
        }
        let mut events = 0;
        while events < PUTS {
            let batch = runtime::timeout(WAIT, watch.next())
                .await
                .expect("watch events in time")
                .expect("watch open")
                .expect("watch response");
            events += batch.events.len();
        }
        // Scraped while the watch is still open.
        let watching = must_scrape(&c, follower);
        watch.close();
        watching
    });
    client.close();
    assert!(
        value(&watching, "qraft_mvcc_watcher_total") >= 1.0,
        "an open watch on the follower"
    );

    // A lease granted, renewed and revoked through the leader.
    let client = c.client(leader);
    runtime::block_on(async {
        let lease = client
            .lease_grant(LeaseGrantRequest { ttl: 60, id: 0 })
            .await
            .expect("grant");
        let mut keep_alive = client.lease_keep_alive(lease.id);
        let renewed = keep_alive.keep_alive().await.expect("keep-alive");
        assert!(renewed.ttl > 0, "{renewed:?}");
        client
            .lease_revoke(LeaseRevokeRequest { id: lease.id })
            .await
            .expect("revoke");
    });
    client.close();

    // Every member applies the puts, the grant and the revoke.
    for (i, b) in before.iter().enumerate() {
        wait_scrape(&c, i, "the workload applied", |s| {
            moved(
                b,
                s,
                "qraft_server_proposals_applied_total",
                (PUTS + 2) as f64,
            )?;
            moved(
                b,
                s,
                "qraft_server_proposals_committed_total",
                (PUTS + 2) as f64,
            )?;
            moved(b, s, "qraft_mvcc_keys_total", PUTS as f64)?;
            moved(b, s, "qraft_lease_granted_total", 1.0)?;
            moved(b, s, "qraft_lease_revoked_total", 1.0)?;
            moved(b, s, "qraft_disk_wal_fsync_duration_seconds_count", 1.0)?;
            moved(
                b,
                s,
                "qraft_disk_backend_commit_duration_seconds_count",
                1.0,
            )
        });
    }

    // The follower served the puts and the watch.
    let f = must_scrape(&c, follower);
    let fb = &before[follower];
    assert!(requests(&f, "put") - requests(fb, "put") >= PUTS as f64);
    assert!(requests(&f, "watch") - requests(fb, "watch") >= 1.0);
    moved(fb, &f, "qraft_mvcc_events_total", PUTS as f64).unwrap();
    moved(
        fb,
        &f,
        "qraft_network_client_grpc_received_bytes_total",
        1.0,
    )
    .unwrap();
    moved(fb, &f, "qraft_network_client_grpc_sent_bytes_total", 1.0).unwrap();
    assert_eq!(value(&f, "qraft_server_has_leader"), 1.0);
    assert_eq!(value(&f, "qraft_server_is_leader"), 0.0);
    assert!(
        f.value_or_zero(
            "qraft_network_peer_sent_bytes_total",
            &[("To", &leader_hex)]
        ) > 0.0
    );
    assert!(
        f.value_or_zero(
            "qraft_network_peer_received_bytes_total",
            &[("From", &leader_hex)]
        ) > 0.0
    );

    // The leader served the lease calls and renewed the lease; the follower renewed nothing.
    let l = must_scrape(&c, leader);
    let lb = &before[leader];
    assert_eq!(value(&l, "qraft_server_is_leader"), 1.0);
    for kind in ["lease_grant", "lease_keep_alive", "lease_revoke"] {
        assert!(requests(&l, kind) - requests(lb, kind) >= 1.0, "{kind}");
    }
    moved(lb, &l, "qraft_lease_renewed_total", 1.0).unwrap();
    if value(&f, "qraft_server_leader_changes_seen_total")
        == value(fb, "qraft_server_leader_changes_seen_total")
    {
        assert_eq!(
            value(&f, "qraft_lease_renewed_total"),
            value(fb, "qraft_lease_renewed_total"),
            "only the leader renews leases"
        );
    }
    assert!(value(&l, "qraft_server_leader_changes_seen_total") >= 1.0);

    // Peer traffic, labelled with the other member's id, and sampled round-trip times.
    let to_follower = [("To", follower_hex.as_str())];
    let from_follower = [("From", follower_hex.as_str())];
    wait_scrape(&c, leader, "peer round trips sampled", |s| {
        let rtt = s.value_or_zero(
            "qraft_network_peer_round_trip_time_seconds_count",
            &to_follower,
        );
        (rtt > 0.0)
            .then_some(())
            .ok_or_else(|| "no round-trip sample yet".to_string())
    });
    assert!(l.value_or_zero("qraft_network_peer_sent_bytes_total", &to_follower) > 0.0);
    assert!(l.value_or_zero("qraft_network_peer_received_bytes_total", &from_follower) > 0.0);
    assert_eq!(
        l.type_of("qraft_network_peer_round_trip_time_seconds"),
        Some("histogram")
    );
    for family in [
        "qraft_server_slow_apply",
        "qraft_server_heartbeat_send_failures",
        "qraft_server_proposals_failed",
    ] {
        assert_eq!(l.type_of(family), Some("counter"), "{family}");
    }
    assert!(value(&l, "qraft_mvcc_db_total_size_in_bytes") > 0.0);
    assert!(value(&l, "qraft_mvcc_db_total_size_in_use_in_bytes") > 0.0);

    // A restarted member counts its live keys from its data: the same number as before.
    let keys = value(&f, "qraft_mvcc_keys_total");
    c.restart(follower);
    wait_serving(&c, follower);
    wait_scrape(&c, follower, "the live keys counted at start", |s| {
        let now = value(s, "qraft_mvcc_keys_total");
        (now == keys)
            .then_some(())
            .ok_or_else(|| format!("keys_total {now}, want {keys}"))
    });

    // A leader cut off from its quorum cannot commit: its proposals fail.
    for i in (0..3).filter(|&i| i != leader) {
        c.kill(i);
    }
    let failed_before = value(&l, "qraft_server_proposals_failed_total");
    let client = try_client(&c, leader).expect("a client for the cut-off leader");
    let mut puts = 0;
    wait_until(&format!("m{leader}: a failed proposal"), WAIT, || {
        // Bounded: each put fails within the client's short request timeout.
        if puts < 20 {
            puts += 1;
            let _ = runtime::block_on(client.put_kv("metrics/lost", "v"));
        }
        let failed = value(&scrape(&c, leader)?, "qraft_server_proposals_failed_total");
        (failed > failed_before)
            .then_some(())
            .ok_or_else(|| format!("proposals_failed still {failed} after {puts} puts"))
    });
    client.close();
}

/// Requests through the gRPC listener (`--listen-grpc-urls`, what etcd's own clients use) are
/// counted like those over QUIC: by type in `client_requests`, and their bytes in the client
/// traffic families.
#[test]
fn grpc_listener_requests_are_counted() {
    const GRPC_PUTS: usize = 12;
    let grpc = GrpcCluster::start(1, ClusterOptions::default());
    let before = must_scrape(&grpc.cluster, 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(WAIT)
            .with_timeout(WAIT);
        let mut client = etcd_client::Client::connect(grpc.endpoints(), Some(options))
            .await
            .expect("connect over gRPC");
        for i in 0..GRPC_PUTS {
            client
                .put(format!("grpc-{i}"), "v", None)
                .await
                .expect("put over gRPC");
        }
        let got = client.get("grpc-0", None).await.expect("get over gRPC");
        assert_eq!(got.kvs().len(), 1);
    });
    let after = wait_scrape(&grpc.cluster, 0, "gRPC requests counted", |s| {
        let puts = requests(s, "put") - requests(&before, "put");
        if puts < GRPC_PUTS as f64 {
            return Err(format!("{puts} puts counted, want {GRPC_PUTS}"));
        }
        moved(
            &before,
            s,
            "qraft_network_client_grpc_received_bytes_total",
            1.0,
        )
    });
    assert!(requests(&after, "range") - requests(&before, "range") >= 1.0);
    // Each put's request carries its key and value; each answer at least a header.
    moved(
        &before,
        &after,
        "qraft_network_client_grpc_received_bytes_total",
        (GRPC_PUTS * "grpc-0v".len()) as f64,
    )
    .unwrap();
    moved(
        &before,
        &after,
        "qraft_network_client_grpc_sent_bytes_total",
        GRPC_PUTS as f64,
    )
    .unwrap();
}
