//! etcd's v3lock and v3election services, differential: the same sequence of calls through the
//! `etcd-client` crate goes to the real etcd 3.4 and to a 3-member qraft cluster, and the
//! transcripts (keys, values, revisions, who waits for whom, error codes and texts) must be the
//! same. Leases are granted with fixed IDs so the lock and candidate keys (`name/<lease hex>`)
//! are the same on both.
//!
//! Covers: two lock contenders, the second waiting until the first unlocks, a third until the
//! second's lease is revoked, re-locking with the same lease, a lock under a missing lease, a
//! lock whose caller gives up while waiting (its key is removed); an election with leader
//! handover on Resign, Proclaim by the leader and by a non-leader, Leader with and without
//! candidates, and Observe seeing every leader value; and the JSON gateway's lock and election
//! paths.
//!
//! Needs the binaries of the same profile: `cargo build --release --workspace --bins`.

use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, Error, GetOptions, LeaderKey, LeaseGrantOptions, LockOptions,
    ObserveStream, ProclaimOptions, ResignOptions, ResponseHeader,
};
use serde_json::{Value, json};

use qraft_tests::bounded_wait::within;
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::etcd::{EtcdProcess, require_etcd};
use qraft_tests::http::post_json;

/// Every wait on a server is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);
/// How long a contender is watched to still be waiting.
const STILL_WAITING: Duration = Duration::from_millis(700);

const LEASE_A: i64 = 0x1a;
const LEASE_B: i64 = 0x2b;
const LEASE_C: i64 = 0x3c;
const LEASE_D: i64 = 0x4d;
const LEASE_E: i64 = 0x5e;
const MISSING_LEASE: i64 = 0x999;

async fn connect(endpoints: Vec<String>) -> Client {
    let options = ConnectOptions::new().with_connect_timeout(WAIT);
    within(WAIT, "connect", Client::connect(endpoints, Some(options)))
        .await
        .expect("connect")
}

fn revision(header: Option<&ResponseHeader>) -> i64 {
    header.map_or(-1, |h| h.revision())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn failure(error: Error) -> String {
    match error {
        Error::GRpcStatus(status) => format!("error {:?} {:?}", status.code(), status.message()),
        other => format!("error {other}"),
    }
}

fn leader_key(leader: &LeaderKey) -> String {
    format!(
        "leader name={} key={} rev={} lease={:x}",
        text(leader.name()),
        text(leader.key()),
        leader.rev(),
        leader.lease()
    )
}

/// Records whether `task` (a contender) is still waiting after a while.
async fn blocked_until<T: Send + 'static>(
    log: &mut Vec<String>,
    what: &str,
    task: &mut tokio::task::JoinHandle<T>,
) {
    let still = tokio::time::timeout(STILL_WAITING, &mut *task)
        .await
        .is_err();
    log.push(format!("{what}: waiting={still}"));
}

async fn lock_sequence(client: &Client, log: &mut Vec<String>) {
    let mut c = client.clone();
    for (id, ttl) in [(LEASE_A, 60), (LEASE_B, 60), (LEASE_C, 60), (LEASE_E, 60)] {
        within(
            WAIT,
            "grant",
            c.lease_grant(ttl, Some(LeaseGrantOptions::new().with_id(id))),
        )
        .await
        .expect("grant");
    }
    let lock = |lease: i64| {
        let mut c = client.clone();
        async move {
            c.lock("lk", Some(LockOptions::new().with_lease(lease)))
                .await
                .map(|r| (text(r.key()), revision(r.header())))
        }
    };
    let a = within(WAIT, "lock A", lock(LEASE_A)).await.expect("lock A");
    log.push(format!("lock A: key={} rev={}", a.0, a.1));

    let mut b = tokio::spawn(lock(LEASE_B));
    blocked_until(log, "lock B behind A", &mut b).await;
    let unlocked = within(WAIT, "unlock A", c.unlock(a.0.clone()))
        .await
        .expect("unlock");
    log.push(format!("unlock A: rev={}", revision(unlocked.header())));
    let b = within(WAIT, "lock B", b)
        .await
        .expect("task")
        .expect("lock B");
    log.push(format!("lock B: key={} rev={}", b.0, b.1));

    let mut lock_c = tokio::spawn(lock(LEASE_C));
    blocked_until(log, "lock C behind B", &mut lock_c).await;
    let revoked = within(WAIT, "revoke B", c.lease_revoke(LEASE_B))
        .await
        .expect("revoke");
    log.push(format!("revoke B: rev={}", revision(revoked.header())));
    let lock_c = within(WAIT, "lock C", lock_c)
        .await
        .expect("task")
        .expect("lock C");
    log.push(format!("lock C: key={} rev={}", lock_c.0, lock_c.1));

    // The same lease locks again at once, with the same key (its create revision is the owner).
    let again = within(WAIT, "lock C again", lock(LEASE_C))
        .await
        .expect("lock C");
    log.push(format!("lock C again: key={} rev={}", again.0, again.1));

    let missing = within(WAIT, "lock missing", lock(MISSING_LEASE)).await;
    log.push(format!(
        "lock with a missing lease: {:?}",
        missing.map_err(failure)
    ));

    // A contender that gives up while waiting (client-side timeout) takes its key away.
    let mut impatient = client.clone();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(500),
        impatient.lock("lk", Some(LockOptions::new().with_lease(LEASE_E))),
    )
    .await;
    log.push(format!("lock E gave up: {}", gave_up.is_err()));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let keys = within(
            WAIT,
            "get lk/",
            c.get(
                "lk/",
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
        )
        .await
        .expect("get");
        let keys: Vec<String> = keys.kvs().iter().map(|kv| text(kv.key())).collect();
        if !keys.iter().any(|k| k.ends_with("5e")) || tokio::time::Instant::now() > deadline {
            log.push(format!("lock keys after E gave up: {keys:?}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unlocked = within(WAIT, "unlock C", c.unlock(lock_c.0))
        .await
        .expect("unlock");
    log.push(format!("unlock C: rev={}", revision(unlocked.header())));
}

async fn next_observed(stream: &mut ObserveStream) -> String {
    match within(WAIT, "observe", stream.message()).await {
        Ok(Some(response)) => {
            let kv = response.kv().expect("observed kv");
            format!(
                "observed key={} value={} create={} mod={} rev={}",
                text(kv.key()),
                text(kv.value()),
                kv.create_revision(),
                kv.mod_revision(),
                revision(response.header())
            )
        }
        Ok(None) => "observe ended".to_owned(),
        Err(error) => failure(error),
    }
}

async fn leader(client: &Client, log: &mut Vec<String>, what: &str) {
    let mut c = client.clone();
    let line = match within(WAIT, "leader", c.leader("el")).await {
        Ok(response) => {
            let kv = response.kv().expect("leader kv");
            format!(
                "key={} value={} create={} rev={}",
                text(kv.key()),
                text(kv.value()),
                kv.create_revision(),
                revision(response.header())
            )
        }
        Err(error) => failure(error),
    };
    log.push(format!("{what}: {line}"));
}

async fn election_sequence(client: &Client, log: &mut Vec<String>) {
    let mut c = client.clone();
    within(
        WAIT,
        "grant D",
        c.lease_grant(60, Some(LeaseGrantOptions::new().with_id(LEASE_D))),
    )
    .await
    .expect("grant D");
    leader(client, log, "leader before any candidate").await;
    // etcd sends a stream's response headers with its first message, so opening Observe
    // returns only once there is a leader.
    let observing = {
        let mut c = client.clone();
        tokio::spawn(async move { c.observe("el").await })
    };

    let first = within(WAIT, "campaign A", c.campaign("el", "a1", LEASE_A))
        .await
        .expect("campaign A");
    let leader_a = first.leader().expect("leader key").clone();
    log.push(format!(
        "campaign A: {} rev={}",
        leader_key(&leader_a),
        revision(first.header())
    ));
    let mut observer = within(WAIT, "observe", observing)
        .await
        .expect("task")
        .expect("observe");
    log.push(next_observed(&mut observer).await);

    let mut campaign_d = {
        let mut c = client.clone();
        tokio::spawn(async move { c.campaign("el", "d1", LEASE_D).await })
    };
    blocked_until(log, "campaign D behind A", &mut campaign_d).await;

    let proclaimed = within(
        WAIT,
        "proclaim A",
        c.proclaim(
            "a2",
            Some(ProclaimOptions::new().with_leader(leader_a.clone())),
        ),
    )
    .await;
    log.push(format!(
        "proclaim by A: {:?}",
        proclaimed.map(|r| revision(r.header())).map_err(failure)
    ));
    log.push(next_observed(&mut observer).await);
    leader(client, log, "leader A").await;

    let stale = leader_a.clone().with_rev(leader_a.rev() + 1000);
    let not_leader = within(
        WAIT,
        "proclaim stale",
        c.proclaim("x", Some(ProclaimOptions::new().with_leader(stale))),
    )
    .await;
    log.push(format!(
        "proclaim by a non-leader: {:?}",
        not_leader.map(|r| revision(r.header())).map_err(failure)
    ));
    let no_key = within(WAIT, "proclaim without a leader key", c.proclaim("x", None)).await;
    log.push(format!(
        "proclaim without a leader key: {:?}",
        no_key.map(|r| revision(r.header())).map_err(failure)
    ));

    let resigned = within(
        WAIT,
        "resign A",
        c.resign(Some(ResignOptions::new().with_leader(leader_a.clone()))),
    )
    .await
    .expect("resign A");
    log.push(format!("resign A: rev={}", revision(resigned.header())));
    let d = within(WAIT, "campaign D", campaign_d)
        .await
        .expect("task")
        .expect("campaign D");
    let leader_d = d.leader().expect("leader key").clone();
    log.push(format!(
        "campaign D: {} rev={}",
        leader_key(&leader_d),
        revision(d.header())
    ));
    log.push(next_observed(&mut observer).await);
    leader(client, log, "leader D").await;

    // Resigning a leadership already given up changes nothing.
    let again = within(
        WAIT,
        "resign A again",
        c.resign(Some(ResignOptions::new().with_leader(leader_a))),
    )
    .await;
    log.push(format!(
        "resign A again: {:?}",
        again.map(|r| revision(r.header())).map_err(failure)
    ));
    // A second Campaign under the leader's lease keeps its key and proclaims the new value.
    let recampaign = within(WAIT, "campaign D again", c.campaign("el", "d2", LEASE_D))
        .await
        .expect("campaign D again");
    log.push(format!(
        "campaign D again: {} rev={}",
        leader_key(recampaign.leader().expect("leader key")),
        revision(recampaign.header())
    ));
    log.push(next_observed(&mut observer).await);
    within(WAIT, "revoke D", c.lease_revoke(LEASE_D))
        .await
        .expect("revoke D");
    leader(client, log, "leader after D's lease is revoked").await;
}

/// The value with every object's keys in order (the order of JSON keys means nothing).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Removes what differs between two clusters by nature from a gateway answer.
fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in ["cluster_id", "member_id", "raft_term"] {
                if let Some(v) = map.get_mut(key) {
                    *v = json!("<masked>");
                }
            }
            map.values_mut().for_each(mask);
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

fn gateway_sequence(addr: &str, log: &mut Vec<String>) {
    let calls = [
        ("/v3/election/leader", json!({ "name": "ZWw=" })),
        (
            "/v3/lock/lock",
            json!({ "name": "Z3c=", "lease": LEASE_A.to_string() }),
        ),
        ("/v3/lock/unlock", json!({ "key": "Z3cvMWE=" })),
        (
            "/v3/election/campaign",
            json!({ "name": "Z2U=", "lease": LEASE_A.to_string(), "value": "djE=" }),
        ),
        ("/v3/election/leader", json!({ "name": "Z2U=" })),
        (
            "/v3/election/proclaim",
            json!({ "leader": { "name": "Z2U=", "key": "Z2UvMWE=", "rev": "1", "lease": "26" }, "value": "djI=" }),
        ),
    ];
    for (path, body) in calls {
        let response = post_json(addr, path, &body.to_string())
            .unwrap_or_else(|e| panic!("{path} at {addr}: {e}"));
        let mut value: Value =
            serde_json::from_str(&response.body).unwrap_or(Value::String(response.body));
        mask(&mut value);
        log.push(format!(
            "gateway {path}: {} {}",
            response.status,
            sorted(value)
        ));
    }
}

fn transcript(endpoints: Vec<String>, gateway: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut log = Vec::new();
    runtime.block_on(async {
        let client = connect(endpoints).await;
        lock_sequence(&client, &mut log).await;
        election_sequence(&client, &mut log).await;
    });
    gateway_sequence(gateway, &mut log);
    log
}

#[test]
fn lock_and_election_services_answer_as_etcd() {
    require_etcd("lock_and_election_services_answer_as_etcd");
    let etcd = EtcdProcess::start();
    let expected = transcript(
        vec![format!("http://{}", etcd.client_addr)],
        &etcd.client_addr,
    );
    drop(etcd);

    let cluster = GrpcCluster::start(3, GrpcCluster::etcd_timing());
    let actual = transcript(cluster.endpoints(), &cluster.grpc_addrs[1]);
    for (i, (e, q)) in expected.iter().zip(&actual).enumerate() {
        if e != q {
            eprintln!("first difference at line {i}:\n  etcd:  {e}\n  qraft: {q}");
            break;
        }
    }
    assert_eq!(
        actual,
        expected,
        "qraft (left) differs from etcd (right)\netcd's transcript:\n{}",
        expected.join("\n")
    );
}
