//! The NOSPACE alarm end to end on three real members with a small `--quota-backend-bytes`:
//! writes past the quota make the members raise NOSPACE through raft; then puts are refused
//! with etcd's "database space exceeded" on every member while reads, deletes and compaction
//! work; `alarm list`, `/health` and `endpoint status` show the alarm; it survives a restart
//! (of a member that would not raise it by itself); and etcd's recovery — delete, compact,
//! defrag, `alarm disarm` — makes puts succeed again.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::Duration;

use qraft_io::client::Client;
use qraft_io::runtime;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::{
    endpoint_status, member_get, restart_with, wait_serving, wait_until,
};

const QUOTA: u64 = 256 * 1024;
const NO_SPACE: &str = "etcdserver: mvcc: database space exceeded";
const HEALTH_NOSPACE: &str = "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n";

fn put(client: &Client, key: &str, value: &str) -> Result<(), String> {
    runtime::block_on(client.put_kv(key.to_string(), value.to_string()))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn health(c: &Cluster, i: usize) -> (u16, String) {
    let r = member_get(c, i, "/health").unwrap_or_else(|e| panic!("{e}"));
    (r.status, r.body)
}

/// `alarm list` on member `i`: its lines.
fn alarm_list(c: &Cluster, i: usize) -> Vec<String> {
    let (ok, out, err) = c.ctl(i, &["alarm", "list"]);
    assert!(ok, "alarm list on m{i}: {err}");
    out.lines().map(str::to_string).collect()
}

fn db_size(c: &Cluster, i: usize) -> u64 {
    let status = endpoint_status(c, i).expect("endpoint status");
    status["dbSize"]
        .as_u64()
        .unwrap_or_else(|| panic!("no dbSize in {status}"))
}

fn in_use_bytes(c: &Cluster, i: usize) -> Result<u64, String> {
    let status = endpoint_status(c, i)?;
    status["dbSizeInUse"]
        .as_u64()
        .ok_or_else(|| format!("no dbSizeInUse in {status}"))
}

#[test]
fn nospace_alarm_refuses_growth_until_space_is_freed_and_disarmed() {
    let quota = QUOTA.to_string();
    let options = ClusterOptions {
        // A short raft log, so that compaction frees nearly everything the puts used.
        snapshot_count: 10,
        extra_args: vec!["--snapshot-catchup-entries".into(), "5".into()],
        ..ClusterOptions::default()
    };
    // Per member, so that one can be restarted with another quota.
    let mut c = Cluster::spawn_with(3, options, |node| {
        node.extra_args = vec!["--quota-backend-bytes".into(), quota.clone()];
    });
    c.wait_for_writes(Duration::from_secs(30));

    // Fill: 4 KiB values until a put is refused (bounded: 400 puts are ~6× the quota).
    let client = c.client_all();
    let value = "x".repeat(4096);
    let mut n = 0;
    let refused = wait_until("a put refused for space", Duration::from_secs(90), || {
        if n >= 400 {
            return Ok(Err("400 puts and no refusal".to_string()));
        }
        n += 1;
        match put(&client, &format!("big/{n}"), &value) {
            Err(e) if e.contains(NO_SPACE) => Ok(Ok(e)),
            other => Err(format!("put {n}: {other:?}")),
        }
    });
    client.close();
    let refused = refused.unwrap_or_else(|e| panic!("{e}"));
    assert!(refused.contains("ResourceExhausted") || refused.contains(NO_SPACE));

    // The alarm is replicated: every member refuses puts and reports it.
    for i in 0..3 {
        let client = c.client(i);
        wait_until(
            &format!("m{i} to refuse puts"),
            Duration::from_secs(20),
            || match put(&client, "one/more", "v") {
                Err(e) if e.contains(NO_SPACE) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        client.close();
        assert_eq!(health(&c, i), (503, HEALTH_NOSPACE.into()), "m{i}");
        let alarms = alarm_list(&c, i);
        assert!(!alarms.is_empty());
        for line in &alarms {
            assert!(
                line.starts_with("memberID:") && line.ends_with(" alarm:NOSPACE"),
                "{line}"
            );
        }
        let status = endpoint_status(&c, i).unwrap_or_else(|e| panic!("{e}"));
        let errors = status["errors"].to_string();
        assert!(errors.contains("alarm:NOSPACE"), "m{i}: {errors}");
    }
    // Reads still work.
    let (ok, out, err) = c.ctl(1, &["get", "big/1", "--print-value-only"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), value);

    // A member restarted with a quota it does not exceed raises nothing itself, yet the
    // replicated alarm is still in force on it.
    restart_with(&mut c, 2, &["--quota-backend-bytes", "1073741824"]);
    wait_serving(&c, 2);
    assert!(!alarm_list(&c, 2).is_empty());
    let client = c.client(2);
    let after_restart = put(&client, "after/restart", "v");
    client.close();
    assert!(
        after_restart.as_ref().is_err_and(|e| e.contains(NO_SPACE)),
        "{after_restart:?}"
    );

    // etcd's recovery: free space (delete, compact, defrag), then disarm.
    let (ok, out, err) = c.ctl(0, &["del", "big/", "--prefix"]);
    assert!(ok, "del: {err}");
    assert!(out.trim().parse::<u64>().is_ok_and(|d| d > 0), "{out}");
    let (ok, out, err) = c.ctl(0, &["endpoint", "status", "-w", "json"]);
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("status json");
    let revision = status[0]["Status"]["header"]["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no revision in {out}"));
    let (ok, out, err) = c.ctl(0, &["compaction", &revision.to_string()]);
    assert!(ok, "compaction: {err}");
    assert!(
        out.contains(&format!("compacted revision {revision}")),
        "{out}"
    );
    for i in 0..3 {
        wait_until(
            &format!("m{i}'s data in use under the quota"),
            Duration::from_secs(30),
            || match in_use_bytes(&c, i)? {
                used if used < QUOTA => Ok(()),
                used => Err(format!("{used} bytes in use")),
            },
        );
        // Defragmenting is allowed while NOSPACE is raised and shrinks the file.
        let size_before = db_size(&c, i);
        let (ok, out, err) = c.ctl(i, &["defrag"]);
        assert!(ok, "defrag on m{i}: {err}");
        assert!(
            out.starts_with("Finished defragmenting etcd member["),
            "{out}"
        );
        let size_after = db_size(&c, i);
        assert!(
            size_after < size_before,
            "m{i}: {size_before} -> {size_after}"
        );
    }
    let (ok, out, err) = c.ctl(1, &["alarm", "disarm"]);
    assert!(ok, "disarm: {err}");
    assert!(
        !out.is_empty() && out.lines().all(|l| l.ends_with(" alarm:NOSPACE")),
        "{out}"
    );
    for i in 0..3 {
        wait_until(
            &format!("m{i} healthy"),
            Duration::from_secs(20),
            || match health(&c, i) {
                (200, _) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        assert!(alarm_list(&c, i).is_empty());
        let client = c.client(i);
        let result = put(&client, &format!("again/{i}"), "v");
        client.close();
        assert_eq!(result, Ok(()), "m{i}");
    }
}
