//! `/livez`, `/readyz`, `/health`, `/version` and `/metrics` of real `qraft` members: named
//! checks, `?verbose`, `?exclude=`, per-check paths and unknown names; a member cut off from
//! quorum stays live but is not ready (503); a member over `--quota-backend-bytes` reports
//! etcd's NOSPACE alarm on `/health`; with auth enabled the probes still report health (their
//! read is the member's own, not gated by auth).
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::Duration;

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::{member_get, restart_with, wait_serving, wait_until, wait_versions};
use qraft_tests::prometheus::Scrape;

const READYZ_OK_VERBOSE: &str = "[+]data_corruption ok\n[+]serializable_read ok\n\
    [+]linearizable_read ok\n[+]non_learner ok\nok\n";

fn get(c: &Cluster, i: usize, path: &str) -> (u16, String) {
    let r = member_get(c, i, path).unwrap_or_else(|e| panic!("{e}"));
    (r.status, r.body)
}

#[test]
fn probes_of_a_healthy_member_and_of_one_cut_off_from_quorum() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    // The leader decides the cluster version at its first version checks after the start.
    wait_versions(&c, 0, None, Some("0.2.0"), None);

    assert_eq!(get(&c, 0, "/livez"), (200, "ok\n".into()));
    assert_eq!(get(&c, 0, "/readyz"), (200, "ok\n".into()));
    assert_eq!(
        get(&c, 1, "/readyz?verbose"),
        (200, READYZ_OK_VERBOSE.into())
    );
    assert_eq!(
        get(&c, 2, "/livez?verbose"),
        (200, "[+]serializable_read ok\nok\n".into())
    );
    assert_eq!(
        get(
            &c,
            0,
            "/readyz?verbose&exclude=linearizable_read&exclude=non_learner"
        ),
        (
            200,
            "[+]data_corruption ok\n[+]serializable_read ok\nok\n".into()
        )
    );
    assert_eq!(
        get(&c, 0, "/readyz/linearizable_read"),
        (200, "ok\n".into())
    );
    assert_eq!(
        get(&c, 0, "/readyz/non_learner?verbose"),
        (200, "[+]non_learner ok\nok\n".into())
    );
    assert_eq!(get(&c, 0, "/readyz/no_such_check").0, 404);
    assert_eq!(get(&c, 0, "/livez/linearizable_read").0, 404);
    assert_eq!(
        get(&c, 0, "/health"),
        (200, r#"{"health":"true","reason":""}"#.into())
    );
    let (status, body) = get(&c, 0, "/version");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"qraftserver":"0.2.0","qraftcluster":"0.2.0","storage":"0.2.0"}"#
    );
    let (status, metrics) = get(&c, 0, "/metrics");
    assert_eq!(status, 200);
    for line in metrics.lines().filter(|l| !l.is_empty()) {
        let name = line
            .strip_prefix("# TYPE ")
            .or_else(|| line.strip_prefix("# HELP "))
            .unwrap_or(line);
        assert!(
            name.starts_with("qraft_") || line == "# EOF",
            "unprefixed metric line {line:?}"
        );
    }
    assert!(metric_value(&metrics, "qraft_process_open_fds") > 0.0);
    // The member's own state is recorded: a leader is known and entries were applied.
    assert_eq!(metric_value(&metrics, "qraft_server_has_leader"), 1.0);
    let applied = metric_value(&metrics, "qraft_server_proposals_applied_total");
    assert!(applied > 0.0, "{metrics}");
    assert!(metric_value(&metrics, "qraft_mvcc_db_total_size_in_bytes") > 0.0);

    // Cut member 0 off from quorum: it still answers from its own loop but is not ready.
    c.kill(1);
    c.kill(2);
    let body = wait_until(
        "m0's /readyz to fail",
        Duration::from_secs(30),
        || match get(&c, 0, "/readyz") {
            (503, body) => Ok(body),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(
        body.starts_with(
            "[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: "
        ),
        "{body}"
    );
    assert!(body.trim_end().ends_with("[+]non_learner ok"), "{body}");
    assert_eq!(get(&c, 0, "/livez"), (200, "ok\n".into()));
    assert_eq!(
        get(&c, 0, "/readyz?exclude=linearizable_read"),
        (200, "ok\n".into())
    );
    assert_eq!(
        get(&c, 0, "/readyz/serializable_read"),
        (200, "ok\n".into())
    );
    assert_eq!(get(&c, 0, "/readyz/linearizable_read").0, 503);
    wait_until(
        "m0's /health to see no leader",
        Duration::from_secs(30),
        || match get(&c, 0, "/health") {
            (503, body) if body == "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}\n" => {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(
        get(&c, 0, "/health?serializable=true"),
        (200, r#"{"health":"true","reason":""}"#.into())
    );

    // Quorum back: ready again.
    c.spawn(1, "new");
    wait_until(
        "m0's /readyz to recover",
        Duration::from_secs(30),
        || match get(&c, 0, "/readyz") {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

#[test]
fn nospace_alarm_on_health_not_on_readiness() {
    let mut c = Cluster::start(1, ClusterOptions::default());
    restart_with(&mut c, 0, &["--quota-backend-bytes", "262144"]);
    wait_serving(&c, 0);
    let value = "x".repeat(4096);
    let client = c.client(0);
    let mut put = 0;
    wait_until("the NOSPACE alarm", Duration::from_secs(60), || {
        // Bounded: 200 puts of 4 KiB each are far over the 256 KiB quota.
        if put < 200 {
            let _ = qraft_io::runtime::block_on(client.put_kv(format!("big/{put}"), value.clone()));
            put += 1;
        }
        match get(&c, 0, "/health") {
            (503, body) => Ok(body),
            other => Err(format!("{other:?} after {put} puts")),
        }
    });
    client.close();
    assert_eq!(
        get(&c, 0, "/health"),
        (
            503,
            "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n".into()
        )
    );
    assert_eq!(
        get(&c, 0, "/health?exclude=NOSPACE"),
        (200, r#"{"health":"true","reason":""}"#.into())
    );
    // etcd: NOSPACE does not make a member unready; only CORRUPT does.
    assert_eq!(
        get(&c, 0, "/readyz?verbose"),
        (200, READYZ_OK_VERBOSE.into())
    );
}

/// Auth enabled (root and a user without any permission): every probe answers as without auth,
/// on every member, and a member cut off from quorum still fails its linearizable read.
#[test]
fn probes_report_health_with_auth_enabled() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    for command in [
        &["user", "add", "root:rootpw"][..],
        &["user", "add", "alice:alicepw"],
        &["auth", "enable"],
    ] {
        wait_until(
            &format!("qraftctl {command:?}"),
            Duration::from_secs(30),
            || match c.ctl(0, command) {
                (true, out, _) => Ok(out),
                (false, _, err) => Err(err),
            },
        );
    }
    for i in 0..3 {
        assert_eq!(get(&c, i, "/livez"), (200, "ok\n".into()), "m{i}");
        assert_eq!(
            get(&c, i, "/readyz?verbose"),
            (200, READYZ_OK_VERBOSE.into()),
            "m{i}"
        );
        assert_eq!(
            get(&c, i, "/health"),
            (200, r#"{"health":"true","reason":""}"#.into()),
            "m{i}"
        );
        assert_eq!(
            get(&c, i, "/health?serializable=true"),
            (200, r#"{"health":"true","reason":""}"#.into()),
            "m{i}"
        );
    }
    // Still a real quorum read: cut off, member 0 is live but not ready.
    c.kill(1);
    c.kill(2);
    wait_until(
        "m0's /readyz to fail",
        Duration::from_secs(30),
        || match get(&c, 0, "/readyz/linearizable_read") {
            (503, body) => Ok(body),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(get(&c, 0, "/livez"), (200, "ok\n".into()));
}

/// The value of an unlabelled sample `name` in a Prometheus text exposition.
fn metric_value(metrics: &str, name: &str) -> f64 {
    Scrape::parse(metrics)
        .unwrap_or_else(|e| panic!("{e}"))
        .value(name, &[])
        .unwrap_or_else(|| panic!("no sample {name} in {metrics}"))
}
