//! Per-call permissions with auth enabled on three real members, set up as an operator would
//! with qraftctl (`user add`, `auth enable`): without credentials, with a wrong password and as
//! a user without the root role, `member list`, `defrag` and `compaction` are refused with
//! etcd's messages; a signed-in user may list members (and `endpoint health` counts its refused
//! read as healthy, as etcdctl's); root may do all three.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::Duration;

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::wait_until;

const USER_EMPTY: &str = "etcdserver: user name is empty";
const DENIED: &str = "etcdserver: permission denied";
const AUTH_FAILED: &str = "etcdserver: authentication failed, invalid user ID or password";

/// qraftctl on member `i` that must succeed (retried while the cluster settles): its stdout.
fn ctl_ok(c: &Cluster, i: usize, args: &[&str]) -> String {
    wait_until(
        &format!("qraftctl {args:?} on m{i}"),
        Duration::from_secs(30),
        || match c.ctl(i, args) {
            (true, out, _) => Ok(out),
            (false, _, err) => Err(err),
        },
    )
}

/// qraftctl on member `i` that must fail: its stderr.
fn ctl_err(c: &Cluster, i: usize, args: &[&str]) -> String {
    let (ok, out, err) = c.ctl(i, args);
    assert!(!ok, "qraftctl {args:?} on m{i} should fail; printed {out}");
    err
}

fn assert_refused(c: &Cluster, i: usize, args: &[&str], message: &str) {
    let err = ctl_err(c, i, args);
    assert!(
        err.contains(message),
        "qraftctl {args:?} on m{i}: expected {message:?}, got {err:?}"
    );
}

/// The global `--user` flag (or none) followed by the command.
fn signed<'a>(who: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    who.iter().chain(command).copied().collect()
}

#[test]
fn maintenance_and_membership_calls_need_the_right_user() {
    let c = Cluster::start(3, ClusterOptions::default());
    assert_eq!(
        ctl_ok(&c, 0, &["user", "add", "root:rootpw"]),
        "User root created\n"
    );
    assert_eq!(
        ctl_ok(&c, 0, &["user", "add", "alice:alicepw"]),
        "User alice created\n"
    );
    assert_eq!(
        ctl_ok(&c, 0, &["auth", "enable"]),
        "Authentication Enabled\n"
    );

    let nobody: [&str; 0] = [];
    let wrong = ["--user", "root:nope"];
    let alice = ["--user", "alice:alicepw"];
    let root = ["--user", "root:rootpw"];
    for i in 0..3 {
        for command in [&["member", "list"][..], &["defrag"], &["compaction", "1"]] {
            assert_refused(&c, i, &signed(&nobody, command), USER_EMPTY);
            // Signing in fails before any call.
            assert_refused(&c, i, &signed(&wrong, command), AUTH_FAILED);
        }
        // A signed-in user without the root role lists members, nothing more.
        let listed = ctl_ok(&c, i, &signed(&alice, &["member", "list"]));
        assert_eq!(listed.lines().count(), 3, "member list as alice: {listed}");
        // etcdctl's health check: being refused the read still proves a quorum answered.
        let health = ctl_ok(&c, i, &signed(&alice, &["endpoint", "health"]));
        assert!(
            health.contains("is healthy"),
            "endpoint health as alice: {health}"
        );
        for command in [
            &["defrag"][..],
            &["compaction", "1"],
            &["endpoint", "status"],
        ] {
            assert_refused(&c, i, &signed(&alice, command), DENIED);
        }
    }

    for i in 0..3 {
        let listed = ctl_ok(&c, i, &signed(&root, &["member", "list"]));
        assert_eq!(listed.lines().count(), 3, "member list as root: {listed}");
        let defrag = ctl_ok(&c, i, &signed(&root, &["defrag"]));
        assert!(
            defrag.starts_with("Finished defragmenting etcd member["),
            "defrag as root on m{i}: {defrag}"
        );
    }
    assert_eq!(
        ctl_ok(&c, 0, &signed(&root, &["compaction", "1"])),
        "compacted revision 1\n"
    );
}
