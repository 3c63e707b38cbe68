//! Runs the real etcd (the Debian `etcd-server` package, `/usr/bin/etcd`) on loopback for
//! differential tests, and kills it when the guard is dropped (also when a test panics).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{get, post_json};

/// Path of the etcd binary, if installed.
pub fn etcd_binary() -> Option<PathBuf> {
    ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Fails the test when etcd is missing: a differential test without its oracle proves nothing,
/// so it must never pass silently (`.ci/test` installs etcd).
pub fn require_etcd(test: &str) {
    assert!(
        etcd_binary().is_some(),
        "{test}: /usr/bin/etcd is not installed, and this test compares qraft with it; \
         install it (apt-get install etcd-server etcd-client, or run .ci/test as root)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A directory for one etcd's data that no other test uses (in /dev/shm where there is one:
/// etcd's fsyncs are then cheap).
fn fresh_data_dir() -> PathBuf {
    let base = if PathBuf::from("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    base.join(format!(
        "qraft-etcd-diff-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ))
}

/// A running single-member etcd. Dropping it kills the process and removes its data.
pub struct EtcdProcess {
    child: Child,
    data_dir: PathBuf,
    /// `127.0.0.1:PORT` of the client listener (gRPC and the JSON gateway).
    pub client_addr: String,
}

impl EtcdProcess {
    /// Starts etcd with fresh data in a temporary directory and waits until it answers.
    pub fn start() -> Self {
        Self::start_with_flags(&[])
    }

    /// As [`EtcdProcess::start`], with more flags (e.g. `--max-txn-ops=3`).
    pub fn start_with_flags(flags: &[&str]) -> Self {
        let peer = format!("127.0.0.1:{}", free_port());
        let mut etcd = Self::spawn(fresh_data_dir(), "diff", &peer, "http", flags);
        etcd.wait_ready(|etcd| {
            post_json(&etcd.client_addr, "/v3/kv/range", r#"{"key":"AA=="}"#)
                .is_ok_and(|r| r.status == 200)
        });
        etcd
    }

    /// etcd with `--auto-tls` (a self-signed ECDSA P-256 certificate) on an `https://` client
    /// URL and `flags`, ready once `serving(client_addr)` says so (e.g. a TLS handshake
    /// completes: the plaintext gateway is not there to ask).
    pub fn start_auto_tls(flags: &[&str], serving: impl Fn(&str) -> bool) -> Self {
        let peer = format!("127.0.0.1:{}", free_port());
        let flags: Vec<&str> = ["--auto-tls"].iter().chain(flags).copied().collect();
        let mut etcd = Self::spawn(fresh_data_dir(), "diff", &peer, "https", &flags);
        etcd.wait_ready(|etcd| serving(&etcd.client_addr));
        etcd
    }

    /// Starts etcd on a data dir that `etcdctl snapshot restore --name NAME
    /// --initial-advertise-peer-urls http://PEER` built, and waits until `/health` is ok (a
    /// range through the gateway would need a token once auth is on).
    pub fn start_restored(data_dir: PathBuf, name: &str, peer: &str) -> Self {
        let mut etcd = Self::spawn(data_dir, name, peer, "http", &[]);
        etcd.wait_ready(|etcd| get(&etcd.client_addr, "/health").is_ok_and(|r| r.status == 200));
        etcd
    }

    /// A free loopback `127.0.0.1:PORT` (for a peer URL chosen before etcd starts).
    pub fn free_addr() -> String {
        format!("127.0.0.1:{}", free_port())
    }

    fn spawn(data_dir: PathBuf, name: &str, peer: &str, scheme: &str, flags: &[&str]) -> Self {
        let binary = etcd_binary().unwrap_or_else(|| panic!("etcd binary not found"));
        let client = format!("127.0.0.1:{}", free_port());
        let child = Command::new(binary)
            .arg(format!("--name={name}"))
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={scheme}://{client}"))
            .arg(format!("--advertise-client-urls={scheme}://{client}"))
            .arg(format!("--listen-peer-urls=http://{peer}"))
            .arg(format!("--initial-advertise-peer-urls=http://{peer}"))
            .arg(format!("--initial-cluster={name}=http://{peer}"))
            .arg("--logger=zap")
            .arg("--log-level=error")
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
        EtcdProcess {
            child,
            data_dir,
            client_addr: client,
        }
    }

    fn wait_ready(&mut self, ready: impl Fn(&EtcdProcess) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("etcd exited during start-up: {status}");
            }
            if ready(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POSTs a JSON body to a gateway path, e.g. `/v3/kv/put`.
    pub fn post(&self, path: &str, body: &str) -> crate::http::HttpResponse {
        post_json(&self.client_addr, path, body)
            .unwrap_or_else(|e| panic!("etcd request {path} failed: {e}"))
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
