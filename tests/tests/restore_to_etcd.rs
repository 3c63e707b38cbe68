//! From qraft back to etcd with revisions intact (docs/operations.md, "Moving back to etcd"):
//! a qraft member gets the same scripted history as `restore_from_etcd.rs` gives etcd (puts,
//! txns, deletes, a lease with a key, a compaction, users and a role, auth enabled, and enough
//! data for multi-level trees and overflow pages), and then, with etcd 3.4's own tools only:
//!
//! * `etcdctl snapshot save` against qraft (the gRPC `Maintenance.Snapshot` stream) writes a
//!   file that `etcdctl snapshot status` reads at qraft's revision, and that
//!   `qraftctl snapshot status` reads identically;
//! * `etcdctl snapshot restore` (digest checked) builds an etcd data dir from it, and `etcd`
//!   started there answers every `get --rev=R` for the kept revisions, the compacted-revision
//!   error, the lease (ID, granted TTL, keys), the users and roles, auth (on, qraft's bcrypt
//!   hashes and permissions working) and `endpoint hashkv`'s revisions exactly as qraft did
//!   (`-w json`, with the cluster/member IDs and raft terms masked), then goes on from
//!   qraft's revision.
//!
//! Needs the binaries of the same profile: `cargo build --release --workspace --bins`.

use qraft_tests::cluster::{Cluster, ClusterOptions, ctl_offline};
use qraft_tests::etcd::EtcdProcess;
use qraft_tests::etcd_migration::{ROOT, json, observe, ok, path_str, root, write_history};
use qraft_tests::etcdctl::{Etcdctl, require_etcdctl};
use serde_json::Value;

const TEST: &str = "restore_to_etcd";

#[test]
fn a_qraft_snapshot_saved_by_etcdctl_restores_into_etcd_with_revisions_leases_and_auth_intact() {
    require_etcdctl(TEST);
    let mut qraft = Cluster::start(1, ClusterOptions::default());
    let qraftctl = Etcdctl::tls(
        vec![qraft.nodes[0].client_url()],
        qraft.ca_dir.join("ca.crt"),
    );
    let (lease, compact, last) = write_history(&qraftctl);

    let file = qraft.root.join("from-qraft.db");
    let saved = ok(
        &qraftctl,
        &root(&["snapshot", "save", path_str(&file)]),
        None,
    );
    assert!(saved.contains("Snapshot saved at"), "{saved}");
    let expected = observe(&qraftctl, &lease, compact, last);

    // etcd's tool reads the file as one of etcd's own, at qraft's revision, and so does ours.
    // Its `snapshot status|restore` read and write local files only.
    let etcdctl_local = Etcdctl::plaintext(vec!["127.0.0.1:1".into()]);
    let status = json(&etcdctl_local, &["snapshot", "status", path_str(&file)]);
    assert_eq!(status["revision"].as_i64(), Some(last), "{status}");
    assert!(
        status["totalKey"].as_u64().is_some_and(|n| n > 2000),
        "{status}"
    );
    let (read, ours, err) = ctl_offline(&["snapshot", "status", path_str(&file), "-w", "json"]);
    assert!(read, "qraftctl snapshot status: {err}");
    let ours: Value = serde_json::from_str(ours.trim()).expect("status json");
    assert_eq!(ours, status, "qraftctl and etcdctl read the same file");

    let data_dir = qraft.root.join("etcd-restored");
    let peer = EtcdProcess::free_addr();
    let peer_url = format!("http://{peer}");
    ok(
        &etcdctl_local,
        &[
            "snapshot",
            "restore",
            path_str(&file),
            "--data-dir",
            path_str(&data_dir),
            "--name",
            "back",
            "--initial-cluster",
            &format!("back={peer_url}"),
            "--initial-cluster-token",
            "back-to-etcd",
            "--initial-advertise-peer-urls",
            &peer_url,
        ],
        None,
    );
    // The member stops; its cluster's directory (with the file and etcd's data dir) stays
    // until the end of the test.
    qraft.kill(0);

    let etcd = EtcdProcess::start_restored(data_dir, "back", &peer);
    let etcdctl = Etcdctl::plaintext(vec![etcd.client_addr.clone()]);
    let got = observe(&etcdctl, &lease, compact, last);
    assert_eq!(got.len(), expected.len());
    for ((what, want), (_, have)) in expected.iter().zip(&got) {
        assert_eq!(have, want, "{what}");
    }
    // etcd goes on from qraft's revision.
    let put = json(&etcdctl, &[ROOT, "put", "after", "1"]);
    assert_eq!(put["header"]["revision"].as_i64(), Some(last + 1), "{put}");
}
