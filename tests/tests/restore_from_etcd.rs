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
use qraft_tests::etcdctl::{Etcdctl, require_etcdctl};
use serde_json::Value;

const TEST: &str = "restore_from_etcd";

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs etcdctl; panics with its stderr unless it succeeds; returns stdout.
fn ok(ctl: &Etcdctl, args: &[&str], stdin: Option<&str>) -> String {
    let out = ctl.run(args, stdin);
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(ctl: &Etcdctl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend_from_slice(&["-w", "json"]);
    let text = ok(ctl, &all, None);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// etcdctl's credentials once the history turned auth on.
const ROOT: &str = "--user=root:rootpw";

/// `args` run as root.
fn root<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![ROOT];
    all.extend_from_slice(args);
    all
}

/// Blanks what a new cluster legitimately changes: its IDs and raft term. Lease IDs,
/// revisions and versions stay: they are what the migration must keep.
fn mask_ids(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if ["cluster_id", "member_id", "raft_term", "Endpoint"].contains(&key.as_str()) {
                    *field = Value::Null;
                } else {
                    mask_ids(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_ids),
        _ => {}
    }
}

/// Enough data that etcd's `key` bucket spans branch pages and a value spills over several
/// pages (the small history alone fits in inline buckets): 16 txns of 128 puts of 200 bytes,
/// then one 20 KB value.
fn write_bulk(ctl: &Etcdctl) {
    for t in 0..16 {
        let mut txn = String::from("\n");
        for k in 0..128 {
            txn.push_str(&format!("put bulk/{t:02}/{k:03} {}\n", "v".repeat(200)));
        }
        txn.push_str("\n\n");
        let out = ok(ctl, &["txn"], Some(&txn));
        assert!(out.starts_with("SUCCESS"), "bulk txn: {out}");
    }
    ok(ctl, &["put", "big", &"B".repeat(20_000)], None);
}

/// The history; returns the lease ID (hex, as etcdctl takes it), the compaction revision and
/// the last revision.
fn write_history(ctl: &Etcdctl) -> (String, i64, i64) {
    write_bulk(ctl);
    for (k, v) in [("a", "1"), ("b", "1")] {
        ok(ctl, &["put", k, v], None);
    }
    let compact = json(ctl, &["put", "a", "2"])["header"]["revision"]
        .as_i64()
        .expect("revision");
    let txn = "mod(\"a\") > \"0\"\n\nput c 1\ndel b\n\nput never x\n\n";
    let out = ok(ctl, &["txn"], Some(txn));
    assert!(out.starts_with("SUCCESS"), "txn: {out}");
    let lease = json(ctl, &["lease", "grant", "600"])["ID"]
        .as_i64()
        .expect("lease ID");
    let lease = format!("{lease:x}");
    ok(
        ctl,
        &["put", "leased", "x", &format!("--lease={lease}")],
        None,
    );
    ok(ctl, &["del", "a"], None);
    ok(ctl, &["put", "a", "3"], None);
    ok(ctl, &["compaction", &compact.to_string()], None);
    ok(ctl, &["put", "d", "1"], None);
    ok(ctl, &["put", "c", "2"], None);
    ok(ctl, &["user", "add", "alice:alicepw"], None);
    ok(ctl, &["role", "add", "reader"], None);
    ok(
        ctl,
        &["role", "grant-permission", "reader", "read", "a", "e"],
        None,
    );
    ok(ctl, &["user", "grant-role", "alice", "reader"], None);
    ok(ctl, &["user", "add", "root:rootpw"], None);
    ok(ctl, &["user", "grant-role", "root", "root"], None);
    ok(ctl, &["auth", "enable"], None);
    let last = json(ctl, &root(&["get", "a"]))["header"]["revision"]
        .as_i64()
        .expect("revision");
    (lease, compact, last)
}

/// What the test compares, as etcdctl prints it (masked JSON, or error text).
fn observe(ctl: &Etcdctl, lease: &str, compact: i64, last: i64) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut record = |what: String, args: &[&str]| {
        let out = ctl.run(args, None);
        let text = if out.status.success() {
            let mut v: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{what}: {e}: {:?}", out.stdout));
            mask_ids(&mut v);
            v.to_string()
        } else {
            // etcdctl logs its retries (with timestamps) before the error itself.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error:")).collect();
            errors.join("\n")
        };
        seen.push((what, text));
    };
    for rev in compact..=last {
        let rev_flag = format!("--rev={rev}");
        record(
            format!("get at {rev}"),
            &root(&["get", "", "--from-key", &rev_flag, "-w", "json"]),
        );
    }
    let below = format!("--rev={}", compact - 1);
    record(
        "get below the compaction".into(),
        &root(&["get", "a", &below, "-w", "json"]),
    );
    record(
        "get now".into(),
        &root(&["get", "", "--from-key", "-w", "json"]),
    );
    record("lease list".into(), &root(&["lease", "list", "-w", "json"]));
    record("user list".into(), &root(&["user", "list", "-w", "json"]));
    record(
        "user get".into(),
        &root(&["user", "get", "alice", "-w", "json"]),
    );
    record(
        "role get".into(),
        &root(&["role", "get", "reader", "-w", "json"]),
    );
    // The auth store came along: alice's password (etcd's bcrypt hash) and her role's range.
    let alice = "--user=alice:alicepw";
    record("alice reads a".into(), &[alice, "get", "a", "-w", "json"]);
    record(
        "alice may not read z".into(),
        &[alice, "get", "z", "-w", "json"],
    );
    record(
        "a wrong password".into(),
        &["--user=alice:wrong", "get", "a", "-w", "json"],
    );
    // HashKV's hash covers qraft's own row encoding (core/src/mvcc/hash.rs), not etcd's:
    // compare the revisions it reports.
    let mut hashkv = json(ctl, &root(&["endpoint", "hashkv"]));
    mask_ids(&mut hashkv);
    hashkv[0]["HashKV"]["hash"].take();
    seen.push(("hashkv".into(), hashkv.to_string()));
    // The remaining TTL counts down and restarts at the granted one on a new leader (etcd's
    // rule too): compare the rest.
    let mut ttl = json(ctl, &root(&["lease", "timetolive", lease, "--keys"]));
    mask_ids(&mut ttl);
    let remaining = ttl["ttl"].take();
    assert!(remaining.as_i64().is_some_and(|t| t > 0), "{ttl}");
    seen.push(("lease timetolive".into(), ttl.to_string()));
    seen
}

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
