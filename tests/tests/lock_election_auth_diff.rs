//! etcd's v3lock and v3election services with auth enabled, differential against the real
//! etcd 3.4: the locks and campaigns run with the caller's credentials, so a user without
//! permission on the lock's (or election's) prefix is refused with etcd's error, a client
//! without a user too, and a user with read-write permission on the prefix locks, unlocks,
//! campaigns and resigns. The transcripts (keys, error codes and texts) must be the same.
//!
//! Needs the binaries of the same profile: `cargo build --release --workspace --bins`.

use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, Error, LeaseGrantOptions, LockOptions, Permission, ResignOptions,
};

use qraft_tests::bounded_wait::within;
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::etcd::{EtcdProcess, require_etcd};

/// Every wait on a server is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);

const LEASE_ALICE: i64 = 0xa1;
const LEASE_BOB: i64 = 0xb0;
const LEASE_NOBODY: i64 = 0xc0;

async fn connect(endpoints: &[String], user: Option<(&str, &str)>) -> Client {
    let mut options = ConnectOptions::new().with_connect_timeout(WAIT);
    if let Some((name, password)) = user {
        options = options.with_user(name, password);
    }
    within(WAIT, "connect", Client::connect(endpoints, Some(options)))
        .await
        .expect("connect")
}

fn failure(error: Error) -> String {
    match error {
        Error::GRpcStatus(status) => format!("error {:?} {:?}", status.code(), status.message()),
        other => format!("error {other}"),
    }
}

/// Users, roles and leases as root, then auth enabled: alice may read and write `lk/` and
/// `el/`, bob has no role.
async fn set_up(endpoints: &[String]) {
    let mut root = connect(endpoints, None).await;
    for (user, password) in [("root", "rootpw"), ("alice", "alicepw"), ("bob", "bobpw")] {
        within(WAIT, "user add", root.user_add(user, password, None))
            .await
            .expect("user add");
    }
    for role in ["root", "locker"] {
        within(WAIT, "role add", root.role_add(role))
            .await
            .expect("role add");
    }
    for prefix in ["lk/", "el/"] {
        let permission = Permission::read_write(prefix).with_prefix();
        within(
            WAIT,
            "grant",
            root.role_grant_permission("locker", permission),
        )
        .await
        .expect("grant permission");
    }
    for (user, role) in [("root", "root"), ("alice", "locker")] {
        within(WAIT, "grant role", root.user_grant_role(user, role))
            .await
            .expect("grant role");
    }
    for id in [LEASE_ALICE, LEASE_BOB, LEASE_NOBODY] {
        let options = LeaseGrantOptions::new().with_id(id);
        within(WAIT, "lease grant", root.lease_grant(60, Some(options)))
            .await
            .expect("lease grant");
    }
    within(WAIT, "auth enable", root.auth_enable())
        .await
        .expect("auth enable");
}

/// Lock `lk` and campaign on `el` as `user`, unlocking and resigning what was won.
async fn lock_and_campaign(
    endpoints: &[String],
    user: Option<(&str, &str)>,
    lease: i64,
    log: &mut Vec<String>,
) {
    let who = user.map_or("no user", |(name, _)| name);
    let mut client = connect(endpoints, user).await;
    let options = LockOptions::new().with_lease(lease);
    match within(WAIT, "lock", client.lock("lk", Some(options))).await {
        Ok(locked) => {
            let key = String::from_utf8_lossy(locked.key()).into_owned();
            log.push(format!("{who}: lock: key={key}"));
            let unlocked = within(WAIT, "unlock", client.unlock(key)).await;
            log.push(format!("{who}: unlock: {}", outcome(unlocked)));
        }
        Err(error) => log.push(format!("{who}: lock: {}", failure(error))),
    }
    match within(WAIT, "campaign", client.campaign("el", who, lease)).await {
        Ok(campaign) => {
            let leader = campaign.leader().cloned();
            let key = leader
                .as_ref()
                .map(|l| String::from_utf8_lossy(l.key()).into_owned());
            log.push(format!("{who}: campaign: key={}", key.unwrap_or_default()));
            let options = leader.map(|l| ResignOptions::new().with_leader(l));
            let resigned = within(WAIT, "resign", client.resign(options)).await;
            log.push(format!("{who}: resign: {}", outcome(resigned)));
        }
        Err(error) => log.push(format!("{who}: campaign: {}", failure(error))),
    }
}

fn outcome<T>(result: Result<T, Error>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(error) => failure(error),
    }
}

fn transcript(endpoints: Vec<String>) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut log = Vec::new();
    runtime.block_on(async {
        set_up(&endpoints).await;
        lock_and_campaign(&endpoints, Some(("bob", "bobpw")), LEASE_BOB, &mut log).await;
        lock_and_campaign(&endpoints, None, LEASE_NOBODY, &mut log).await;
        lock_and_campaign(
            &endpoints,
            Some(("alice", "alicepw")),
            LEASE_ALICE,
            &mut log,
        )
        .await;
    });
    log
}

#[test]
fn lock_and_election_run_with_the_callers_permissions_as_etcd() {
    require_etcd("lock_and_election_run_with_the_callers_permissions_as_etcd");
    let etcd = EtcdProcess::start();
    let expected = transcript(vec![format!("http://{}", etcd.client_addr)]);
    drop(etcd);
    assert!(
        expected.iter().any(|l| l.starts_with("bob: lock: error")),
        "etcd refuses bob: {expected:?}"
    );
    assert!(
        expected
            .iter()
            .any(|l| l.starts_with("alice: lock: key=lk/")),
        "etcd lets alice lock: {expected:?}"
    );

    let cluster = GrpcCluster::start(3, GrpcCluster::etcd_timing());
    let actual = transcript(cluster.endpoints());
    assert_eq!(
        actual,
        expected,
        "qraft (left) differs from etcd (right)\netcd's transcript:\n{}",
        expected.join("\n")
    );
}
