//! From etcd to qraft with revisions intact (docs/operations.md, "Migrating from etcd"): the
//! real etcd 3.4 gets a scripted history (puts, txns, deletes, a lease with a key, a
//! compaction, users and a role, auth enabled, and enough data for multi-level trees and overflow pages),
//! `etcdctl snapshot save` writes its bbolt file, and:
//!
//! * `qraftctl snapshot status` prints exactly what `etcdctl snapshot status` prints for it;
//! * `qraftctl snapshot restore` builds a qraft member from it, which answers every
//!   `get --rev=R` for the kept revisions, the compacted-revision error, the lease (ID, granted
//!   TTL, keys), the users and roles, auth (on, etcd's password hashes and permissions
//!   working), and `endpoint hashkv`'s revisions exactly as etcd did
//!   (`-w json`, with the cluster/member IDs and raft terms masked);
//! * truncated, corrupt and wrong-SHA-256 etcd files are refused with a clear error, and the
//!   restore writes nothing.
//!
//! Needs the binaries of the same profile: `cargo build --release --workspace --bins`.

use std::path::Path;
use std::time::{Duration, Instant};

use qraft_tests::cluster::{Cluster, ClusterOptions, ctl_offline};
use qraft_tests::etcd::EtcdProcess;
use qraft_tests::etcd_migration::{json, observe, ok, path_str, root, write_history};
use qraft_tests::etcdctl::{Etcdctl, require_etcdctl};
use serde_json::Value;

const TEST: &str = "restore_from_etcd";

/// Waits (bounded) until a linearizable read through `ctl` succeeds, without writing.
fn wait_serving(ctl: &Etcdctl, cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ctl.run(&root(&["get", "a"]), None).status.success() {
        assert!(
            Instant::now() < deadline,
            "the restored member never served a read:\n{}",
            cluster.nodes[0].log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_nothing_written(target: &Path) {
    assert!(!target.exists(), "{} was created", target.display());
    let parent = target.parent().expect("parent");
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .expect("read parent")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".restoring"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

fn restore_args<'a>(file: &'a Path, target: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "snapshot",
        "restore",
        path_str(file),
        "--data-dir",
        path_str(target),
    ];
    args.extend_from_slice(extra);
    args
}

fn refuse(file: &Path, target: &Path, message: &str, extra: &[&str]) {
    let (ok, _, err) = ctl_offline(&restore_args(file, target, extra));
    assert!(!ok && err.contains(message), "restore of {file:?}: {err}");
    assert_nothing_written(target);
}

#[test]
fn an_etcd_snapshot_restores_into_qraft_with_revisions_leases_and_auth_intact() {
    require_etcdctl(TEST);
    let etcd = EtcdProcess::start();
    let etcdctl = Etcdctl::plaintext(vec![etcd.client_addr.clone()]);
    let (lease, compact, last) = write_history(&etcdctl);

    let mut qraft = Cluster::unstarted(1, ClusterOptions::default());
    let file = qraft.root.join("etcd.db");
    ok(
        &etcdctl,
        &root(&["snapshot", "save", path_str(&file)]),
        None,
    );
    let expected = observe(&etcdctl, &lease, compact, last);
    let etcd_status = json(&etcdctl, &["snapshot", "status", path_str(&file)]);
    drop(etcd);

    let (ok_status, status, err) =
        ctl_offline(&["snapshot", "status", path_str(&file), "-w", "json"]);
    assert!(ok_status, "qraftctl snapshot status: {err}");
    let status: Value = serde_json::from_str(status.trim()).expect("status json");
    assert_eq!(status, etcd_status, "snapshot status -w json");
    for format in ["simple", "table"] {
        let theirs = ok(
            &etcdctl,
            &["snapshot", "status", path_str(&file), "-w", format],
            None,
        );
        let (_, ours, _) = ctl_offline(&["snapshot", "status", path_str(&file), "-w", format]);
        assert_eq!(ours, theirs, "snapshot status -w {format}");
    }

    bad_files_are_refused(&qraft.root, &file);

    let node = &qraft.nodes[0];
    let (restored, out, err) = ctl_offline(&restore_args(
        &file,
        &node.data_dir,
        &[
            "--name",
            &node.name,
            "--initial-cluster",
            &qraft.initial_cluster(),
            "--initial-cluster-token",
            &qraft.token,
            "--initial-advertise-peer-urls",
            &node.peer_url(),
        ],
    ));
    assert!(restored, "restore: {err}");
    assert!(out.contains("Restored snapshot"), "{out}");
    qraft.install_ca(0);
    qraft.spawn(0, "new");
    let qraftctl = Etcdctl::tls(
        vec![qraft.nodes[0].client_url()],
        qraft.ca_dir.join("ca.crt"),
    );
    wait_serving(&qraftctl, &qraft);
    let got = observe(&qraftctl, &lease, compact, last);
    assert_eq!(got.len(), expected.len());
    for ((what, want), (_, have)) in expected.iter().zip(&got) {
        assert_eq!(have, want, "{what}");
    }
    // The restored member goes on from etcd's revision.
    let put = json(&qraftctl, &root(&["put", "after", "1"]));
    assert_eq!(put["header"]["revision"].as_i64(), Some(last + 1), "{put}");
}

/// Damaged copies of a good etcd file: each refused by restore with a clear error and nothing
/// written; the digest rules are etcd's (`--skip-hash-check` skips only the SHA-256).
fn bad_files_are_refused(root: &Path, good: &Path) {
    let bytes = std::fs::read(good).expect("read snapshot");
    assert_eq!(bytes.len() % 512, 32, "etcdctl appends a SHA-256");
    let dir = root.join("bad");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let target = dir.join("restored");
    let write = |name: &str, data: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, data).expect("write");
        path
    };

    let db = &bytes[..bytes.len() - 32];
    let truncated = write("truncated.db", &db[..db.len() / 2]);
    refuse(&truncated, &target, "snapshot missing hash", &[]);
    refuse(&truncated, &target, "truncated", &["--skip-hash-check"]);

    let mut wrong = bytes.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 0xff;
    let wrong_sha = write("wrong-sha.db", &wrong);
    refuse(&wrong_sha, &target, "expected sha256", &[]);

    // Both meta pages damaged: nothing tells where the data is.
    let mut metas = bytes.clone();
    metas[64] ^= 0xff;
    metas[4096 + 64] ^= 0xff;
    let no_meta = write("no-meta.db", &metas);
    refuse(
        &no_meta,
        &target,
        "no valid meta page",
        &["--skip-hash-check"],
    );

    // Every data page's id scrambled: the walk meets a page that is not what it points at.
    let mut pages = db.to_vec();
    for page in pages.chunks_mut(4096).skip(2) {
        page[0] ^= 0x5a;
    }
    let scrambled = write("scrambled.db", &pages);
    refuse(
        &scrambled,
        &target,
        "etcd (bbolt) database",
        &["--skip-hash-check"],
    );

    // A raw database (no SHA-256) restores with --skip-hash-check, as in etcd.
    let raw = write("raw.db", db);
    let (restored, _, err) = ctl_offline(&restore_args(&raw, &target, &["--skip-hash-check"]));
    assert!(restored, "raw db with --skip-hash-check: {err}");
    std::fs::remove_dir_all(&target).expect("clean up");
}
