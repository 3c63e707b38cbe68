//! Real `qraft` processes on 127.0.0.1 for the multi-process tests.
//!
//! Finding the binary: Cargo only exposes `CARGO_BIN_EXE_*` to tests of the package that owns
//! the binary, so this crate looks for `qraft` next to the test executable's `deps/` directory
//! (`target/<profile>/qraft`), which `cargo nextest run --workspace` / `cargo test --workspace`
//! build before running tests. `QRAFT_BIN` overrides the path. A missing binary fails the test
//! with the command that builds it.
//!
//! Certificates: one CA is generated per cluster and copied into every member's auto-TLS
//! fixture directories (peer and client) before first start, so members trust each other and
//! one `ca.crt` verifies every client endpoint (see `qraft_io::tls::ensure_auto_tls`).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qraft_io::client::{Client, ClientConfig};
use qraft_io::runtime;

/// The `qraft` (or `qraftctl`) binary built next to the running test.
pub fn binary(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase());
    if let Ok(path) = std::env::var(&var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found; build it with `cargo build -p qraft-server --bins` (same profile) or set {var}",
        path.display()
    );
    path
}

/// Runs qraftctl without an endpoint (the offline `snapshot status|restore` commands); returns
/// (success, stdout, stderr).
pub fn ctl_offline(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary("qraftctl"))
        .args(args)
        .output()
        .expect("run qraftctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free UDP port on 127.0.0.1 (QUIC listens on UDP). The socket is closed before the member
/// binds it; collisions with other tests are unlikely and fail loudly.
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port");
    s.local_addr().expect("local addr").port()
}

/// A free TCP port on 127.0.0.1, for the metrics (HTTP) listener: a port free for UDP may be
/// taken for TCP (e.g. by some client's ephemeral port), which failed member starts with
/// "Address already in use".
pub fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A port on 127.0.0.1 free for both UDP and TCP, for client URLs: a member serves QUIC on the
/// UDP port and etcd's gRPC API on the TCP port of the same number. Bounded: gives up after
/// 100 ephemeral ports whose TCP twin was taken.
pub fn free_client_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = udp.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP after 100 tries");
}

pub struct Node {
    pub name: String,
    pub data_dir: PathBuf,
    pub client_port: u16,
    pub peer_port: u16,
    pub metrics_port: u16,
    /// `https` (QUIC and gRPC over TLS on the client port, the default) or `http` (plaintext
    /// gRPC only, as an etcd member with `http://` client URLs).
    pub client_scheme: &'static str,
    pub extra_args: Vec<String>,
    /// The address the member listens on (client and peer URLs): 127.0.0.1 unless the test
    /// put the member in a network namespace of its own.
    pub host: String,
    /// The network namespace the member runs in (`ip netns exec`), if any.
    pub netns: Option<String>,
    /// The soft file descriptor limit to start the process with (`ulimit -n`); `None` keeps
    /// the test's.
    pub fd_limit: Option<u64>,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    /// A member named `name` with fresh ports, its data dir and log under `root`; not started.
    pub fn new(root: &Path, name: &str) -> Node {
        Node {
            data_dir: root.join(name),
            log: root.join(format!("{name}.log")),
            name: name.to_string(),
            client_port: free_client_port(),
            peer_port: free_udp_port(),
            metrics_port: free_tcp_port(),
            client_scheme: "https",
            extra_args: Vec::new(),
            host: "127.0.0.1".into(),
            netns: None,
            fd_limit: None,
            child: None,
        }
    }

    pub fn client_url(&self) -> String {
        format!(
            "{}://{}:{}",
            self.client_scheme, self.host, self.client_port
        )
    }

    pub fn peer_url(&self) -> String {
        format!("https://{}:{}", self.host, self.peer_port)
    }

    /// The process id while the member runs (`ip netns exec` execs the member, so this is the
    /// member itself), for signals other than kill -9.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The exit code once the process has ended (`None` while it runs or was never started;
    /// -1 when killed by a signal).
    pub fn exit_code(&mut self) -> Option<i32> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        Some(status.code().unwrap_or(-1))
    }

    /// The member's log so far (for assertion messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Settings shared by the members of a test cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub heartbeat_ms: u64,
    pub election_ms: u64,
    pub snapshot_count: u64,
    /// More flags for every member (e.g. `--snapshot-catchup-entries 50`).
    pub extra_args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            heartbeat_ms: 50,
            election_ms: 500,
            snapshot_count: 10_000,
            extra_args: Vec::new(),
        }
    }
}

pub struct Cluster {
    pub root: PathBuf,
    pub nodes: Vec<Node>,
    pub options: ClusterOptions,
    pub ca_dir: PathBuf,
    /// Certificate and key every client of the test presents (`--cert`/`--key`); needed when
    /// the members run with `--client-cert-auth`. `None` = clients present none.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `--initial-cluster-token` of every member.
    pub token: String,
}

impl Cluster {
    /// Starts `n` members from flags as a new cluster and waits until a leader serves writes.
    pub fn start(n: usize, options: ClusterOptions) -> Cluster {
        let mut cluster = Cluster::spawn_with(n, options, |_| {});
        cluster.wait_for_writes(Duration::from_secs(30));
        cluster
    }

    /// Starts `n` members as [`Cluster::start`] does, after `configure` adjusted each one
    /// (extra flags, ...), without waiting for them and without writing anything: the caller
    /// decides what "ready" means (e.g. tests that compare revisions with etcd's).
    pub fn spawn_with(
        n: usize,
        options: ClusterOptions,
        mut configure: impl FnMut(&mut Node),
    ) -> Cluster {
        let mut cluster = Cluster::unstarted(n, options);
        for i in 0..n {
            cluster.install_ca(i);
            configure(&mut cluster.nodes[i]);
        }
        for i in 0..n {
            cluster.spawn(i, "new");
        }
        cluster
    }

    /// `n` members with their ports, empty data dirs and the cluster's CA, none started and
    /// none with the CA installed yet (a test that fills the data dirs first, as `snapshot
    /// restore` does, installs it afterwards).
    pub fn unstarted(n: usize, options: ClusterOptions) -> Cluster {
        let root = temp_root();
        let ca_dir = root.join("ca");
        make_ca(&ca_dir);
        let mut nodes = Vec::new();
        for i in 0..n {
            nodes.push(Node::new(&root, &format!("m{i}")));
        }
        let token = format!("test-{}", std::process::id());
        Cluster {
            root,
            nodes,
            options,
            ca_dir,
            client_cert: None,
            token,
        }
    }

    pub fn initial_cluster(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}={}", n.name, n.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Copies the cluster CA into member `i`'s auto-TLS directories (before its first start),
    /// creating them private (0700) as the member itself would.
    pub fn install_ca(&self, i: usize) {
        for sub in ["fixtures/peer", "fixtures/client"] {
            let dir = self.nodes[i].data_dir.join(sub);
            qraft_io::storage::create_private_dir_all(&dir).expect("create fixtures dir");
            for f in ["ca.crt", "ca.key"] {
                std::fs::copy(self.ca_dir.join(f), dir.join(f)).expect("copy CA");
            }
        }
    }

    /// Starts (or restarts) member `i` with `--initial-cluster-state state`.
    pub fn spawn(&mut self, i: usize, state: &str) {
        let initial = self.initial_cluster();
        let o = self.options.clone();
        let token = self.token.clone();
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open member log");
        let mut cmd = match (&node.netns, node.fd_limit) {
            (Some(ns), _) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(binary("qraft"));
                cmd
            }
            (None, Some(limit)) => {
                // The shell sets the limit and becomes the member (same process id).
                let mut cmd = Command::new("/bin/sh");
                cmd.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(binary("qraft"));
                cmd
            }
            (None, None) => Command::new(binary("qraft")),
        };
        // A member's fatal error ends its log; a backtrace after it would push it out of the
        // tail the tests show and search.
        cmd.env("RUST_BACKTRACE", "0");
        cmd.args([
            "--name",
            &node.name,
            "--data-dir",
            &node.data_dir.to_string_lossy(),
            "--listen-client-urls",
            &node.client_url(),
            "--listen-peer-urls",
            &node.peer_url(),
            "--listen-metrics-urls",
            &format!("http://{}:{}", node.host, node.metrics_port),
            "--initial-cluster",
            &initial,
            "--initial-cluster-state",
            state,
            "--initial-cluster-token",
            &token,
            "--heartbeat-interval",
            &o.heartbeat_ms.to_string(),
            "--election-timeout",
            &o.election_ms.to_string(),
            "--snapshot-count",
            &o.snapshot_count.to_string(),
        ])
        .args(&o.extra_args)
        .args(&node.extra_args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log);
        node.child = Some(cmd.spawn().expect("spawn qraft"));
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i, "new");
    }

    pub fn client_config(&self, endpoints: Vec<String>) -> ClientConfig {
        let cert_key = self
            .client_cert
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()));
        let mut c = ClientConfig::from_files(endpoints, &self.ca_dir.join("ca.crt"), cert_key)
            .expect("client TLS config");
        c.request_timeout = Duration::from_secs(5);
        c
    }

    /// A client for member `i` only.
    pub fn client(&self, i: usize) -> Client {
        self.connect(vec![self.nodes[i].client_url()])
    }

    /// A client over every running member.
    pub fn client_all(&self) -> Client {
        self.connect(self.nodes.iter().map(Node::client_url).collect())
    }

    /// Connects to `endpoints`, retrying for up to 30 s: a member opens its client listener
    /// only once it applied its own member record (etcd's publish), which a member just
    /// started (a learner catching up, say) may take a while to do on a loaded machine.
    fn connect(&self, endpoints: Vec<String>) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match runtime::block_on(Client::connect(self.client_config(endpoints.clone()))) {
                Ok(client) => return client,
                Err(e) if Instant::now() >= deadline => {
                    panic!("connect to {endpoints:?} within 30 s: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Waits until a put through any member succeeds.
    pub fn wait_for_writes(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            for i in 0..self.nodes.len() {
                if !self.nodes[i].is_running() {
                    continue;
                }
                let config = self.client_config(vec![self.nodes[i].client_url()]);
                let ok = runtime::block_on(async {
                    let c = Client::connect(config).await.ok()?;
                    let r = c.put_kv("__ready", "1").await.ok();
                    c.close();
                    r
                });
                if ok.is_some() {
                    return;
                }
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- {} ---\n{}", n.name, n.log_tail()))
                    .collect();
                panic!("cluster not writable in {timeout:?}\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs qraftctl against member `i`; returns (success, stdout, stderr).
    pub fn ctl(&self, i: usize, args: &[&str]) -> (bool, String, String) {
        let out = self.ctl_command(i, args).output().expect("run qraftctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// As [`Cluster::ctl`] for a command that may not end (a watch): killed after `wait`, when
    /// the first value is `None`.
    pub fn ctl_within(
        &self,
        i: usize,
        args: &[&str],
        wait: Duration,
    ) -> (Option<bool>, String, String) {
        let mut child = self
            .ctl_command(i, args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run qraftctl");
        let deadline = Instant::now() + wait;
        let mut ended = None;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                ended = Some(status.success());
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if ended.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().expect("wait for qraftctl");
        (
            ended,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ctl_command(&self, i: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary("qraftctl"));
        cmd.arg("--endpoints")
            .arg(self.nodes[i].client_url())
            .arg("--cacert")
            .arg(self.ca_dir.join("ca.crt"));
        if let Some((cert, key)) = &self.client_cert {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        cmd.args(args);
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        // A failed test keeps the members' logs for diagnosis but never their data: data dirs
        // hold hundreds of MB in the big tests, and on a CI disk a few kept after failed tries
        // fill it (a retry, or any later test, then fails with ENOSPC).
        // `QRAFT_KEEP_TEST_DATA=1` keeps everything.
        if std::env::var_os("QRAFT_KEEP_TEST_DATA").is_some() {
            eprintln!("cluster data kept in {}", self.root.display());
        } else if std::thread::panicking() {
            for node in &self.nodes {
                let _ = std::fs::remove_dir_all(&node.data_dir);
            }
            eprintln!("member logs kept in {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn temp_root() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("qraft-cluster-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create cluster temp dir");
    dir
}

/// A fresh CA (the leaves each member generates are signed by it).
fn make_ca(dir: &Path) {
    qraft_io::tls::ensure_auto_tls(dir, &[]).expect("generate the cluster CA");
}
