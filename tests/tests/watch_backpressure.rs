//! A watcher that never reads cannot take a member's memory down (issue 23): real `qraft`
//! processes, a client that opens a watch on a prefix and then does not read its stream while
//! about 100 MB is written under that prefix. The member's anonymous RSS (`RssAnon`) must grow
//! by less than [`RSS_GROWTH_BOUND`]; the code before the bounded watch queues kept every
//! event for the stuck watcher in memory and failed it (measured with this test: +115 MB over
//! gRPC, +114 MB over QUIC; with the queues, +12 and +14 MB). When the client starts reading it gets
//! every event once and in revision order (gRPC, with the `etcd-client` crate), or — when a
//! compaction passed meanwhile — the events up to where it was, with no gap, then etcd's
//! compacted cancel (QUIC, with qraft's client library).

use std::time::Duration;

use etcd_client::{Client as EtcdClient, ConnectOptions, EventType, WatchOptions};
use futures::StreamExt;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{CompactionRequest, WatchCreateRequest};
use qraft_tests::bounded_wait::within;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::process_memory::rss_anon_bytes;

/// Values written: `KEYS` × `VALUE_BYTES` = 100 MiB.
const KEYS: usize = 1600;
const VALUE_BYTES: usize = 64 * 1024;
/// Writes in flight at once.
const WRITERS: usize = 16;
/// The target: within 64 MB of the same writes without a watcher (which grow the
/// member by a few MB: the values live in LMDB's file-backed map).
const RSS_GROWTH_BOUND: u64 = 64 * 1024 * 1024;
/// Every wait on the cluster is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

fn key(i: usize) -> String {
    format!("stuck/{i:05}")
}

fn value(i: usize) -> Vec<u8> {
    let mut v = vec![b'v'; VALUE_BYTES];
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    v
}

fn rss(pid: u32) -> u64 {
    rss_anon_bytes(pid).expect("the member is running")
}

fn check_growth(protocol: &str, before: u64, after: u64) {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "{protocol}: member RssAnon {:.1} MB before the writes, {:.1} MB after (+{:.1} MB)",
        mb(before),
        mb(after),
        mb(after.saturating_sub(before))
    );
    assert!(
        after.saturating_sub(before) < RSS_GROWTH_BOUND,
        "{protocol}: a stuck watcher grew the member's anonymous memory from {:.1} MB to {:.1} MB",
        mb(before),
        mb(after)
    );
}

#[test]
fn a_stuck_grpc_watcher_holds_bounded_memory_and_then_gets_every_event() {
    let cluster = GrpcCluster::start(1, ClusterOptions::default());
    let pid = cluster.cluster.nodes[0].pid().expect("member pid");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let options = ConnectOptions::new()
            .with_connect_timeout(WAIT)
            .with_timeout(WAIT);
        let connect = || EtcdClient::connect(cluster.endpoints(), Some(options.clone()));
        let mut watching = within(WAIT, "connect", connect()).await.expect("connect");
        let writer = within(WAIT, "connect", connect()).await.expect("connect");
        let mut stream = within(
            WAIT,
            "watch",
            watching.watch("stuck/", Some(WatchOptions::new().with_prefix())),
        )
        .await
        .expect("watch");
        let created = within(WAIT, "created", stream.message())
            .await
            .expect("watch stream")
            .expect("created notice");
        assert!(created.created());
        let before = rss(pid);
        // The stream is not read from here on.
        futures::stream::iter(0..KEYS)
            .for_each_concurrent(WRITERS, |i| {
                let mut writer = writer.clone();
                async move {
                    within(WAIT, "put", writer.put(key(i), value(i), None))
                        .await
                        .expect("put");
                }
            })
            .await;
        let after = rss(pid);
        check_growth("gRPC", before, after);

        let mut last_revision = 0;
        let mut seen = vec![false; KEYS];
        let mut count = 0;
        while count < KEYS {
            let response = within(WAIT, "events", stream.message())
                .await
                .expect("watch stream")
                .expect("watch stream still open");
            assert!(!response.canceled(), "canceled: {response:?}");
            for event in response.events() {
                assert_eq!(event.event_type(), EventType::Put);
                let kv = event.kv().expect("kv");
                assert!(
                    kv.mod_revision() > last_revision,
                    "revision {} after {last_revision}",
                    kv.mod_revision()
                );
                last_revision = kv.mod_revision();
                let i = u64::from_be_bytes(kv.value()[..8].try_into().expect("8 bytes")) as usize;
                assert_eq!(kv.key(), key(i).as_bytes());
                assert_eq!(kv.value().len(), VALUE_BYTES);
                assert!(!seen[i], "event for {} twice", key(i));
                seen[i] = true;
                count += 1;
            }
        }
        assert!(seen.iter().all(|s| *s));
    });
}

#[test]
fn a_stuck_quic_watcher_holds_bounded_memory_and_is_canceled_after_a_compaction() {
    let c = Cluster::start(1, ClusterOptions::default());
    let pid = c.nodes[0].pid().expect("member pid");
    let client = c.client(0);
    let writer = c.client(0);
    let mut watch = runtime::block_on(client.watch(WatchCreateRequest {
        key: b"stuck/".to_vec().into(),
        range_end: b"stuck0".to_vec().into(),
        ..Default::default()
    }))
    .expect("watch");
    let created = runtime::block_on(watch.next())
        .expect("created notice")
        .expect("created");
    assert!(created.created);
    let first_revision = created.header.as_ref().map_or(0, |h| h.revision) + 1;
    let before = rss(pid);
    runtime::block_on(
        futures::stream::iter(0..KEYS).for_each_concurrent(WRITERS, |i| {
            let writer = writer.clone();
            async move {
                writer.put_kv(key(i), value(i)).await.expect("put");
            }
        }),
    );
    let after = rss(pid);
    check_growth("QUIC", before, after);

    let current = runtime::block_on(writer.get("stuck/"))
        .expect("get")
        .header
        .map_or(0, |h| h.revision);
    runtime::block_on(writer.compact(CompactionRequest {
        revision: current,
        physical: true,
    }))
    .expect("compact");

    // Read until the compacted cancel; `next` is never abandoned half-way, so the whole read
    // is bounded from this thread instead.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut revisions = Vec::new();
        let outcome = runtime::block_on(async {
            for _ in 0..KEYS + 10 {
                match watch.next().await {
                    Some(Ok(r)) if r.canceled => return Ok(r.compact_revision),
                    Some(Ok(r)) => revisions.extend(
                        r.events
                            .iter()
                            .map(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision)),
                    ),
                    Some(Err(e)) => return Err(format!("{e}")),
                    None => return Err("stream ended".to_owned()),
                }
            }
            Err("no cancel".to_owned())
        });
        let _ = done.send((outcome, revisions));
    });
    let (outcome, revisions) = result.recv_timeout(WAIT).expect("the watch answers");
    let compact_revision = outcome.expect("a compacted cancel");
    assert_eq!(compact_revision, current);
    // Every revision from the first, once and in order, up to where the watcher was.
    let expected: Vec<i64> = (first_revision..first_revision + revisions.len() as i64).collect();
    assert_eq!(revisions, expected, "events before the cancel");
    assert!(
        first_revision + (revisions.len() as i64) < compact_revision,
        "canceled though it had every event before the compaction"
    );
}
