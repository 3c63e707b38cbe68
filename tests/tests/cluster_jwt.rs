//! Signed auth tokens (`--auth-token jwt,...`, etcd's JWT) on two real members sharing one key
//! pair: a token one member signs works on the other (nothing is replicated per token); a
//! token signed with another key, one whose claims were altered and one past its `exp` are
//! refused with etcd's "invalid auth token"; a change to users or roles makes earlier tokens
//! old ("revision of auth store is old"), as etcd's JWT rule.
//!
//! Needs the binaries of the same profile: `cargo build --release --workspace --bins`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use qraft_io::client::{Client, ClientError};
use qraft_io::jwt::{JwtOptions, SignedTokens};
use qraft_io::runtime::block_on;
use qraft_proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthUserAddRequest, AuthUserGrantRoleRequest,
};
use qraft_tests::cluster::{Cluster, ClusterOptions};

const INVALID_TOKEN: &str = "etcdserver: invalid auth token";
const OLD_REVISION: &str = "etcdserver: revision of auth store is old";
/// The tokens' lifetime: short, so the test sees one expire.
const TTL_S: u64 = 2;

fn key(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../io/src/jwt/testdata")
        .join(name)
}

fn refused(result: Result<impl std::fmt::Debug, ClientError>, message: &str) {
    let err = result
        .expect_err("the request should be refused")
        .to_string();
    assert!(err.contains(message), "expected {message:?}, got {err:?}");
}

fn put(client: &Client, key: &str) -> Result<(), ClientError> {
    block_on(client.put_kv(key, "v")).map(|_| ())
}

#[test]
fn a_token_signed_by_one_member_works_on_another_until_it_expires() {
    let auth_token = format!(
        "jwt,pub-key={},priv-key={},sign-method=RS256,ttl={TTL_S}s",
        key("rsa.crt").display(),
        key("rsa.key").display()
    );
    let c = Cluster::start(
        2,
        ClusterOptions {
            extra_args: vec!["--auth-token".into(), auth_token],
            ..ClusterOptions::default()
        },
    );
    let admin = c.client(0);
    for name in ["root", "alice"] {
        block_on(admin.user_add(AuthUserAddRequest {
            name: name.into(),
            password: format!("{name}pw"),
            ..Default::default()
        }))
        .expect("user add");
    }
    block_on(admin.user_grant_role(AuthUserGrantRoleRequest {
        user: "root".into(),
        role: "root".into(),
    }))
    .expect("grant root");
    block_on(admin.auth_enable(AuthEnableRequest {})).expect("auth enable");

    // Signed on member 0, used on member 1.
    let token = block_on(admin.authenticate("root", "rootpw"))
        .expect("sign in")
        .token;
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let other = c.client(1);
    other.set_token(Some(token.clone()));
    put(&other, "k").expect("the token from member 0 works on member 1");

    // Another key, and genuine parts put together with other claims.
    let forger = SignedTokens::load(&JwtOptions {
        sign_method: "RS256".into(),
        public_key: None,
        private_key: Some(key("other-rsa.key")),
        ttl: Duration::from_secs(60),
    })
    .expect("forger key");
    let forged = forger.sign("root", 100, SystemTime::now()).expect("forge");
    other.set_token(Some(forged.clone()));
    refused(put(&other, "k"), INVALID_TOKEN);
    let alice = block_on(c.client(1).authenticate("alice", "alicepw"))
        .expect("alice signs in")
        .token;
    let (root_parts, alice_parts): (Vec<&str>, Vec<&str>) =
        (token.split('.').collect(), alice.split('.').collect());
    let spliced = format!("{}.{}.{}", alice_parts[0], root_parts[1], alice_parts[2]);
    other.set_token(Some(spliced));
    refused(put(&other, "k"), INVALID_TOKEN);

    // Users or roles changed since the token was signed: it is old, a new one works.
    block_on(admin.role_add(AuthRoleAddRequest {
        name: "extra".into(),
    }))
    .expect("role add");
    other.set_token(Some(token));
    refused(put(&other, "k"), OLD_REVISION);
    let fresh = block_on(other.authenticate("root", "rootpw"))
        .expect("sign in again")
        .token;
    put(&other, "k").expect("a fresh token works");

    // `exp` is in whole seconds and valid through that second.
    std::thread::sleep(Duration::from_millis(TTL_S * 1000 + 1100));
    other.set_token(Some(fresh));
    refused(put(&other, "k"), INVALID_TOKEN);
}
