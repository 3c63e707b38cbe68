//! The `etcd-client` crate (tonic; the Rust counterpart of Go's clientv3) against a real
//! 3-member qraft over `--listen-grpc-urls`: KV and txn through all endpoints, then a watch, a
//! lease with keep-alive and a snapshot through a follower's endpoint only, and etcd's errors.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, Error, EventType, GetOptions,
    LeaseTimeToLiveOptions, PutOptions, Txn, TxnOp, WatchOptions, WatchResponse, WatchStream,
};
use qraft_tests::bounded_wait::within;
use qraft_tests::cluster::ClusterOptions;
use qraft_tests::cluster_grpc::GrpcCluster;
use ring::digest::{SHA256, digest};

/// Every wait on the cluster is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);

async fn connect(endpoints: Vec<String>) -> Client {
    let options = ConnectOptions::new()
        .with_connect_timeout(WAIT)
        .with_timeout(WAIT);
    within(WAIT, "connect", Client::connect(endpoints, Some(options)))
        .await
        .expect("connect")
}

/// gRPC status codes etcd uses for these errors.
const OUT_OF_RANGE: i32 = 11;
const NOT_FOUND: i32 = 5;
const UNAVAILABLE: i32 = 14;

fn status_of(error: Error) -> (i32, String) {
    match error {
        Error::GRpcStatus(status) => (status.code() as i32, status.message().to_owned()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

/// (leader index, a follower index), from each member's Maintenance.Status.
async fn roles(endpoints: &[String]) -> (usize, usize) {
    let mut leader = None;
    let mut follower = None;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let mut client = connect(vec![endpoint.clone()]).await;
        let status = within(WAIT, "status", client.status())
            .await
            .expect("status");
        assert!(
            status.version().starts_with("3."),
            "etcd-style version, got {}",
            status.version()
        );
        match status.header().map(|h| h.member_id()) {
            Some(me) if me == status.leader() => leader = Some(i),
            Some(_) => follower = Some(i),
            None => {}
        }
    }
    match (leader, follower) {
        (Some(l), Some(f)) => (l, f),
        _ => panic!("no leader and follower among {endpoints:?}"),
    }
}

async fn next_watch(stream: &mut WatchStream) -> WatchResponse {
    within(WAIT, "watch response", stream.message())
        .await
        .expect("watch stream")
        .expect("watch stream still open")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn etcd_client_drives_a_three_member_cluster() {
    let cluster = GrpcCluster::start(3, ClusterOptions::default());
    let endpoints = cluster.endpoints();
    runtime().block_on(async {
        let mut all = connect(endpoints.clone()).await;
        kv_and_txn(&mut all).await;
        errors(&mut all).await;
        let (l, f) = roles(&endpoints).await;
        let mut through_follower = connect(vec![endpoints[f].clone()]).await;
        watch_through_follower(&mut all, &mut through_follower).await;
        snapshot_through_follower(&mut through_follower).await;
        let mut through_leader = connect(vec![endpoints[l].clone()]).await;
        lease_with_keep_alive(&mut all, &mut through_leader).await;
    });
}

/// Followers forward LeaseKeepAlive and LeaseTimeToLive to the leader, as etcd's do: a client
/// that knows only a follower keeps its lease alive.
#[test]
fn lease_keep_alive_through_a_follower() {
    let cluster = GrpcCluster::start(3, ClusterOptions::default());
    let endpoints = cluster.endpoints();
    runtime().block_on(async {
        let mut all = connect(endpoints.clone()).await;
        let (_, f) = roles(&endpoints).await;
        let mut through_follower = connect(vec![endpoints[f].clone()]).await;
        lease_with_keep_alive(&mut all, &mut through_follower).await;
    });
}

/// A follower that lost its quorum has no leader to forward to: LeaseTimeToLive and the
/// keep-alive stream end with etcd's `no leader` (UNAVAILABLE) at the forwarding deadline.
#[test]
fn lease_calls_through_a_follower_without_a_quorum_answer_no_leader() {
    let mut cluster = GrpcCluster::start(3, ClusterOptions::default());
    let endpoints = cluster.endpoints();
    runtime().block_on(async {
        let (_, f) = roles(&endpoints).await;
        let mut follower = connect(vec![endpoints[f].clone()]).await;
        let lease = follower.lease_grant(30, None).await.expect("grant").id();
        let (mut keeper, mut responses) =
            within(WAIT, "keep-alive", follower.lease_keep_alive(lease))
                .await
                .expect("open keep-alive");
        for i in (0..endpoints.len()).filter(|&i| i != f) {
            cluster.cluster.kill(i);
        }
        let mut ttl_client = follower.clone();
        let time_to_live = async {
            within(
                WAIT,
                "time to live",
                ttl_client.lease_time_to_live(lease, None),
            )
            .await
            .expect_err("no leader")
        };
        let keep_alive = async {
            within(WAIT, "send keep-alive", keeper.keep_alive())
                .await
                .expect("send keep-alive");
            within(WAIT, "keep-alive answer", responses.message())
                .await
                .expect_err("no leader")
        };
        let (ttl_error, keep_alive_error) = futures::join!(time_to_live, keep_alive);
        for error in [ttl_error, keep_alive_error] {
            assert_eq!(
                status_of(error),
                (UNAVAILABLE, "etcdserver: no leader".into())
            );
        }
    });
}

async fn kv_and_txn(all: &mut Client) {
    let put = all.put("k", "v1", None).await.expect("put");
    let first = put.header().map(|h| h.revision()).expect("header");
    all.put("k", "v2", None).await.expect("put");
    let got = all.get("k", None).await.expect("get");
    assert_eq!(got.kvs()[0].value(), b"v2");
    assert_eq!(got.kvs()[0].version(), 2);
    assert_eq!(got.kvs()[0].create_revision(), first);
    let txn = Txn::new()
        .when([Compare::value("k", CompareOp::Equal, "v2")])
        .and_then([TxnOp::put("k", "v3", None)])
        .or_else([TxnOp::get("k", None)]);
    assert!(all.txn(txn).await.expect("txn").succeeded());
    let old = all
        .get("k", Some(GetOptions::new().with_revision(first)))
        .await
        .expect("read at an older revision");
    assert_eq!(old.kvs()[0].value(), b"v1");
}

async fn errors(all: &mut Client) {
    let error = all
        .get("k", Some(GetOptions::new().with_revision(1_000_000)))
        .await
        .expect_err("future revision");
    assert_eq!(
        status_of(error),
        (
            OUT_OF_RANGE,
            "etcdserver: mvcc: required revision is a future revision".into()
        )
    );
    let error = all
        .lease_revoke(0x1234_5678)
        .await
        .expect_err("unknown lease");
    assert_eq!(
        status_of(error),
        (NOT_FOUND, "etcdserver: requested lease not found".into())
    );
    let current = all.get("k", None).await.expect("get");
    let revision = current.header().map(|h| h.revision()).expect("header");
    all.compact(revision, None).await.expect("compact");
    let error = all
        .get("k", Some(GetOptions::new().with_revision(revision - 1)))
        .await
        .expect_err("compacted");
    assert_eq!(
        status_of(error),
        (
            OUT_OF_RANGE,
            "etcdserver: mvcc: required revision has been compacted".into()
        )
    );
}

async fn watch_through_follower(all: &mut Client, follower: &mut Client) {
    let mut stream = within(
        WAIT,
        "watch",
        follower.watch(
            "w/",
            Some(WatchOptions::new().with_prefix().with_prev_key()),
        ),
    )
    .await
    .expect("watch through a follower");
    assert!(next_watch(&mut stream).await.created());
    all.put("w/1", "a", None).await.expect("put");
    all.put("w/1", "b", None).await.expect("put");
    all.delete("w/1", None).await.expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let response = next_watch(&mut stream).await;
        for event in response.events() {
            let kv = event.kv().expect("event kv");
            let prev = event.prev_kv().map(|p| p.value().to_vec());
            seen.push((event.event_type(), kv.value().to_vec(), prev));
        }
    }
    assert_eq!(
        seen,
        vec![
            (EventType::Put, b"a".to_vec(), None),
            (EventType::Put, b"b".to_vec(), Some(b"a".to_vec())),
            (EventType::Delete, Vec::new(), Some(b"b".to_vec())),
        ]
    );
}

async fn snapshot_through_follower(follower: &mut Client) {
    let mut stream = within(WAIT, "snapshot", follower.snapshot())
        .await
        .expect("snapshot");
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut remaining = Vec::new();
    while let Some(part) = within(WAIT, "snapshot part", stream.message())
        .await
        .expect("snapshot stream")
    {
        remaining.push(part.remaining_bytes());
        blobs.push(part.blob().to_vec());
    }
    assert!(blobs.len() >= 2, "data then the digest");
    let digest_blob = blobs.pop().expect("digest message");
    let data: Vec<u8> = blobs.concat();
    assert_eq!(data.len() % 512, 0, "padded as etcdctl expects");
    assert_eq!(digest(&SHA256, &data).as_ref(), digest_blob.as_slice());
    // remaining_bytes counts the data still to come after each message, down to 0.
    let mut left = data.len() as u64;
    for (blob, announced) in blobs.iter().zip(&remaining) {
        left -= blob.len() as u64;
        assert_eq!(*announced, left);
    }
    assert_eq!(remaining.last(), Some(&0));
}

/// Grant, attach a key, keep alive twice on one stream, time-to-live with keys, revoke —
/// all through `member`.
async fn lease_with_keep_alive(all: &mut Client, member: &mut Client) {
    let grant = member.lease_grant(20, None).await.expect("grant");
    assert_eq!(grant.ttl(), 20);
    let lease = grant.id();
    member
        .put("leased", "v", Some(PutOptions::new().with_lease(lease)))
        .await
        .expect("put with the lease");
    let (mut keeper, mut responses) = within(WAIT, "keep-alive", member.lease_keep_alive(lease))
        .await
        .expect("open keep-alive");
    for _ in 0..2 {
        within(WAIT, "send keep-alive", keeper.keep_alive())
            .await
            .expect("send keep-alive");
        let response = within(WAIT, "keep-alive answer", responses.message())
            .await
            .expect("keep-alive stream")
            .expect("keep-alive answer");
        assert_eq!((response.id(), response.ttl()), (lease, 20));
    }
    let ttl = member
        .lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .expect("time to live");
    assert_eq!(ttl.granted_ttl(), 20);
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 20, "ttl {}", ttl.ttl());
    assert_eq!(ttl.keys(), [b"leased".to_vec()]);
    member.lease_revoke(lease).await.expect("revoke");
    let gone = all.get("leased", None).await.expect("get");
    assert_eq!(gone.count(), 0, "revoking the lease deleted its key");
}
