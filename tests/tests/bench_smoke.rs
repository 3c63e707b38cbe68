//! `qraft-bench` end to end against a real 3-member qraft on 127.0.0.1: every workload runs a
//! tiny bounded load and prints its JSON summary with zero errors. No timing is asserted (the
//! figures belong in docs/performance.md, measured with bench/compare.sh).

use std::process::Command;
use std::time::Duration;

use qraft_tests::cluster::{Cluster, ClusterOptions, binary};
use serde_json::Value;

/// Runs one bounded workload (`--total total`, plus a 60 s wall-clock cap) and returns its
/// JSON summary.
fn bench(c: &Cluster, total: u64, global: &[&str], workload: &[&str]) -> Value {
    let endpoints: Vec<String> = c.nodes.iter().map(|n| n.client_url()).collect();
    let out = Command::new(binary("qraft-bench"))
        .arg("--endpoints")
        .arg(endpoints.join(","))
        .arg("--cacert")
        .arg(c.ca_dir.join("ca.crt"))
        .args(["--json", "--no-progress", "--duration", "60s", "--total"])
        .arg(total.to_string())
        .args(global)
        .args(workload)
        .output()
        .expect("run qraft-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "qraft-bench {workload:?} failed:\n{stdout}\n{stderr}"
    );
    let line = stdout.lines().last().unwrap_or_default();
    let summary: Value = serde_json::from_str(line)
        .unwrap_or_else(|err| panic!("not a JSON summary ({err}): {stdout}\n{stderr}"));
    assert_eq!(summary["errors"], 0, "{workload:?}: {summary}");
    assert_eq!(summary["target"], "qraft", "{summary}");
    for field in [
        "qps", "avg_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
    ] {
        assert!(
            summary[field].as_f64().is_some_and(|v| v >= 0.0),
            "{workload:?}: no {field} in {summary}"
        );
    }
    summary
}

#[test]
fn every_workload_runs_against_a_real_cluster_without_errors() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    c.wait_for_writes(Duration::from_secs(30));
    let clients = ["--clients", "8", "--conns", "3"];

    let put = bench(
        &c,
        200,
        &clients,
        &["put", "--val-size", "64", "--key-space-size", "100"],
    );
    assert_eq!(put["workload"], "put");
    assert_eq!(put["ok"], 200, "{put}");
    for consistency in ["l", "s"] {
        let range = bench(
            &c,
            100,
            &clients,
            &[
                "range",
                "--key-space-size",
                "100",
                "--consistency",
                consistency,
            ],
        );
        assert_eq!(range["ok"], 100, "{range}");
    }
    let txn = bench(&c, 50, &clients, &["txn-put", "--key-space-size", "100"]);
    assert_eq!(txn["ok"], 50, "{txn}");
    // Keep-alives reach the leader whichever member a requester's connection landed on.
    let keep = bench(
        &c,
        40,
        &["--clients", "4", "--conns", "3"],
        &["lease-keepalive"],
    );
    assert_eq!(keep["ok"], 40, "{keep}");
    let watch = bench(
        &c,
        20,
        &["--clients", "2", "--conns", "2"],
        &["watch", "--watchers", "4"],
    );
    assert!(watch["ok"].as_u64().is_some_and(|ok| ok > 0), "{watch}");
    // Fan-out over keys: 6 watchers on 3 keys, 21 puts cycling over them (7 per key): each
    // watcher sees its key's 7 puts, 42 events in all, none missing.
    let fanout = bench(
        &c,
        21,
        &["--clients", "3", "--conns", "2"],
        &["watch", "--watchers", "6", "--watch-keys", "3"],
    );
    assert_eq!(fanout["ok"], 42, "{fanout}");
    assert_eq!(fanout["errors"], 0, "{fanout}");
}
