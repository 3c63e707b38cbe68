//! The real etcdctl (Go clientv3 and grpc-go, from Debian's `etcd-client` package) against the
//! listener: proves the HTTP/2 and gRPC details (settings, trailers, streams) suit Go's gRPC,
//! which is what Kubernetes uses. A missing etcdctl fails the tests (`.ci/test` installs it).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use qraft_server::grpc::GrpcLimits;
use serde_json::Value;

use crate::scripted_core::ScriptedCore;

const ETCDCTL: &str = "/usr/bin/etcdctl";
const WAIT: Duration = Duration::from_secs(20);

/// These tests exist to run the real etcdctl: without it they must fail, not pass.
fn require_etcdctl() {
    assert!(
        Path::new(ETCDCTL).exists(),
        "{ETCDCTL} is not installed, and these tests drive the listener with it; \
         install it (apt-get install etcd-client, or run .ci/test as root)"
    );
}

fn command(addr: SocketAddr, args: &[&str]) -> Command {
    let mut command = Command::new(ETCDCTL);
    command
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={addr}"))
        .arg("--command-timeout=10s")
        .args(args);
    command
}

fn run(addr: SocketAddr, args: &[&str]) -> Output {
    command(addr, args).output().expect("run etcdctl")
}

fn json(addr: SocketAddr, args: &[&str]) -> Value {
    let mut all = vec!["-w", "json"];
    all.extend_from_slice(args);
    let output = run(addr, &all);
    assert!(
        output.status.success(),
        "etcdctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("etcdctl prints JSON")
}

/// Kills the child when the test ends, also on panic.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn etcdctl_kv_lease_cluster_and_maintenance_commands() {
    require_etcdctl();
    let addr = crate::start(ScriptedCore::default(), GrpcLimits::default());
    let put = json(addr, &["put", "foo", "bar"]);
    assert_eq!(put["header"]["revision"], 1);
    let get = json(addr, &["get", "foo"]);
    assert_eq!(get["count"], 1);
    assert_eq!(get["kvs"][0]["value"], "YmFy", "base64 of bar");
    let del = json(addr, &["del", "foo"]);
    assert_eq!(del["deleted"], 1);

    let grant = json(addr, &["lease", "grant", "60"]);
    assert_eq!(grant["TTL"], 60);
    let id = format!("{:x}", grant["ID"].as_i64().expect("lease id"));
    let kept = json(addr, &["lease", "keep-alive", "--once", &id]);
    assert_eq!(kept["TTL"], 60);
    json(addr, &["lease", "revoke", &id]);
    let again = run(addr, &["lease", "revoke", &id]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("etcdserver: requested lease not found"),
        "etcd's error text reaches etcdctl: {}",
        String::from_utf8_lossy(&again.stderr)
    );

    let members = json(addr, &["member", "list"]);
    assert_eq!(members["members"][0]["name"], "one");
    let status = json(addr, &["endpoint", "status"]);
    assert_eq!(status[0]["Status"]["version"], "3.6.0");
    let health = json(addr, &["endpoint", "health"]);
    assert_eq!(health[0]["health"], true);
}

#[test]
fn etcdctl_watch_receives_events_on_its_stream() {
    require_etcdctl();
    let addr = crate::start(ScriptedCore::default(), GrpcLimits::default());
    let mut watcher = Killed(
        command(addr, &["watch", "w"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcdctl watch"),
    );
    let stdout = watcher.0.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    // etcdctl prints nothing when the watch is created, so keep putting (bounded) until the
    // first event shows up.
    let mut seen = Vec::new();
    for attempt in 0..40 {
        let output = run(addr, &["put", "w", &format!("v{attempt}")]);
        assert!(output.status.success());
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(250)) {
            seen.push(line);
        }
        if seen.len() >= 3 {
            break;
        }
    }
    assert!(seen.len() >= 3, "watch printed {seen:?} within {WAIT:?}");
    assert_eq!(seen[0], "PUT");
    assert_eq!(seen[1], "w");
    assert!(seen[2].starts_with('v'), "{seen:?}");
}
