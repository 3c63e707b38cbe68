//! The downgrade path end to end with real `qraft` processes and `qraftctl`: a 3-member
//! cluster of this build (0.2) goes down to 0.1 (`--emulated-version 0.1`) member by member
//! under a write load, finishes the downgrade by itself, keeps every acknowledged write, and
//! comes back up to 0.2. Also: cancel, validate/enable refusals, and a member refusing data of
//! a newer storage schema.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::Duration;

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::{
    WriteLoad, assert_acknowledged_present, endpoint_status, restart_with, wait_exited,
    wait_serving, wait_until, wait_versions,
};

const N: &str = "0.2.0";
const N_1: &str = "0.1.0";
const EMULATE_N_1: [&str; 2] = ["--emulated-version", "0.1"];

fn ctl_ok(c: &Cluster, i: usize, args: &[&str]) -> String {
    let (ok, out, err) = c.ctl(i, args);
    assert!(ok, "qraftctl {args:?} failed: {err}");
    out
}

fn ctl_err(c: &Cluster, i: usize, args: &[&str]) -> String {
    let (ok, out, err) = c.ctl(i, args);
    assert!(!ok, "qraftctl {args:?} should fail, printed {out}");
    err
}

/// Every member's status shows the downgrade as `enabled` (and its target while enabled).
fn wait_downgrade_info(c: &Cluster, enabled: bool) {
    for i in 0..c.nodes.len() {
        wait_until(
            &format!("m{i} to report downgrade enabled={enabled}"),
            Duration::from_secs(30),
            || {
                let s = endpoint_status(c, i)?;
                let info = &s["downgradeInfo"];
                let target = info["targetVersion"].as_str().unwrap_or_default();
                let ok = info["enabled"].as_bool() == Some(enabled)
                    && (target == if enabled { N_1 } else { "" });
                if ok { Ok(()) } else { Err(s.to_string()) }
            },
        );
    }
}

fn wait_all_versions(c: &Cluster, server: Option<&str>, cluster: &str, storage: &str) {
    for i in 0..c.nodes.len() {
        wait_versions(c, i, server, Some(cluster), Some(storage));
    }
}

#[test]
fn downgrade_one_minor_under_load_and_upgrade_back() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    wait_all_versions(&c, Some(N), N, "0.2.0");

    // A member running as 0.1 refuses the 0.2 schema it finds on disk.
    restart_with(&mut c, 2, &EMULATE_N_1);
    let log = wait_exited(&mut c, 2);
    assert!(
        log.contains("storage schema version 0.2 is newer than this member understands"),
        "{log}"
    );
    restart_with(&mut c, 2, &[]);
    wait_serving(&c, 2);

    // Refusals, with etcd's texts.
    let err = ctl_err(&c, 0, &["downgrade", "validate", "0.0"]);
    assert!(
        err.contains("Error: etcdserver: invalid downgrade target version"),
        "{err}"
    );
    let err = ctl_err(&c, 0, &["downgrade", "enable", "zero.one"]);
    assert!(
        err.contains("Error: etcdserver: wrong downgrade target version format"),
        "{err}"
    );
    let err = ctl_err(&c, 1, &["downgrade", "cancel"]);
    assert!(
        err.contains("Error: etcdserver: no inflight downgrade job"),
        "{err}"
    );
    let err = ctl_err(&c, 1, &["downgrade", "enable"]);
    assert!(err.contains("Error: TARGET_VERSION not provided"), "{err}");

    let out = ctl_ok(&c, 1, &["downgrade", "validate", "0.1"]);
    assert_eq!(out, "Downgrade validate success, cluster version 0.2\n");
    let load = WriteLoad::start(c.client_config(all_endpoints(&c)), "load/", 20_000);
    let out = ctl_ok(&c, 2, &["downgrade", "enable", "0.1"]);
    assert_eq!(out, "Downgrade enable success, cluster version 0.2\n");
    let err = ctl_err(&c, 0, &["downgrade", "enable", "0.1"]);
    assert!(
        err.contains("Error: etcdserver: cluster has a downgrade job in progress"),
        "{err}"
    );

    // The cluster version drops at once; every member migrates its storage to 0.1.
    wait_all_versions(&c, Some(N), N_1, N_1);
    wait_downgrade_info(&c, true);

    for i in 0..3 {
        restart_with(&mut c, i, &EMULATE_N_1);
        wait_serving(&c, i);
        wait_versions(&c, i, Some(N_1), Some(N_1), Some(N_1));
    }
    // The leader ends the downgrade by itself once every member runs 0.1.
    wait_downgrade_info(&c, false);
    wait_all_versions(&c, Some(N_1), N_1, N_1);
    let status = endpoint_status(&c, 0).expect("status");
    assert_eq!(status["version"], N_1, "{status}");
    assert_eq!(status["storageVersion"], "0.1", "{status}");

    let acked = load.finish();
    assert!(
        acked.len() > 10,
        "the load made too little progress: {}",
        acked.len()
    );
    for i in 0..3 {
        assert_acknowledged_present(&c, i, "load/", &acked);
    }

    // Upgrade back: members restarted without the flag run 0.2 in the 0.1 cluster; with the
    // last one the cluster version and every storage go back to 0.2.
    for i in 0..3 {
        restart_with(&mut c, i, &[]);
        wait_serving(&c, i);
        wait_versions(&c, i, Some(N), None, None);
    }
    wait_all_versions(&c, Some(N), N, "0.2.0");
    for i in 0..3 {
        assert_acknowledged_present(&c, i, "load/", &acked);
    }
}

#[test]
fn cancel_restores_the_cluster_version() {
    let c = Cluster::start(3, ClusterOptions::default());
    wait_all_versions(&c, Some(N), N, "0.2.0");
    ctl_ok(&c, 0, &["put", "before", "1"]);
    let out = ctl_ok(&c, 0, &["downgrade", "enable", "0.1"]);
    assert_eq!(out, "Downgrade enable success, cluster version 0.2\n");
    wait_all_versions(&c, Some(N), N_1, N_1);
    wait_downgrade_info(&c, true);

    let out = ctl_ok(&c, 1, &["downgrade", "cancel"]);
    assert_eq!(out, "Downgrade cancel success, cluster version 0.1\n");
    wait_downgrade_info(&c, false);
    // No member runs 0.1, so the leader raises the cluster version (and the storage follows).
    wait_all_versions(&c, Some(N), N, "0.2.0");
    assert_eq!(ctl_ok(&c, 2, &["get", "before"]), "before\n1\n");
}

fn all_endpoints(c: &Cluster) -> Vec<String> {
    c.nodes.iter().map(|n| n.client_url()).collect()
}
