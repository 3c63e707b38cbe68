//! Lease keep-alive on a real 3-member cluster, starting on a follower, with every member in
//! the client's endpoint list (the follower first): the follower forwards the keep-alives to
//! the leader and answers them itself, through the library and through `qraftctl lease
//! keep-alive`. `cluster_lease_forward.rs` covers clients that know only the follower.

use std::process::Command;

use std::time::{Duration, Instant};

use qraft_io::runtime;
use qraft_proto::etcdserverpb::{LeaseGrantRequest, LeaseTimeToLiveRequest, StatusRequest};
use qraft_tests::cluster::{Cluster, ClusterOptions, binary};

/// The index of a member that is not the leader, once the cluster has agreed on a leader.
fn a_follower(c: &Cluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for i in 0..3 {
            let status = runtime::block_on(c.client(i).status(StatusRequest::default()));
            if let Ok(s) = status {
                let me = s.header.map(|h| h.member_id).unwrap_or(0);
                if s.leader != 0 && s.leader != me {
                    return i;
                }
            }
        }
        assert!(Instant::now() < deadline, "no follower with a known leader");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn keep_alive_through_a_follower_reaches_the_leader() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    c.wait_for_writes(Duration::from_secs(30));
    let follower = a_follower(&c);
    let mut endpoints = vec![c.nodes[follower].client_url()];
    endpoints.extend(
        (0..3)
            .filter(|&i| i != follower)
            .map(|i| c.nodes[i].client_url()),
    );
    let connect = || {
        runtime::block_on(qraft_io::client::Client::connect(
            c.client_config(endpoints.clone()),
        ))
        .expect("connect")
    };
    let client = connect();
    let lease = runtime::block_on(client.lease_grant(LeaseGrantRequest {
        ttl: 30,
        ..Default::default()
    }))
    .expect("grant through a follower")
    .id;

    let mut stream = connect().lease_keep_alive(lease);
    for round in 0..3 {
        let answer = runtime::block_on(stream.keep_alive())
            .unwrap_or_else(|err| panic!("keep-alive {round} through a follower: {err}"));
        assert_eq!(answer.id, lease);
        assert!(answer.ttl > 0, "round {round}: ttl {}", answer.ttl);
    }
    let ttl = runtime::block_on(client.lease_time_to_live(LeaseTimeToLiveRequest {
        id: lease,
        keys: false,
    }))
    .expect("time to live");
    assert!(ttl.ttl > 0, "the lease is alive after the keep-alives");

    let id = format!("{lease:x}");
    let out = Command::new(binary("qraftctl"))
        .arg("--endpoints")
        .arg(endpoints.join(","))
        .arg("--cacert")
        .arg(c.ca_dir.join("ca.crt"))
        .args(["lease", "keep-alive", "--once", &id])
        .output()
        .expect("run qraftctl");
    let (ok, out, err) = (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(ok, "qraftctl lease keep-alive --once on a follower: {err}");
    assert!(
        out.contains(&format!("lease {lease:016x} keepalived with TTL(")),
        "{out}"
    );
}
