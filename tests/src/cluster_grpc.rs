//! qraft clusters whose members also serve etcd's v3 gRPC API (`--listen-grpc-urls`, plaintext
//! on loopback), for the tests that drive qraft with etcd's own clients (etcdctl, the
//! `etcd-client` crate).

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, ClusterOptions};
use crate::etcd_cluster::free_port;
use crate::etcdctl::Etcdctl;

pub struct GrpcCluster {
    pub cluster: Cluster,
    /// `127.0.0.1:PORT` of each member's gRPC listener, in member order.
    pub grpc_addrs: Vec<String>,
}

impl GrpcCluster {
    /// Starts `n` members and waits (up to 60 s) until etcdctl finds every one healthy.
    /// Nothing is written during start-up, so revisions start at 1 as in a fresh etcd.
    pub fn start(n: usize, options: ClusterOptions) -> GrpcCluster {
        let mut grpc_addrs = Vec::new();
        let cluster = Cluster::spawn_with(n, options, |node| {
            let addr = format!("127.0.0.1:{}", free_port());
            node.extra_args
                .push(format!("--listen-grpc-urls=http://{addr}"));
            grpc_addrs.push(addr);
        });
        let mut grpc = GrpcCluster {
            cluster,
            grpc_addrs,
        };
        grpc.wait_healthy(Duration::from_secs(60));
        grpc
    }

    /// etcd's timing (heartbeat 100 ms, election 1 s), so that values derived from it (the
    /// minimum lease TTL) match a default etcd's.
    pub fn etcd_timing() -> ClusterOptions {
        ClusterOptions {
            heartbeat_ms: 100,
            election_ms: 1000,
            ..ClusterOptions::default()
        }
    }

    /// etcdctl over every member's gRPC endpoint.
    pub fn etcdctl(&self) -> Etcdctl {
        Etcdctl::plaintext(self.grpc_addrs.clone())
    }

    /// `http://` endpoints for gRPC client libraries.
    pub fn endpoints(&self) -> Vec<String> {
        self.grpc_addrs
            .iter()
            .map(|a| format!("http://{a}"))
            .collect()
    }

    fn wait_healthy(&mut self, timeout: Duration) {
        let etcdctl = self.etcdctl();
        let deadline = Instant::now() + timeout;
        loop {
            for node in &mut self.cluster.nodes {
                if !node.is_running() {
                    panic!(
                        "qraft member {} exited during start-up:\n{}",
                        node.name,
                        node.log_tail()
                    );
                }
            }
            // `endpoint health` with several endpoints checks each one (a linearizable read
            // through every member), so this also waits for a leader.
            if etcdctl.succeeds(&["endpoint", "health"]) {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .cluster
                    .nodes
                    .iter()
                    .map(|n| format!("--- {} ---\n{}", n.name, n.log_tail()))
                    .collect();
                panic!(
                    "qraft gRPC endpoints not healthy in {timeout:?}\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
