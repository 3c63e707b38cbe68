//! A 3-member etcd cluster on loopback (plaintext), killed and removed on drop; the reference
//! side of the etcdctl compatibility test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::etcd::etcd_binary;
use crate::etcdctl::Etcdctl;

/// The names qraft's test clusters give their members too, so member lists compare.
pub const MEMBER_NAMES: [&str; 3] = ["m0", "m1", "m2"];

/// A free TCP port on 127.0.0.1 (released before use, so another process could take it in
/// between; acceptable on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A fresh directory for one test's data, under /dev/shm when available.
pub fn scratch_dir(label: &str) -> PathBuf {
    let base = if PathBuf::from("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    base.join(format!("qraft-{label}-{}-{nanos}", std::process::id()))
}

pub struct EtcdCluster {
    children: Vec<Child>,
    dir: PathBuf,
    /// `127.0.0.1:PORT` of each member's client listener, in member order.
    pub client_addrs: Vec<String>,
}

impl EtcdCluster {
    pub fn start() -> Self {
        Self::start_with_flags(&[])
    }

    /// Starts the cluster with `flags` added to every member's command line.
    pub fn start_with_flags(flags: &[&str]) -> Self {
        let binary = etcd_binary().unwrap_or_else(|| panic!("etcd binary not found"));
        let dir = scratch_dir("etcd-cluster");
        let peers: Vec<String> = MEMBER_NAMES
            .iter()
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let client_addrs: Vec<String> = MEMBER_NAMES
            .iter()
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let initial_cluster = MEMBER_NAMES
            .iter()
            .zip(&peers)
            .map(|(name, peer)| format!("{name}=http://{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            children: Vec::new(),
            dir: dir.clone(),
            client_addrs: client_addrs.clone(),
        };
        for ((name, peer), client) in MEMBER_NAMES.iter().zip(&peers).zip(&client_addrs) {
            let child = Command::new(&binary)
                .arg(format!("--name={name}"))
                .arg(format!("--data-dir={}", dir.join(name).display()))
                .arg(format!("--listen-client-urls=http://{client}"))
                .arg(format!("--advertise-client-urls=http://{client}"))
                .arg(format!("--listen-peer-urls=http://{peer}"))
                .arg(format!("--initial-advertise-peer-urls=http://{peer}"))
                .arg(format!("--initial-cluster={initial_cluster}"))
                .arg("--initial-cluster-token=compat")
                .arg("--logger=zap")
                .arg("--log-level=error")
                .args(flags)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
            cluster.children.push(child);
        }
        cluster.wait_healthy();
        cluster
    }

    pub fn etcdctl(&self) -> Etcdctl {
        Etcdctl::plaintext(self.client_addrs.clone())
    }

    /// kill -9 of member `i` (it stays down).
    pub fn kill(&mut self, i: usize) {
        if let Some(child) = self.children.get_mut(i) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let etcdctl = self.etcdctl();
        loop {
            for child in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("etcd exited during start-up: {status}");
                }
            }
            if etcdctl.succeeds(&["endpoint", "health", "--cluster"]) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the etcd cluster did not become healthy in 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
