//! `etcdctl endpoint health` over all three members' gRPC endpoints at once: a linearizable
//! read through every member at the same moment, i.e. three ReadIndex rounds reaching the
//! leader together. Each of 20 rounds must find every member healthy within etcdctl's
//! 2 s command timeout (before ReadIndex contexts were unique cluster-wide, the leader dropped
//! colliding rounds and most rounds ran into the 5 s request timeout). The rounds' times are
//! printed next to a 3-member etcd 3.4's.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::{Duration, Instant};

use qraft_tests::cluster::ClusterOptions;
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::etcd_cluster::EtcdCluster;
use qraft_tests::etcdctl::{Etcdctl, require_etcdctl};

const ROUNDS: usize = 20;

/// Every round's time; panics on a round where some member was not found healthy.
fn health_rounds(ctl: &Etcdctl, who: &str) -> Vec<Duration> {
    (0..ROUNDS)
        .map(|round| {
            let start = Instant::now();
            let out = ctl.run(&["endpoint", "health", "--command-timeout=2s"], None);
            let took = start.elapsed();
            assert!(
                out.status.success(),
                "{who}, round {round}: endpoint health failed after {took:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            took
        })
        .collect()
}

fn summary(times: &[Duration]) -> String {
    let mut ms: Vec<u128> = times.iter().map(Duration::as_millis).collect();
    ms.sort_unstable();
    format!(
        "median {} ms, max {} ms",
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    )
}

#[test]
fn endpoint_health_through_every_member_completes_each_round() {
    require_etcdctl("endpoint_health_through_every_member_completes_each_round");
    let etcd = {
        let cluster = EtcdCluster::start();
        health_rounds(&cluster.etcdctl(), "etcd")
    };
    let qraft = GrpcCluster::start(3, ClusterOptions::default());
    let times = health_rounds(&qraft.etcdctl(), "qraft");
    println!(
        "endpoint health over 3 members, {ROUNDS} rounds (etcdctl process included): \
         qraft {}; etcd 3.4 {}",
        summary(&times),
        summary(&etcd)
    );
}
