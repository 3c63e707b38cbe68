//! Watches with auth enabled, driven by the real etcdctl 3.4 against a 3-member etcd 3.4 and a
//! 3-member qraft (gRPC listener), and by qraftctl over qraft's own QUIC protocol. With the
//! same users, roles and grants on both, `etcdctl watch` without a user, as a user without
//! read permission (single key, prefix wider than the grant) and as permitted users must end
//! the same way on both: refused at once with etcd's reason, or still watching. A watcher
//! whose user loses the permission is then cancelled by qraft at that auth change and gets no
//! later event (etcd 3.4 only stops sending events to it).
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::Duration;

use qraft_tests::cluster::ClusterOptions;
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::cluster_ops::wait_until;
use qraft_tests::etcd_cluster::EtcdCluster;
use qraft_tests::etcdctl::{Etcdctl, require_etcdctl};

/// Long enough for a refusal to arrive; a watch still running then was accepted.
const WATCH_WAIT: Duration = Duration::from_secs(3);

/// Users and grants made through etcdctl, the same on both clusters.
const SETUP: &[&[&str]] = &[
    &["user", "add", "root:rootpw"],
    &["user", "grant-role", "root", "root"],
    &["user", "add", "u:upw"],
    &["role", "add", "r"],
    &["role", "grant-permission", "r", "read", "app/", "--prefix"],
    &["user", "grant-role", "u", "r"],
    &["auth", "enable"],
];

/// (etcdctl arguments, what the case shows)
const WATCHES: &[(&[&str], &str)] = &[
    (&["watch", "secret"], "no user"),
    (&["--user=u:upw", "watch", "secret"], "no read permission"),
    (
        &["--user=u:upw", "watch", "--prefix", "ap"],
        "prefix wider than the grant",
    ),
    (
        &["--user=u:upw", "watch", "app/", "b"],
        "range past the grant",
    ),
    (&["--user=u:upw", "watch", "app/a"], "permitted key"),
    (
        &["--user=u:upw", "watch", "--prefix", "app/"],
        "permitted prefix",
    ),
    (&["--user=root:rootpw", "watch", "secret"], "root"),
];

fn set_up(ctl: &Etcdctl) {
    for command in SETUP {
        wait_until(
            &format!("etcdctl {command:?}"),
            Duration::from_secs(30),
            || {
                let out = ctl.run(command, None);
                if out.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&out.stderr).into_owned())
                }
            },
        );
    }
}

/// How each watch of [`WATCHES`] ended, one line each.
fn outcomes(ctl: &Etcdctl) -> Vec<String> {
    WATCHES
        .iter()
        .map(|(args, case)| {
            let (code, stdout, stderr) = ctl.run_for(args, WATCH_WAIT);
            let ended = match code {
                None => "still watching".to_string(),
                Some(code) => format!("exit {code}"),
            };
            format!("{case}: {ended}; stdout {stdout:?}; stderr {stderr:?}")
        })
        .collect()
}

#[test]
fn etcdctl_watch_is_refused_as_by_etcd() {
    require_etcdctl("etcdctl_watch_is_refused_as_by_etcd");
    let expected = {
        let etcd = EtcdCluster::start();
        let ctl = etcd.etcdctl();
        set_up(&ctl);
        outcomes(&ctl)
    };
    // The refusals really are refusals (a broken setup would make both sides agree on
    // something else).
    assert!(
        expected[0].contains("exit 5") && expected[0].contains("etcdserver: user name is empty"),
        "{expected:#?}"
    );
    assert!(expected[4].contains("still watching"), "{expected:#?}");
    let qraft = GrpcCluster::start(3, ClusterOptions::default());
    let ctl = qraft.etcdctl();
    set_up(&ctl);
    assert_eq!(outcomes(&ctl), expected);
}

/// A watcher whose user loses read permission is cancelled at that change: it printed the
/// event before, ends (etcdctl prints no reason for a cancel after the create), and never sees
/// the later write.
#[test]
fn a_watcher_that_loses_its_permission_is_cancelled() {
    require_etcdctl("a_watcher_that_loses_its_permission_is_cancelled");
    let qraft = GrpcCluster::start(3, ClusterOptions::default());
    let ctl = qraft.etcdctl();
    set_up(&ctl);
    let root = |args: &[&str]| {
        let mut all = vec!["--user=root:rootpw"];
        all.extend_from_slice(args);
        let out = ctl.run(&all, None);
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
    };
    let watcher = {
        let ctl = ctl.only(1);
        std::thread::spawn(move || {
            ctl.run_for(&["--user=u:upw", "watch", "app/a"], Duration::from_secs(20))
        })
    };
    // Until the watcher prints it, the first write may have come before the watch existed.
    std::thread::sleep(Duration::from_secs(2));
    root(&["put", "app/a", "before"]);
    std::thread::sleep(Duration::from_secs(1));
    root(&["role", "revoke-permission", "r", "app/", "--prefix"]);
    root(&["put", "app/a", "after"]);
    let (code, stdout, stderr) = watcher.join().expect("watcher thread");
    assert_eq!(code, Some(5), "stdout {stdout:?} stderr {stderr:?}");
    assert_eq!(stdout, "PUT\napp/a\nbefore\n", "stderr {stderr:?}");
    assert_eq!(stderr, "Error: watch is canceled by the server\n");
}

/// The same refusals over qraft's own protocol (qraftctl, QUIC).
#[test]
fn qraftctl_watch_is_refused_without_permission() {
    let qraft = GrpcCluster::start(3, ClusterOptions::default());
    set_up(&qraft.etcdctl());
    let c = &qraft.cluster;
    for (args, reason) in [
        (&["watch", "secret"][..], "etcdserver: user name is empty"),
        (
            &["--user", "u:upw", "watch", "secret"],
            "etcdserver: permission denied",
        ),
        (
            &["--user", "u:upw", "watch", "--prefix", "ap"],
            "etcdserver: permission denied",
        ),
    ] {
        let (ended, out, err) = c.ctl_within(0, args, WATCH_WAIT);
        assert_eq!(
            ended,
            Some(false),
            "qraftctl {args:?} should be refused at once; printed {out:?} {err:?}"
        );
        assert!(
            err.contains("watch is canceled by the server: rpc error: code = ")
                && err.contains(&format!("desc = {reason}")),
            "qraftctl {args:?}: {err:?}"
        );
    }
}
