//! `Maintenance/Hash` on three real members: members that applied the same writes answer the
//! same hash at the same header revision (so members can be compared), and a write changes
//! it. Over qraft's client API and etcd's gRPC API alike.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::Duration;

use etcd_client::ConnectOptions;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::HashRequest;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::wait_until;
use qraft_tests::etcd_cluster::free_port;

/// Every wait on the cluster is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);

/// Each member's (header revision, hash), or why one could not answer.
fn hashes(c: &Cluster) -> Result<Vec<(i64, u32)>, String> {
    (0..c.nodes.len())
        .map(|i| {
            let client = c.client(i);
            let r = runtime::block_on(client.hash(HashRequest {}));
            client.close();
            let r = r.map_err(|e| format!("hash on m{i}: {e}"))?;
            Ok((r.header.unwrap_or_default().revision, r.hash))
        })
        .collect()
}

/// Waits until every member answers the same hash at `revision`; returns it.
fn wait_equal_at(c: &Cluster, revision: i64) -> u32 {
    wait_until(
        &format!("equal hashes at revision {revision}"),
        WAIT,
        || {
            let all = hashes(c)?;
            match all.first() {
                Some(&(rev, hash)) if rev == revision && all.iter().all(|h| *h == (rev, hash)) => {
                    Ok(hash)
                }
                _ => Err(format!("{all:?}")),
            }
        },
    )
}

#[test]
fn members_that_applied_the_same_writes_answer_the_same_hash() {
    let grpc_endpoint = format!("http://127.0.0.1:{}", free_port());
    let mut c = Cluster::spawn_with(3, ClusterOptions::default(), |node| {
        if node.name == "m0" {
            node.extra_args
                .push(format!("--listen-grpc-urls={grpc_endpoint}"));
        }
    });
    c.wait_for_writes(WAIT);
    let client = c.client_all();
    let mut revision = 0;
    for i in 0..10 {
        let r = runtime::block_on(client.put_kv(format!("k{i}"), format!("v{i}"))).expect("put");
        revision = r.header.expect("put header").revision;
    }
    let before = wait_equal_at(&c, revision);

    let r = runtime::block_on(client.put_kv("k0", "changed")).expect("put");
    let after = wait_equal_at(&c, r.header.expect("put header").revision);
    assert_ne!(before, after, "a write changes the hash");

    // etcd's gRPC API serves the same hash.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let grpc_hash = tokio.block_on(async {
        let options = ConnectOptions::new()
            .with_connect_timeout(WAIT)
            .with_timeout(WAIT);
        let mut grpc = etcd_client::Client::connect([grpc_endpoint.as_str()], Some(options))
            .await
            .expect("gRPC connect");
        tokio::time::timeout(WAIT, grpc.hash())
            .await
            .expect("gRPC hash in time")
            .expect("gRPC hash")
    });
    assert_eq!(grpc_hash.hash(), after);
}
