//! etcd's Rust client against the listener: every call shape, errors, auth tokens.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, Error, GetOptions, WatchOptions};
use qraft_server::grpc::GrpcLimits;

use crate::scripted_core::{COMPACTED, LEASE_NOT_FOUND, ScriptedCore};

/// Every wait on the server is bounded so a broken listener fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

async fn connect(core: &ScriptedCore) -> Client {
    let addr = crate::start(core.clone(), GrpcLimits::default());
    let options = ConnectOptions::new().with_timeout(WAIT);
    tokio::time::timeout(
        WAIT,
        Client::connect([format!("http://{addr}")], Some(options)),
    )
    .await
    .expect("connect in time")
    .expect("connect")
}

fn status_of(error: Error) -> (i32, String) {
    match error {
        Error::GRpcStatus(status) => (status.code() as i32, status.message().to_owned()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

#[tokio::test]
async fn kv_calls_round_trip_through_the_core() {
    let core = ScriptedCore::default();
    let mut client = connect(&core).await;
    let put = client.put("k", "v1", None).await.expect("put");
    assert_eq!(put.header().map(|h| h.revision()), Some(1));
    client.put("k", "v2", None).await.expect("put");
    let got = client.get("k", None).await.expect("get");
    assert_eq!(got.count(), 1);
    assert_eq!(got.kvs()[0].value(), b"v2");
    assert_eq!(got.kvs()[0].version(), 2);
    assert_eq!(got.header().map(|h| h.cluster_id()), Some(7));
    let deleted = client.delete("k", None).await.expect("delete");
    assert_eq!(deleted.deleted(), 1);
    assert_eq!(client.get("k", None).await.expect("get").count(), 0);
}

#[tokio::test]
async fn core_errors_reach_the_client_with_etcd_code_and_text() {
    let core = ScriptedCore::default();
    let mut client = connect(&core).await;
    for value in ["a", "b", "c"] {
        client.put("k", value, None).await.expect("put");
    }
    client.compact(3, None).await.expect("compact");
    let error = client
        .get("k", Some(GetOptions::new().with_revision(2)))
        .await
        .expect_err("compacted");
    assert_eq!(status_of(error), (11, COMPACTED.to_owned()));
    let error = client.lease_revoke(999).await.expect_err("no such lease");
    assert_eq!(status_of(error), (5, LEASE_NOT_FOUND.to_owned()));
    let error = client
        .alarm(Default::default(), Default::default(), None)
        .await;
    assert_eq!(
        status_of(error.expect_err("not scripted")),
        (12, "scripted core: not scripted".to_owned())
    );
}

#[tokio::test]
async fn maintenance_and_cluster_calls() {
    let core = ScriptedCore::default();
    let mut client = connect(&core).await;
    let status = client.status().await.expect("status");
    assert_eq!(status.version(), "3.6.0", "etcd-style version for clients");
    assert_eq!(status.leader(), 1);
    let members = client.member_list().await.expect("member list");
    assert_eq!(members.members().len(), 1);
    assert_eq!(members.members()[0].name(), "one");
    let mut snapshot = client.snapshot().await.expect("snapshot");
    let part = tokio::time::timeout(WAIT, snapshot.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("one part");
    assert_eq!(part.blob(), b"snapshot");
    let end = tokio::time::timeout(WAIT, snapshot.message())
        .await
        .expect("in time");
    assert!(matches!(end, Ok(None)), "the stream ends cleanly: {end:?}");
}

#[tokio::test]
async fn one_watch_stream_carries_several_watches() {
    let core = ScriptedCore::default();
    let mut client = connect(&core).await;
    let mut stream = client.watch("a", None).await.expect("watch");
    let created = next(&mut stream).await;
    assert!(created.created());
    let first_id = created.watch_id();
    stream
        .watch("b", Some(WatchOptions::new()))
        .await
        .expect("second watch on the same stream");
    let created = next(&mut stream).await;
    assert!(created.created());
    let second_id = created.watch_id();
    assert_ne!(first_id, second_id);

    client.put("b", "1", None).await.expect("put");
    let event = next(&mut stream).await;
    assert_eq!(event.watch_id(), second_id);
    assert_eq!(event.events()[0].kv().map(|kv| kv.value()), Some(&b"1"[..]));

    stream.cancel(second_id).await.expect("cancel");
    let canceled = next(&mut stream).await;
    assert!(canceled.canceled());
    assert_eq!(canceled.watch_id(), second_id);

    client.put("b", "2", None).await.expect("put");
    client.put("a", "3", None).await.expect("put");
    let event = next(&mut stream).await;
    assert_eq!(
        event.watch_id(),
        first_id,
        "no event for the canceled watch"
    );

    stream.request_progress().await.expect("progress");
    let progress = next(&mut stream).await;
    assert_eq!(progress.watch_id(), -1);
    assert_eq!(progress.header().map(|h| h.revision()), Some(3));
}

async fn next(stream: &mut etcd_client::WatchStream) -> etcd_client::WatchResponse {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a watch response in time")
        .expect("no stream error")
        .expect("stream still open")
}

#[tokio::test]
async fn lease_keep_alive_is_bidirectional() {
    let core = ScriptedCore::default();
    let mut client = connect(&core).await;
    let grant = client.lease_grant(30, None).await.expect("grant");
    let (mut keeper, mut responses) = client.lease_keep_alive(grant.id()).await.expect("open");
    for _ in 0..3 {
        keeper.keep_alive().await.expect("send keep-alive");
        let response = tokio::time::timeout(WAIT, responses.message())
            .await
            .expect("in time")
            .expect("ok")
            .expect("a response per request");
        assert_eq!((response.id(), response.ttl()), (grant.id(), 30));
    }
    client.lease_revoke(grant.id()).await.expect("revoke");
    keeper.keep_alive().await.expect("send keep-alive");
    let response = tokio::time::timeout(WAIT, responses.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("response");
    assert_eq!(response.ttl(), 0, "an unknown lease answers TTL 0");
}

#[tokio::test]
async fn the_auth_token_travels_with_every_request() {
    let core = ScriptedCore::default();
    let addr = crate::start(core.clone(), GrpcLimits::default());
    let options = ConnectOptions::new()
        .with_user("alice", "secret")
        .with_timeout(WAIT);
    let mut client = Client::connect([format!("http://{addr}")], Some(options))
        .await
        .expect("connect with credentials");
    client.put("k", "v", None).await.expect("put");
    let tokens = core.inner.tokens.lock().expect("tokens").clone();
    assert_eq!(tokens.first().map(String::as_str), Some(""), "authenticate");
    assert_eq!(
        tokens.last().map(String::as_str),
        Some("token-of-alice"),
        "the put carries the token"
    );
}
