//! kill -9 of the leader of a 3-member cluster of real `qraft` processes during a concurrent
//! write load: a new leader is elected within about two election timeouts, no acknowledged
//! write is lost, and the old leader restarts, rejoins and catches up.

use std::time::{Duration, Instant};

use qraft_io::client::Client;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::RangeRequest;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::{
    WriteLoad, all_endpoints, check_writes, dump, fault_config, logs, wait_converged, wait_leader,
};

/// etcd's defaults: the failover bound below is stated in these.
const HEARTBEAT_MS: u64 = 100;
const ELECTION_MS: u64 = 1000;

#[test]
fn leader_killed_during_writes_fails_over_without_losing_acknowledged_writes() {
    let started = Instant::now();
    let mut c = Cluster::start(
        3,
        ClusterOptions {
            heartbeat_ms: HEARTBEAT_MS,
            election_ms: ELECTION_MS,
            ..ClusterOptions::default()
        },
    );
    let (old, old_id) = wait_leader(&mut c, None, Duration::from_secs(20));

    let load = WriteLoad::start(fault_config(&c, all_endpoints(&c)), 4, "fo", 100_000);
    // Let the load reach the leader before pulling the plug.
    std::thread::sleep(Duration::from_millis(700));
    let killed_at = Instant::now();
    c.kill(old);
    let (new, new_id) = wait_leader(&mut c, Some(old), Duration::from_secs(20));
    let failover = killed_at.elapsed();
    assert_ne!(new_id, old_id);
    // The load goes on against the new leader (writers stuck on the dead member give up
    // after their request timeout and move on), then stops.
    let elected_at = Instant::now();
    let resumed = load.wait_for_more_acks(100, Duration::from_secs(20));
    let logs_ = load.stop();
    assert!(
        resumed,
        "writes did not resume after the failover\n{}",
        logs(&c)
    );
    let acked: usize = logs_.iter().map(|l| l.acked.len()).sum();
    let unknown: usize = logs_.iter().map(|l| l.unknown.len()).sum();
    let acked_before = logs_
        .iter()
        .flat_map(|l| &l.acked)
        .filter(|a| a.at < killed_at)
        .count();
    let first_ack_after = logs_
        .iter()
        .flat_map(|l| &l.acked)
        .filter(|a| a.at > elected_at)
        .map(|a| a.at - killed_at)
        .min();
    println!(
        "failover: new leader after {failover:?} (election timeout {ELECTION_MS} ms); first \
         write acknowledged by the new leader {first_ack_after:?} after the kill; {acked} writes \
         acknowledged ({acked_before} before the kill), {unknown} failed"
    );
    assert!(
        acked_before > 0,
        "the load wrote nothing before the kill\n{}",
        logs(&c)
    );
    // Two election timeouts plus generous slack for a loaded 2-core machine.
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}\n{}",
        logs(&c)
    );

    // Every acknowledged write is there, read linearizably through the new leader.
    let client = runtime::block_on(Client::connect(fault_config(
        &c,
        vec![c.nodes[new].client_url()],
    )))
    .expect("connect to the new leader");
    let resp = runtime::block_on(client.range(RangeRequest {
        key: b"fo/".to_vec().into(),
        range_end: b"fo0".to_vec().into(),
        ..Default::default()
    }))
    .expect("linearizable range");
    let linearizable = qraft_tests::cluster_faults::Dump::from_range(resp);
    let problems = check_writes(&linearizable, "fo", &logs_);
    assert!(problems.is_empty(), "{problems:#?}");

    // The old leader comes back, rejoins as a follower and catches up.
    c.spawn(old, "new");
    let last = logs_
        .iter()
        .flat_map(|l| &l.acked)
        .max_by_key(|a| a.revision)
        .expect("some write acknowledged")
        .clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let caught_up = dump(&c, old).is_some_and(|d| {
            d.kvs
                .get(last.key.as_bytes())
                .is_some_and(|kv| kv.mod_revision == last.revision)
        });
        if caught_up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted m{old} never showed {} at rev {}\n{}",
            last.key,
            last.revision,
            logs(&c)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let converged = wait_converged(&mut c, Duration::from_secs(30));
    let problems = check_writes(&converged, "fo", &logs_);
    assert!(problems.is_empty(), "{problems:#?}");
    let (_, leader_id) = wait_leader(&mut c, None, Duration::from_secs(10));
    assert_ne!(leader_id, 0);
    println!("test took {:?}", started.elapsed());
}
