//! The history both migration tests (`restore_from_etcd.rs`, `restore_to_etcd.rs`) write
//! through etcdctl, and what they compare afterwards: every `get --rev=R` for the kept
//! revisions, the compacted-revision error, the lease, users, roles, auth at work and
//! `endpoint hashkv`'s revisions, as etcdctl prints them (`-w json`, IDs masked).

use std::path::Path;

use serde_json::Value;

use crate::etcdctl::Etcdctl;

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs etcdctl; panics with its stderr unless it succeeds; returns stdout.
pub fn ok(ctl: &Etcdctl, args: &[&str], stdin: Option<&str>) -> String {
    let out = ctl.run(args, stdin);
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn json(ctl: &Etcdctl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend_from_slice(&["-w", "json"]);
    let text = ok(ctl, &all, None);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// etcdctl's credentials once the history turned auth on.
pub const ROOT: &str = "--user=root:rootpw";

/// `args` run as root.
pub fn root<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![ROOT];
    all.extend_from_slice(args);
    all
}

/// Blanks what a new cluster legitimately changes: its IDs and raft term. Lease IDs,
/// revisions and versions stay: they are what the migration must keep.
pub fn mask_ids(value: &mut Value) {
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
pub fn write_bulk(ctl: &Etcdctl) {
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
pub fn write_history(ctl: &Etcdctl) -> (String, i64, i64) {
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
pub fn observe(ctl: &Etcdctl, lease: &str, compact: i64, last: i64) -> Vec<(String, String)> {
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
