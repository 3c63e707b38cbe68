//! qraft's client moves on from a learner as etcd's clientv3 does: a learner refuses writes,
//! linearizable reads, lease calls and watches with `etcdserver: rpc not supported for
//! learner`, and a client whose first endpoint is that learner tries its other endpoints and
//! gets the call done there. A client that knows only the learner keeps the refusal.

use std::time::Duration;

use qraft_io::client::{Client, ClientError};
use qraft_io::error_responses::Code;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{LeaseGrantRequest, RangeRequest, WatchCreateRequest};
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_members::wait_for;

/// Every wait on the cluster is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);
const REFUSAL: &str = "etcdserver: rpc not supported for learner";

fn linearizable(key: &str) -> RangeRequest {
    RangeRequest {
        key: key.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

fn is_refusal(result: &Result<impl std::fmt::Debug, ClientError>) -> bool {
    matches!(result, Err(ClientError::Status { code, message, .. })
        if *code == Code::FailedPrecondition && message == REFUSAL)
}

fn value(client: &Client, key: &str) -> Result<Option<Vec<u8>>, ClientError> {
    let r = runtime::block_on(client.range(linearizable(key)))?;
    Ok(r.kvs.first().map(|kv| kv.value.to_vec()))
}

/// Member 0 is a one-member cluster's leader; the returned index is a learner that knows it is
/// one (it refuses a linearizable read).
fn cluster_with_learner() -> (Cluster, usize) {
    let mut c = Cluster::start(1, ClusterOptions::default());
    let learner = c.add_node("learner");
    let peer_url = c.nodes[learner].peer_url();
    wait_for(WAIT, "member add --learner succeeds", || {
        let (ok, _, _) = c.ctl(
            0,
            &[
                "member",
                "add",
                "learner",
                &format!("--peer-urls={peer_url}"),
                "--learner",
            ],
        );
        ok.then_some(())
    });
    c.spawn(learner, "existing");
    let only_learner = c.client(learner);
    wait_for(WAIT, "the learner refuses a linearizable read", || {
        is_refusal(&value(&only_learner, "k")).then_some(())
    });
    (c, learner)
}

#[test]
fn a_client_whose_first_endpoint_is_a_learner_is_served_by_the_next() {
    let (c, learner) = cluster_with_learner();
    let endpoints = vec![c.nodes[learner].client_url(), c.nodes[0].client_url()];
    let client = runtime::block_on(Client::connect(c.client_config(endpoints))).expect("connect");

    for i in 0..5 {
        runtime::block_on(client.put_kv(format!("k{i}"), format!("v{i}")))
            .unwrap_or_else(|e| panic!("put k{i} through a learner-first client: {e}"));
        let got = value(&client, &format!("k{i}")).expect("linearizable range");
        assert_eq!(got, Some(format!("v{i}").into_bytes()));
    }

    // A fresh client (its first call goes to the learner again) and the other call kinds the
    // learner refuses: a lease grant with its keep-alive, and a watch.
    let endpoints = vec![c.nodes[learner].client_url(), c.nodes[0].client_url()];
    let client = runtime::block_on(Client::connect(c.client_config(endpoints))).expect("connect");
    let lease = runtime::block_on(client.lease_grant(LeaseGrantRequest {
        ttl: 60,
        ..Default::default()
    }))
    .expect("lease grant through a learner-first client");
    let endpoints = vec![c.nodes[learner].client_url(), c.nodes[0].client_url()];
    let keep_client =
        runtime::block_on(Client::connect(c.client_config(endpoints))).expect("connect");
    let renewed = runtime::block_on(keep_client.lease_keep_alive(lease.id).keep_alive())
        .expect("keep-alive through a learner-first client");
    assert!(renewed.ttl > 0, "{renewed:?}");

    let endpoints = vec![c.nodes[learner].client_url(), c.nodes[0].client_url()];
    let watch_client =
        runtime::block_on(Client::connect(c.client_config(endpoints))).expect("connect");
    let leader = c.client(0);
    let watched = runtime::timeout(WAIT, async {
        let mut watch = watch_client
            .watch(WatchCreateRequest {
                key: b"w".to_vec().into(),
                ..Default::default()
            })
            .await?;
        let created = watch.next().await.ok_or(ClientError::StreamClosed)??;
        assert!(created.created, "{created:?}");
        leader.put_kv("w", "1").await?;
        loop {
            let w = watch.next().await.ok_or(ClientError::StreamClosed)??;
            if let Some(e) = w.events.first() {
                return Ok::<_, ClientError>(e.kv.clone().unwrap_or_default().value);
            }
        }
    });
    let event = runtime::block_on(watched)
        .expect("the watch event within the deadline")
        .expect("watch through a learner-first client");
    assert_eq!(&event[..], b"1");
}

#[test]
fn a_client_that_knows_only_learners_keeps_the_refusal() {
    let (c, learner) = cluster_with_learner();
    let client = c.client(learner);
    let put = runtime::block_on(client.put_kv("k", "v"));
    assert!(is_refusal(&put), "{put:?}");
    let watched = runtime::block_on(async {
        let mut watch = client
            .watch(WatchCreateRequest {
                key: b"k".to_vec().into(),
                ..Default::default()
            })
            .await?;
        watch.next().await.unwrap_or(Err(ClientError::StreamClosed))
    });
    assert!(is_refusal(&watched), "{watched:?}");
    // Nothing reached the leader.
    assert_eq!(value(&c.client(0), "k").expect("range on the leader"), None);
}
