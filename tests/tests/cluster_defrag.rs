//! Online defragmentation on a running 3-member cluster: after a large key space is deleted and
//! compacted, `qraftctl defrag` shrinks every member's file while a write load keeps going, and
//! nothing acknowledged is lost; a leader that defragments a file much larger than an election
//! timeout takes to copy stays leader (raft goes on while the copy runs).

use std::time::Duration;

use qraft_io::runtime;
use qraft_proto::etcdserverpb::{CompactionRequest, DeleteRangeRequest};
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::leader;
use qraft_tests::cluster_ops::{
    WriteLoad, assert_acknowledged_present, endpoint_status, wait_until,
};

const BIG_KEYS: usize = 600;
const BIG_VALUE: usize = 8192;

fn db_sizes(c: &Cluster, i: usize) -> Result<(u64, u64), String> {
    let status = endpoint_status(c, i)?;
    let size = |field: &str| {
        status[field]
            .as_u64()
            .ok_or_else(|| format!("no {field} in {status}"))
    };
    Ok((size("dbSize")?, size("dbSizeInUse")?))
}

/// Writes ~5 MB, deletes it and compacts it away, so most of every member's file is free pages.
fn fill_and_free(c: &Cluster) {
    let client = c.client(0);
    runtime::block_on(async {
        for n in 0..BIG_KEYS {
            let value = "x".repeat(BIG_VALUE);
            client
                .put_kv(format!("big/{n:05}"), value)
                .await
                .expect("put");
        }
        let deleted = client
            .delete_range(DeleteRangeRequest {
                key: b"big/".to_vec().into(),
                range_end: b"big0".to_vec().into(),
                ..Default::default()
            })
            .await
            .expect("delete");
        assert_eq!(deleted.deleted, BIG_KEYS as i64);
        let revision = deleted.header.expect("header").revision;
        client
            .compact(CompactionRequest {
                revision,
                physical: true,
            })
            .await
            .expect("compact");
    });
    client.close();
}

#[test]
fn defrag_shrinks_every_member_while_writes_continue() {
    // A small snapshot count and catch-up tail make each member compact its raft log too, so
    // the entries that carried the big values are freed as well.
    let c = Cluster::start(
        3,
        ClusterOptions {
            snapshot_count: 100,
            extra_args: vec!["--snapshot-catchup-entries".into(), "20".into()],
            ..ClusterOptions::default()
        },
    );
    fill_and_free(&c);
    // The members apply the compaction and take a snapshot (freeing the log) at their own pace.
    let before: Vec<(u64, u64)> = (0..3)
        .map(|i| {
            wait_until(
                &format!("m{i} to free most of its file"),
                Duration::from_secs(30),
                || {
                    let (size, in_use) = db_sizes(&c, i)?;
                    if in_use * 2 < size {
                        Ok((size, in_use))
                    } else {
                        Err(format!("{in_use} of {size} bytes in use"))
                    }
                },
            )
        })
        .collect();

    let load = WriteLoad::start(
        c.client_config(c.nodes.iter().map(|n| n.client_url()).collect()),
        "during/",
        100_000,
    );
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..3 {
        let (ok, out, err) = c.ctl(i, &["defrag"]);
        assert!(ok, "defrag on m{i}: {err}");
        assert_eq!(
            out,
            format!(
                "Finished defragmenting etcd member[{}]\n",
                c.nodes[i].client_url()
            )
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let acked = load.finish();
    assert!(
        acked.len() > 10,
        "the load kept writing: {} puts",
        acked.len()
    );

    for (i, (size_before, in_use_before)) in before.into_iter().enumerate() {
        let (size_after, in_use_after) = db_sizes(&c, i).expect("sizes");
        assert!(
            size_after * 2 < size_before,
            "m{i}: file {size_before} -> {size_after} (in use {in_use_before} -> {in_use_after})"
        );
        assert!(
            in_use_after <= size_after,
            "m{i}: {in_use_after} > {size_after}"
        );
        assert_acknowledged_present(&c, i, "during/", &acked);
    }
    let (ok, out, err) = c.ctl(1, &["put", "after", "defrag"]);
    assert!(ok && out == "OK\n", "{out} {err}");
}

/// Live data the leader's defrag copies: far more than an election timeout's worth of copying
/// (the copy runs at a few hundred MB/s here, the election timeout below is 250 ms).
const LIVE_VALUES: usize = 200;
const LIVE_VALUE: usize = 1 << 20;

#[test]
fn a_defragmenting_leader_keeps_its_leadership() {
    // Before the loop went on during a defrag, the leader's loop waited for the copy: no
    // heartbeats for its whole length, and the followers elected another leader.
    let mut c = Cluster::start(
        3,
        ClusterOptions {
            heartbeat_ms: 50,
            election_ms: 250,
            ..ClusterOptions::default()
        },
    );
    let client = c.client_all();
    runtime::block_on(async {
        for n in 0..LIVE_VALUES {
            let value = char::from(b'a' + (n % 26) as u8)
                .to_string()
                .repeat(LIVE_VALUE);
            client
                .put_kv(format!("live/{n:05}"), value)
                .await
                .expect("put");
        }
    });
    client.close();
    let (index, before) = leader(&mut c).expect("a leader");
    let load = WriteLoad::start(
        c.client_config(c.nodes.iter().map(|n| n.client_url()).collect()),
        "during/",
        100_000,
    );
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let (ok, _, err) = c.ctl(index, &["defrag"]);
    let took = started.elapsed();
    assert!(ok, "defrag on the leader: {err}");
    std::thread::sleep(Duration::from_millis(300));
    let acked = load.finish();
    let (after_index, after) = leader(&mut c).expect("a leader after the defrag");
    assert_eq!(
        (after_index, after.raft_term),
        (index, before.raft_term),
        "the leader changed during a defrag of {took:?} (m{index}, term {})",
        before.raft_term
    );
    assert!(
        acked.len() > 10,
        "the load kept writing: {} puts",
        acked.len()
    );
    for i in 0..3 {
        assert_acknowledged_present(&c, i, "during/", &acked);
    }
}
