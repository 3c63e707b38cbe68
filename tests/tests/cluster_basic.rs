//! A 3-member cluster of real `qraft` processes comes up from flags; writes through any member
//! are read back from every member; qraftctl talks to it with etcdctl's output shapes.

use std::time::{Duration, Instant};

use qraft_io::runtime;
use qraft_proto::etcdserverpb::RangeRequest;
use qraft_tests::cluster::{Cluster, ClusterOptions};

/// Serializable (local) read of `key` on member `i`, retried until it shows `want` — a
/// follower applies a committed entry shortly after the leader answers.
fn wait_local_value(c: &Cluster, i: usize, key: &str, want: &str) {
    let client = c.client(i);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = runtime::block_on(client.range(RangeRequest {
            key: key.as_bytes().to_vec().into(),
            serializable: true,
            ..Default::default()
        }))
        .ok()
        .and_then(|r| r.kvs.first().map(|kv| kv.value.to_vec()));
        if got.as_deref() == Some(want.as_bytes()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {i} never showed {key}={want} (last: {got:?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn writes_on_any_member_are_read_from_all() {
    let c = Cluster::start(3, ClusterOptions::default());
    for writer in 0..3 {
        let key = format!("from-{writer}");
        let value = format!("v{writer}");
        let client = c.client(writer);
        runtime::block_on(client.put_kv(key.clone(), value.clone())).expect("put");
        for reader in 0..3 {
            wait_local_value(&c, reader, &key, &value);
            // A linearizable read through any member sees it at once.
            let r = runtime::block_on(c.client(reader).get(key.clone())).expect("get");
            assert_eq!(r.kvs[0].value.as_ref(), value.as_bytes());
        }
    }
}

#[test]
fn qraftctl_speaks_etcdctls_output() {
    let c = Cluster::start(3, ClusterOptions::default());
    let (ok, out, err) = c.ctl(1, &["put", "foo", "bar"]);
    assert!(ok, "{err}");
    assert_eq!(out, "OK\n");
    let (ok, out, _) = c.ctl(2, &["get", "foo"]);
    assert!(ok);
    assert_eq!(out, "foo\nbar\n");
    let (ok, out, _) = c.ctl(0, &["get", "foo", "-w", "json"]);
    assert!(ok);
    assert!(out.contains(r#""kvs":[{"key":"Zm9v""#), "{out}");
    assert!(out.contains(r#""value":"YmFy""#), "{out}");
    assert!(out.starts_with(r#"{"header":{"cluster_id":"#), "{out}");
    let (ok, out, _) = c.ctl(0, &["del", "foo"]);
    assert!(ok);
    assert_eq!(out, "1\n");
    let (ok, out, _) = c.ctl(0, &["get", "foo"]);
    assert!(ok);
    assert_eq!(out, "");
    let (ok, out, err) = c.ctl(0, &["endpoint", "health"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("is healthy: successfully committed proposal"),
        "{out}"
    );
    let (ok, out, _) = c.ctl(0, &["member", "list"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 3, "{out}");
    let (ok, out, err) = c.ctl(0, &["endpoint", "status", "-w", "table"]);
    assert!(ok, "{err}");
    assert!(out.contains("| RAFT TERM |"), "{out}");
}

/// `endpoint hashkv` at one revision gives the same hash on every member once each has applied
/// it: the members hold the same history.
#[test]
fn members_report_the_same_kv_hash() {
    let c = Cluster::start(3, ClusterOptions::default());
    let mut last_revision = 0;
    for i in 0..20 {
        let client = c.client(i % 3);
        let put = runtime::block_on(client.put_kv(format!("k{}", i % 7), format!("v{i}")));
        last_revision = put.expect("put").header.expect("header").revision;
    }
    let rev = last_revision.to_string();
    let hashes: Vec<String> = (0..3)
        .map(|i| {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (ok, out, err) = c.ctl(i, &["endpoint", "hashkv", "--rev", &rev]);
                if ok {
                    let hash = out.trim().rsplit(", ").next().unwrap_or_default();
                    return hash.to_string();
                }
                assert!(
                    err.contains("future revision") && Instant::now() < deadline,
                    "member {i}: {err}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .collect();
    assert!(!hashes[0].is_empty(), "{hashes:?}");
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
}
