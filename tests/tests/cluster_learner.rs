//! A learner serves what etcd's learners serve — its own `Status`, serializable ranges and
//! snapshots — and refuses every other client call with etcd's `etcdserver: rpc not supported
//! for learner` (FailedPrecondition), over qraft's QUIC client API and over etcd's gRPC API
//! alike. Lease keep-alives and time-to-live queries in particular are refused, not forwarded
//! to the leader as a follower forwards them. Once promoted, the member serves them.

use std::fmt::Debug;
use std::time::Duration;

use etcd_client::{ConnectOptions, GetOptions};
use qraft_io::client::{Client, ClientError};
use qraft_io::error_responses::Code;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{
    AlarmRequest, DeleteRangeRequest, LeaseGrantRequest, LeaseTimeToLiveRequest, PutRequest,
    RangeRequest, WatchCreateRequest,
};
use qraft_tests::bounded_wait::within;
use qraft_tests::cluster::ClusterOptions;
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::cluster_members::wait_for;
use qraft_tests::etcd_cluster::free_port;

/// Every wait on the cluster is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);
const REFUSAL: &str = "etcdserver: rpc not supported for learner";

fn range(key: &str, serializable: bool) -> RangeRequest {
    RangeRequest {
        key: key.as_bytes().to_vec().into(),
        serializable,
        ..Default::default()
    }
}

/// The value of `key` in member `client`'s own store (a serializable read), if it has one.
fn local_value(client: &Client, key: &str) -> Option<Vec<u8>> {
    let r = runtime::block_on(client.range(range(key, true))).ok()?;
    r.kvs.first().map(|kv| kv.value.to_vec())
}

#[track_caller]
fn assert_refused<T: Debug>(what: &str, result: Result<T, ClientError>) {
    match result {
        Err(ClientError::Status { code, message, .. }) => assert_eq!(
            (code, message.as_str()),
            (Code::FailedPrecondition, REFUSAL),
            "{what}"
        ),
        other => panic!("{what}: expected the learner's refusal, got {other:?}"),
    }
}

#[track_caller]
fn assert_grpc_refused<T: Debug>(what: &str, result: Result<T, etcd_client::Error>) {
    match result {
        Err(etcd_client::Error::GRpcStatus(status)) => assert_eq!(
            (status.code() as i32, status.message()),
            (Code::FailedPrecondition as i32, REFUSAL),
            "{what}"
        ),
        other => panic!("{what}: expected the learner's refusal, got {other:?}"),
    }
}

#[test]
fn a_learner_serves_only_its_status_and_serializable_reads() {
    let mut g = GrpcCluster::start(1, ClusterOptions::default());
    let leader = g.cluster.client(0);
    runtime::block_on(leader.put_kv("k", "v")).expect("put");
    let lease = runtime::block_on(leader.lease_grant(LeaseGrantRequest {
        ttl: 60,
        ..Default::default()
    }))
    .expect("grant")
    .id;

    let learner = g.cluster.add_node("learner");
    let grpc_endpoint = format!("http://127.0.0.1:{}", free_port());
    g.cluster.nodes[learner]
        .extra_args
        .push(format!("--listen-grpc-urls={grpc_endpoint}"));
    let peer_url = g.cluster.nodes[learner].peer_url();
    let (ok, out, err) = g.cluster.ctl_reconfigure(
        0,
        &[
            "member",
            "add",
            "learner",
            &format!("--peer-urls={peer_url}"),
            "--learner",
            "-w",
            "json",
        ],
        WAIT,
    );
    assert!(ok, "member add failed: {err}");
    let added: serde_json::Value = serde_json::from_str(&out).expect("member add json");
    let learner_id = added["member"]["ID"].as_u64().expect("new member id");
    g.cluster.spawn(learner, "existing");

    // Served: serializable reads and the member's own status.
    let client = g.cluster.client(learner);
    wait_for(WAIT, "the learner serves k from its own store", || {
        (local_value(&client, "k")? == b"v").then_some(())
    });
    // The learner knows it is one once it applied its own admission; until then etcd serves
    // it too (the member does not exist in its view yet).
    wait_for(WAIT, "the learner refuses a linearizable read", || {
        runtime::block_on(client.range(range("k", false))).err()
    });
    let status = runtime::block_on(client.status(Default::default())).expect("status");
    assert!(status.is_learner, "{status:?}");

    // Refused over qraft's client API: writes, linearizable reads, every lease call (not
    // forwarded), watches, membership and maintenance calls.
    assert_refused(
        "linearizable range",
        runtime::block_on(client.range(range("k", false))),
    );
    assert_refused(
        "put",
        runtime::block_on(client.put(PutRequest {
            key: b"k".to_vec().into(),
            value: b"w".to_vec().into(),
            ..Default::default()
        })),
    );
    assert_refused(
        "delete",
        runtime::block_on(client.delete_range(DeleteRangeRequest {
            key: b"k".to_vec().into(),
            ..Default::default()
        })),
    );
    assert_refused(
        "lease grant",
        runtime::block_on(client.lease_grant(LeaseGrantRequest {
            ttl: 60,
            ..Default::default()
        })),
    );
    assert_refused(
        "lease time-to-live",
        runtime::block_on(client.lease_time_to_live(LeaseTimeToLiveRequest {
            id: lease,
            keys: false,
        })),
    );
    assert_refused(
        "lease keep-alive",
        runtime::block_on(client.lease_keep_alive(lease).keep_alive()),
    );
    assert_refused(
        "lease list",
        runtime::block_on(client.lease_leases(Default::default())),
    );
    assert_refused(
        "member list",
        runtime::block_on(client.member_list(Default::default())),
    );
    assert_refused(
        "alarm list",
        runtime::block_on(client.alarm(AlarmRequest::default())),
    );
    assert_refused(
        "defragment",
        runtime::block_on(client.defragment(Default::default())),
    );
    let watched = runtime::block_on(async {
        let mut watch = client
            .watch(WatchCreateRequest {
                key: b"k".to_vec().into(),
                ..Default::default()
            })
            .await?;
        watch.next().await.unwrap_or(Err(ClientError::StreamClosed))
    });
    assert_refused("watch", watched);
    // Nothing the learner refused reached the leader.
    assert_eq!(local_value(&leader, "k").as_deref(), Some(&b"v"[..]));

    // The same over etcd's gRPC API (unary calls and the keep-alive and watch streams).
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio.block_on(async {
        let options = ConnectOptions::new()
            .with_connect_timeout(WAIT)
            .with_timeout(WAIT);
        let mut grpc = within(
            WAIT,
            "connect",
            etcd_client::Client::connect([grpc_endpoint.as_str()], Some(options)),
        )
        .await
        .expect("connect");
        let got = within(
            WAIT,
            "serializable get",
            grpc.get("k", Some(GetOptions::new().with_serializable())),
        )
        .await
        .expect("serializable get");
        assert_eq!(got.kvs()[0].value(), b"v");
        within(WAIT, "status", grpc.status()).await.expect("status");
        assert_grpc_refused("get", within(WAIT, "get", grpc.get("k", None)).await);
        assert_grpc_refused("put", within(WAIT, "put", grpc.put("k", "w", None)).await);
        assert_grpc_refused(
            "lease time-to-live",
            within(WAIT, "time-to-live", grpc.lease_time_to_live(lease, None)).await,
        );
        let keep_alive = async {
            let (mut keeper, mut responses) = grpc.lease_keep_alive(lease).await?;
            keeper.keep_alive().await?;
            responses.message().await
        };
        assert_grpc_refused(
            "lease keep-alive",
            within(WAIT, "keep-alive", keep_alive).await,
        );
        let watch = async {
            let mut stream = grpc.watch("k", None).await?;
            stream.message().await
        };
        assert_grpc_refused("watch", within(WAIT, "watch", watch).await);
        assert_grpc_refused(
            "member list",
            within(WAIT, "member list", grpc.member_list()).await,
        );
    });

    // Promoted, the member serves lease calls again (forwarding them to the leader).
    let hex = format!("{learner_id:x}");
    wait_for(WAIT, "member promote succeeds", || {
        let (ok, out, _) = g.cluster.ctl(0, &["member", "promote", &hex]);
        ok.then_some(out)
    });
    let ttl = wait_for(WAIT, "the promoted member answers time-to-live", || {
        runtime::block_on(client.lease_time_to_live(LeaseTimeToLiveRequest {
            id: lease,
            keys: false,
        }))
        .ok()
    });
    assert!(ttl.ttl > 0, "{ttl:?}");
    client.close();
    leader.close();
}
