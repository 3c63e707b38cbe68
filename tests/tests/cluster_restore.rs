//! Backup, restore and disaster recovery with real processes (docs/operations.md):
//!
//! * a 3-member cluster with a history (overwrites, deletes, a compaction, a lease with a key,
//!   users and roles) under a write load is saved with `qraftctl snapshot save`, then killed
//!   and wiped; `qraftctl snapshot restore` builds 3 new members from the file, which start a
//!   new cluster answering the same HashKV at the snapshot's revision, the same ranges at past
//!   revisions, with every write acknowledged at or before that revision, the lease and the
//!   users intact;
//! * after losing 2 of 3 members, `--force-new-cluster` restarts the third alone with its
//!   data, and two new members join it without any acknowledged write lost;
//! * bad snapshot files (truncated, corrupt, wrong SHA-256, foreign, etcd's bbolt) get a clear
//!   error from `snapshot status` and `snapshot restore`, and restore writes nothing.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use qraft_io::client::ClientConfig;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{
    AuthRoleAddRequest, AuthUserAddRequest, CompactionRequest, DeleteRangeRequest, HashKvRequest,
    LeaseGrantRequest, LeaseTimeToLiveRequest, PutRequest, RangeRequest,
};
use qraft_tests::cluster::{Cluster, ClusterOptions, ctl_offline, free_tcp_port};
use qraft_tests::cluster_ops::{
    WriteLoad, assert_acknowledged_present, restart_with, wait_serving,
};
use qraft_tests::etcdctl::{ETCDCTL, require_etcdctl};

const WAIT: Duration = Duration::from_secs(30);

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Puts `{prefix}{n}` one at a time until stopped; remembers each acknowledged write with the
/// revision it was acknowledged at.
struct RevisionLoad {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(String, i64)>>,
}

impl RevisionLoad {
    fn start(config: ClientConfig, prefix: &'static str) -> RevisionLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            runtime::block_on(async move {
                let mut acked = Vec::new();
                let Ok(client) = qraft_io::client::Client::connect(config).await else {
                    return acked;
                };
                for n in 0..100_000 {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("{prefix}{n:06}");
                    let put = client.put(PutRequest {
                        key: key.clone().into_bytes().into(),
                        value: format!("v{n}").into_bytes().into(),
                        ..Default::default()
                    });
                    if let Ok(r) = put.await {
                        acked.push((key, r.header.unwrap_or_default().revision));
                    }
                }
                client.close();
                acked
            })
        });
        RevisionLoad { stop, thread }
    }

    fn finish(self) -> Vec<(String, i64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("load thread")
    }
}

/// A history worth restoring; returns the lease's ID and the compaction revision.
fn write_history(c: &Cluster) -> (i64, i64) {
    let client = c.client(0);
    let out = runtime::block_on(async {
        for (k, v) in [("a", "1"), ("b", "1"), ("a", "2"), ("c", "1"), ("a", "3")] {
            client.put_kv(k, v).await.expect("put");
        }
        client
            .delete_range(DeleteRangeRequest {
                key: b"b".to_vec().into(),
                ..Default::default()
            })
            .await
            .expect("delete");
        let r = client.put_kv("b", "again").await.expect("put");
        let compact = r.header.expect("header").revision - 2;
        client
            .compact(CompactionRequest {
                revision: compact,
                physical: true,
            })
            .await
            .expect("compact");
        let lease = client
            .lease_grant(LeaseGrantRequest { ttl: 600, id: 0 })
            .await
            .expect("lease grant")
            .id;
        client
            .put(PutRequest {
                key: b"leased".to_vec().into(),
                value: b"x".to_vec().into(),
                lease,
                ..Default::default()
            })
            .await
            .expect("leased put");
        client
            .user_add(AuthUserAddRequest {
                name: "alice".into(),
                password: "alicepw".into(),
                ..Default::default()
            })
            .await
            .expect("user add");
        client
            .role_add(AuthRoleAddRequest {
                name: "reader".into(),
            })
            .await
            .expect("role add");
        (lease, compact)
    });
    client.close();
    out
}

/// Every key (with revisions, version and lease) at `revision`, through member `i`.
fn everything_at(c: &Cluster, i: usize, revision: i64) -> Vec<String> {
    let client = c.client(i);
    let r = runtime::block_on(client.range(RangeRequest {
        key: vec![0].into(),
        range_end: vec![0].into(),
        revision,
        ..Default::default()
    }))
    .unwrap_or_else(|e| panic!("range at {revision} on m{i}: {e}"));
    client.close();
    r.kvs
        .iter()
        .map(|kv| {
            format!(
                "{}={} c{} m{} v{} l{}",
                String::from_utf8_lossy(&kv.key),
                String::from_utf8_lossy(&kv.value),
                kv.create_revision,
                kv.mod_revision,
                kv.version,
                kv.lease
            )
        })
        .collect()
}

fn hash_kv_at(c: &Cluster, i: usize, revision: i64) -> (u32, i64) {
    let client = c.client(i);
    let r = runtime::block_on(client.hash_kv(HashKvRequest { revision }))
        .unwrap_or_else(|e| panic!("hashkv at {revision} on m{i}: {e}"));
    client.close();
    (r.hash, r.compact_revision)
}

/// The revision `snapshot status -w json` reports for `file`.
fn snapshot_revision(file: &Path) -> i64 {
    let (ok, out, err) = ctl_offline(&["snapshot", "status", path_str(file), "-w", "json"]);
    assert!(ok, "snapshot status: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("status json");
    assert!(
        v["hash"].as_u64().is_some() && v["totalKey"].as_u64() > Some(10),
        "{v}"
    );
    v["revision"].as_i64().expect("revision")
}

/// Restores `file` into every (unstarted) member of `c`, then starts them.
fn restore_and_start(c: &mut Cluster, file: &Path) {
    let initial = c.initial_cluster();
    for i in 0..c.nodes.len() {
        let node = &c.nodes[i];
        let (ok, out, err) = ctl_offline(&[
            "snapshot",
            "restore",
            path_str(file),
            "--data-dir",
            path_str(&node.data_dir),
            "--name",
            &node.name,
            "--initial-cluster",
            &initial,
            "--initial-cluster-token",
            &c.token,
            "--initial-advertise-peer-urls",
            &node.peer_url(),
        ]);
        assert!(ok, "restore m{i}: {err}");
        assert!(out.contains("Restored snapshot"), "{out}");
        c.install_ca(i);
    }
    for i in 0..c.nodes.len() {
        c.spawn(i, "new");
    }
    c.wait_for_writes(WAIT);
}

#[test]
fn restore_into_a_new_cluster_keeps_history_leases_users_and_acknowledged_writes() {
    let mut old = Cluster::start(3, ClusterOptions::default());
    let (lease, compact) = write_history(&old);
    let load = RevisionLoad::start(old.client_config(vec![old.nodes[0].client_url()]), "load/");
    std::thread::sleep(Duration::from_millis(700));
    let file = old.root.join("backup.snap");
    let (ok, _, err) = old.ctl(1, &["snapshot", "save", path_str(&file)]);
    assert!(ok, "snapshot save: {err}");
    std::thread::sleep(Duration::from_millis(300));
    let acked = load.finish();
    let revision = snapshot_revision(&file);
    let acked_before: Vec<&(String, i64)> = acked.iter().filter(|(_, r)| *r <= revision).collect();
    assert!(
        acked_before.len() > 5 && acked.len() > acked_before.len(),
        "the load must straddle the snapshot: {} acked, {} by revision {revision}",
        acked.len(),
        acked_before.len()
    );

    // What the old cluster answers, then the disaster: every member killed and wiped.
    let revisions = [compact, compact + 1, revision - 3, revision];
    let expected: Vec<Vec<String>> = revisions
        .iter()
        .map(|&r| everything_at(&old, 0, r))
        .collect();
    let expected_hash = hash_kv_at(&old, 0, revision);
    let old_ids = member_ids(&old.member_list(0).expect("old member list"));
    for i in 0..3 {
        old.kill(i);
        std::fs::remove_dir_all(&old.nodes[i].data_dir).expect("wipe");
    }

    let mut new = Cluster::unstarted(3, ClusterOptions::default());
    new.token = format!("restored-{}", std::process::id());
    restore_and_start(&mut new, &file);

    for i in 0..3 {
        assert_eq!(hash_kv_at(&new, i, revision), expected_hash, "m{i}");
        for (r, want) in revisions.iter().zip(&expected) {
            assert_eq!(&everything_at(&new, i, *r), want, "m{i} at revision {r}");
        }
    }
    let stored = everything_at(&new, 0, revision);
    for (key, rev) in &acked_before {
        assert!(
            stored.iter().any(|s| s.starts_with(&format!("{key}="))),
            "{key} acknowledged at {rev} <= {revision} is missing"
        );
    }
    // The compaction point is kept: below it, the restored cluster refuses as the old one.
    let client = new.client(2);
    let below = runtime::block_on(client.range(RangeRequest {
        key: b"a".to_vec().into(),
        revision: compact - 1,
        ..Default::default()
    }));
    assert!(
        below.is_err_and(|e| e.to_string().contains("compacted")),
        "range below the compaction"
    );
    let ttl = runtime::block_on(client.lease_time_to_live(LeaseTimeToLiveRequest {
        id: lease,
        keys: true,
    }))
    .expect("lease time to live");
    assert!(
        ttl.ttl > 0 && ttl.keys.iter().any(|k| &k[..] == b"leased"),
        "{ttl:?}"
    );
    client.close();
    let (ok, users, err) = new.ctl(1, &["user", "list"]);
    assert!(ok && users.contains("alice"), "user list: {users} {err}");
    let (ok, roles, err) = new.ctl(1, &["role", "list"]);
    assert!(ok && roles.contains("reader"), "role list: {roles} {err}");

    // A new cluster: new IDs, the members of the flags only.
    let members = new.wait_member_lists_agree(&[0, 1, 2], WAIT, |l| l.len() == 3);
    let new_ids = member_ids(&members);
    assert!(
        new_ids.iter().all(|id| !old_ids.contains(id)),
        "old {old_ids:?}, new {new_ids:?}"
    );
}

fn member_ids(list: &[serde_json::Value]) -> Vec<u64> {
    list.iter().filter_map(|m| m["ID"].as_u64()).collect()
}

#[test]
fn force_new_cluster_continues_after_losing_two_of_three_members() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    let load = WriteLoad::start(
        c.client_config(vec![c.nodes[0].client_url()]),
        "q/",
        100_000,
    );
    std::thread::sleep(Duration::from_secs(1));
    let acked = load.finish();
    assert!(acked.len() > 10, "{} writes acknowledged", acked.len());
    // The survivor has applied what the cluster acknowledged (a linearizable read through it).
    wait_serving(&c, 2);
    for i in 0..2 {
        c.kill(i);
        std::fs::remove_dir_all(&c.nodes[i].data_dir).expect("wipe");
    }
    c.nodes.drain(0..2);
    restart_with(&mut c, 0, &["--force-new-cluster"]);
    wait_serving(&c, 0);
    assert_acknowledged_present(&c, 0, "q/", &acked);
    let alone = c.wait_member_lists_agree(&[0], WAIT, |l| l.len() == 1);
    assert_eq!(alone[0]["name"], "m2", "{alone:?}");
    // Later restarts go without the flag, as etcd asks.
    restart_with(&mut c, 0, &[]);
    wait_serving(&c, 0);

    for (n, name) in ["m3", "m4"].into_iter().enumerate() {
        let i = c.add_node(name);
        let peer = c.nodes[i].peer_url();
        let add = ["member", "add", name, &format!("--peer-urls={peer}")];
        let (ok, _, err) = c.ctl_reconfigure(0, &add, WAIT);
        assert!(ok, "member add {name}: {err}");
        c.spawn(i, "existing");
        let everyone: Vec<usize> = (0..=i).collect();
        c.wait_member_lists_agree(&everyone, WAIT, |l| l.len() == n + 2);
    }
    for i in 0..3 {
        wait_serving(&c, i);
        assert_acknowledged_present(&c, i, "q/", &acked);
    }
}

/// The restore target and its temporary sibling must not exist after a refused restore.
fn assert_nothing_written(target: &Path) {
    assert!(!target.exists(), "{} was created", target.display());
    let parent = target.parent().expect("parent");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(parent)
        .expect("read parent")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".restoring"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

fn refuse(file: &Path, target: &Path, message: &str, extra: &[&str]) {
    let (ok, _, err) = ctl_offline(&["snapshot", "status", path_str(file)]);
    assert!(!ok && err.contains(message), "status of {file:?}: {err}");
    let mut args = vec![
        "snapshot",
        "restore",
        path_str(file),
        "--data-dir",
        path_str(target),
    ];
    args.extend_from_slice(extra);
    let (ok, _, err) = ctl_offline(&args);
    assert!(!ok && err.contains(message), "restore of {file:?}: {err}");
    assert_nothing_written(target);
}

#[test]
fn bad_snapshot_files_get_clear_errors_and_restore_writes_nothing() {
    let grpc_port = free_tcp_port();
    let mut c = Cluster::spawn_with(1, ClusterOptions::default(), |n| {
        n.extra_args = vec![
            "--listen-grpc-urls".into(),
            format!("http://127.0.0.1:{grpc_port}"),
        ];
    });
    c.wait_for_writes(WAIT);
    write_history(&c);
    let dir = c.root.join("files");
    std::fs::create_dir_all(&dir).expect("files dir");
    let good = dir.join("good.snap");
    let (ok, _, err) = c.ctl(0, &["snapshot", "save", path_str(&good)]);
    assert!(ok, "save: {err}");
    let bytes = std::fs::read(&good).expect("read snapshot");
    let target = dir.join("restored");

    let truncated = dir.join("truncated.snap");
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).expect("write");
    refuse(&truncated, &target, "truncated stream", &[]);

    let corrupt = dir.join("corrupt.snap");
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&corrupt, &flipped).expect("write");
    refuse(&corrupt, &target, "invalid snapshot stream", &[]);
    refuse(
        &corrupt,
        &target,
        "invalid snapshot stream",
        &["--skip-hash-check"],
    );

    let foreign = dir.join("foreign.snap");
    std::fs::write(&foreign, b"just some text, not a snapshot\n").expect("write");
    refuse(&foreign, &target, "not a qraft snapshot", &[]);

    let mut bbolt = vec![0u8; 4096];
    bbolt[16..20].copy_from_slice(&0xED0C_DAEDu32.to_le_bytes());
    let etcd_file = dir.join("etcd.db");
    std::fs::write(&etcd_file, &bbolt).expect("write");
    refuse(&etcd_file, &target, "etcd (bbolt)", &["--skip-hash-check"]);

    refuse(&dir.join("missing.snap"), &target, "No such file", &[]);

    // An existing non-empty data dir is refused and left as it was.
    let occupied = dir.join("occupied");
    std::fs::create_dir_all(&occupied).expect("mkdir");
    std::fs::write(occupied.join("keep"), b"mine").expect("write");
    let (ok, _, err) = ctl_offline(&[
        "snapshot",
        "restore",
        path_str(&good),
        "--data-dir",
        path_str(&occupied),
    ]);
    assert!(!ok && err.contains("not empty"), "{err}");
    let names: Vec<_> = std::fs::read_dir(&occupied).expect("read").collect();
    assert_eq!(names.len(), 1);

    // `etcdctl snapshot save` through the gRPC listener: padded, with a SHA-256 at the end.
    require_etcdctl("bad_snapshot_files_get_clear_errors_and_restore_writes_nothing");
    {
        let saved = dir.join("etcdctl.db");
        let out = Command::new(ETCDCTL)
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &format!("127.0.0.1:{grpc_port}"),
                "snapshot",
                "save",
                path_str(&saved),
            ])
            .output()
            .expect("run etcdctl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(snapshot_revision(&saved) >= snapshot_revision(&good));
        let mut wrong = std::fs::read(&saved).expect("read");
        let last = wrong.len() - 1;
        wrong[last] ^= 0xff;
        let wrong_sha = dir.join("wrong-sha.db");
        std::fs::write(&wrong_sha, &wrong).expect("write");
        refuse(&wrong_sha, &target, "expected sha256", &[]);
        // --skip-hash-check skips the SHA-256 (etcd's meaning) and restores.
        let (ok, _, err) = ctl_offline(&[
            "snapshot",
            "restore",
            path_str(&wrong_sha),
            "--data-dir",
            path_str(&target),
            "--skip-hash-check",
        ]);
        assert!(ok, "restore --skip-hash-check: {err}");
        assert!(target.join("member/lmdb/data.mdb").exists());
    }
}
