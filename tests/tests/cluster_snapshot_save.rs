//! A client's snapshot holds every write the member answered before the snapshot was asked for,
//! as etcd's (its backend commits before it snapshots). The member answers a write once it is
//! applied into the LMDB batch its loop holds open for a few milliseconds, and serves the
//! snapshot from LMDB's last commit on another thread, so the batch must be committed in
//! between: the state machine asks for it (`Backend::commit_batched`) when it admits the call.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::io::Write;

use qraft_io::runtime;
use qraft_io::storage::{DigestPolicy, scan_snapshot_file};
use qraft_tests::cluster::{Cluster, ClusterOptions};

/// Put-then-snapshot rounds: each round would miss its put if the held batch were not
/// committed first (the put is answered well within the batch's 10 ms).
const ROUNDS: usize = 10;

#[test]
fn a_snapshot_holds_every_write_answered_before_it() {
    let c = Cluster::start(1, ClusterOptions::default());
    let client = c.client(0);
    let file = c.root.join("fresh.snap");
    runtime::block_on(async {
        for round in 0..ROUNDS {
            let put = client
                .put_kv(format!("fresh/{round}"), "v")
                .await
                .expect("put");
            let revision = put.header.expect("header").revision;
            let mut stream = client.snapshot().await.expect("snapshot");
            let mut out = std::fs::File::create(&file).expect("create snapshot file");
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.expect("snapshot chunk");
                out.write_all(&chunk.blob).expect("write snapshot file");
            }
            drop(out);
            let summary =
                scan_snapshot_file(&file, DigestPolicy::IfPresent, |_| Ok(())).expect("scan");
            assert!(
                summary.revision >= revision,
                "round {round}: the snapshot is at revision {}, the put was answered at {revision}",
                summary.revision
            );
        }
    });
}
