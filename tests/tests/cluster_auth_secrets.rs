//! Tokens are unforgeable (issue 24, item 1): a real member draws its token prefixes from a
//! generator the operating system seeds at every start. Before, the prefixes came from a
//! generator seeded with the member ID (public: it is in every response header), so anyone
//! could compute root's token, and a restarted member handed out the same tokens again.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::collections::BTreeSet;
use std::time::Duration;

use qraft_io::runtime;
use qraft_proto::etcdserverpb::{AuthUserAddRequest, AuthUserGrantRoleRequest};
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::wait_until;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The letters the old scheme drew for the first `count` tokens of member `member_id`.
fn seeded_prefixes(member_id: u64, count: usize) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(member_id);
    (0..count)
        .map(|_| {
            (0..16)
                .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                .collect()
        })
        .collect()
}

/// Signs in as root on member 0 (retried while the member restarts): the token's random
/// prefix and the member ID from the response header.
fn sign_in(c: &Cluster) -> (String, u64) {
    wait_until("authenticate as root", Duration::from_secs(30), || {
        let client = c.client(0);
        let resp = runtime::block_on(client.authenticate("root", "rootpw"));
        client.close();
        let resp = resp.map_err(|e| e.to_string())?;
        let member = resp.header.map(|h| h.member_id).unwrap_or_default();
        let prefix = resp.token.split('.').next().unwrap_or_default().to_string();
        Ok((prefix, member))
    })
}

#[test]
fn token_prefixes_are_secret_and_fresh_after_a_restart() {
    let mut c = Cluster::start(1, ClusterOptions::default());
    let client = c.client(0);
    runtime::block_on(async {
        client
            .user_add(AuthUserAddRequest {
                name: "root".into(),
                password: "rootpw".into(),
                ..Default::default()
            })
            .await
            .expect("user add root");
        client
            .user_grant_role(AuthUserGrantRoleRequest {
                user: "root".into(),
                role: "root".into(),
            })
            .await
            .expect("grant root");
        client
            .auth_enable(Default::default())
            .await
            .expect("auth enable");
    });
    client.close();

    let mut prefixes = Vec::new();
    let mut member_id = 0;
    for round in 0..2 {
        if round == 1 {
            c.restart(0);
        }
        for _ in 0..3 {
            let (prefix, member) = sign_in(&c);
            member_id = member;
            prefixes.push(prefix);
        }
    }
    assert_ne!(member_id, 0, "responses name the member");
    // At least 128 bits of entropy: 26^28 > 2^128.
    for prefix in &prefixes {
        assert!(
            prefix.len() >= 28 && prefix.bytes().all(|b| b.is_ascii_lowercase()),
            "token prefix {prefix:?} is too short to be unguessable"
        );
    }
    let distinct: BTreeSet<&String> = prefixes.iter().collect();
    assert_eq!(
        distinct.len(),
        prefixes.len(),
        "a restarted member handed out a token prefix again: {prefixes:?}"
    );
    let predictable = seeded_prefixes(member_id, 8);
    for prefix in &prefixes {
        assert!(
            !predictable.iter().any(|p| prefix.starts_with(p.as_str())),
            "token prefix {prefix:?} follows from the member ID {member_id:x}"
        );
    }
}
