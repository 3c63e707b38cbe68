//! An anonymous flood cannot stall a member (issue 24, items 2 and 8). Eight threads without
//! credentials send wrong-password sign-ins and UserAdd requests to the leader of three real
//! members for three seconds, while a signed-in client keeps reading through the same member.
//! Before, bcrypt ran on the raft loop before any permission check (a wrong password cost a
//! full check, a refused UserAdd a full hash and a raft entry): reads waited for the hashing
//! and the leader missed heartbeats until it lost leadership. Now the admin check comes first,
//! sign-ins are checked off the loop and limited per user: every read is served and the leader
//! keeps its term.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qraft_io::client::Client;
use qraft_io::runtime;
use qraft_proto::authpb::Permission;
use qraft_proto::authpb::permission::Type as PermType;
use qraft_proto::etcdserverpb::{
    AuthRoleAddRequest, AuthRoleGrantPermissionRequest, AuthUserAddRequest,
    AuthUserGrantRoleRequest, RangeRequest,
};
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::wait_leader;

const THREADS: u64 = 8;
const LOAD: Duration = Duration::from_secs(3);

fn user(name: &str, password: &str) -> AuthUserAddRequest {
    AuthUserAddRequest {
        name: name.into(),
        password: password.into(),
        ..Default::default()
    }
}

/// root (root role) and alice (read on `/app/`), a key to read, auth on.
async fn set_up(client: &Client) {
    client
        .user_add(user("root", "rootpw"))
        .await
        .expect("add root");
    client
        .user_grant_role(AuthUserGrantRoleRequest {
            user: "root".into(),
            role: "root".into(),
        })
        .await
        .expect("grant root");
    client
        .user_add(user("alice", "alicepw"))
        .await
        .expect("add alice");
    client
        .role_add(AuthRoleAddRequest { name: "app".into() })
        .await
        .expect("add role");
    client
        .role_grant_permission(AuthRoleGrantPermissionRequest {
            name: "app".into(),
            perm: Some(Permission {
                perm_type: PermType::Read as i32,
                key: b"/app/".to_vec().into(),
                range_end: b"/app0".to_vec().into(),
            }),
        })
        .await
        .expect("grant permission");
    client
        .user_grant_role(AuthUserGrantRoleRequest {
            user: "alice".into(),
            role: "app".into(),
        })
        .await
        .expect("grant app");
    client.put_kv("/app/k", "v").await.expect("put");
    client
        .auth_enable(Default::default())
        .await
        .expect("auth enable");
}

/// (leader, term) as the member reports them to root.
fn leader_and_term(root: &Client) -> (u64, u64) {
    let status = runtime::block_on(root.status(Default::default())).expect("status as root");
    (status.leader, status.raft_term)
}

#[test]
fn anonymous_sign_in_and_user_add_flood_leaves_reads_and_the_leader_alone() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    let (target, _) = wait_leader(&mut c, None, Duration::from_secs(30));
    let admin = c.client(target);
    runtime::block_on(set_up(&admin));
    admin.close();

    let root = c.client(target);
    runtime::block_on(root.authenticate("root", "rootpw")).expect("root signs in");
    let reader = c.client(target);
    runtime::block_on(reader.authenticate("alice", "alicepw")).expect("alice signs in");
    let before = leader_and_term(&root);

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..THREADS)
        .map(|t| {
            let config = c.client_config(vec![c.nodes[target].client_url()]);
            let (stop, refused, accepted) = (stop.clone(), refused.clone(), accepted.clone());
            std::thread::spawn(move || {
                let client = runtime::block_on(Client::connect(config)).expect("connect");
                // Bounded by the stop flag and by a count.
                for n in 0..100_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = if t % 2 == 0 {
                        let name = if n % 2 == 0 { "root" } else { "alice" };
                        runtime::block_on(client.authenticate(name, &format!("guess{n}")))
                            .map(|_| ())
                    } else {
                        runtime::block_on(client.user_add(user(&format!("u{t}-{n}"), "pw")))
                            .map(|_| ())
                    };
                    let counter = if result.is_ok() { &accepted } else { &refused };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                client.close();
            })
        })
        .collect();

    let start = Instant::now();
    let mut reads = 0u64;
    let mut slowest = Duration::ZERO;
    let mut failures = Vec::new();
    while start.elapsed() < LOAD {
        let t = Instant::now();
        let result = runtime::block_on(reader.range(RangeRequest {
            key: b"/app/k".to_vec().into(),
            ..Default::default()
        }));
        slowest = slowest.max(t.elapsed());
        match result {
            Ok(r) if r.kvs.len() == 1 => reads += 1,
            Ok(r) => failures.push(format!("read returned {} keys", r.kvs.len())),
            Err(err) => failures.push(err.to_string()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().expect("attacker thread");
    }
    let after = leader_and_term(&root);
    let users = runtime::block_on(root.user_list(Default::default()))
        .expect("user list")
        .users;
    println!(
        "{} anonymous requests refused, {} accepted; {reads} reads, slowest {slowest:?}",
        refused.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed)
    );
    assert!(
        failures.is_empty(),
        "reads failed under the load: {failures:?}"
    );
    assert!(reads > 0, "no read completed");
    assert_eq!(
        before, after,
        "the leader (or its term) changed under an anonymous load"
    );
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        0,
        "an anonymous request passed"
    );
    assert_eq!(users, vec!["alice".to_string(), "root".to_string()]);
    assert!(refused.load(Ordering::Relaxed) > 0, "the load sent nothing");
    reader.close();
    root.close();
}
