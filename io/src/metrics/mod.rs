//! The Prometheus metrics of a member: etcd's families, renamed `etcd_*` → `qraft_*`
//! (`etcd_debugging_*` → `qraft_*` too), plus the process figures as `qraft_process_*`.
//! `docs/metrics.md` lists every family, what it means and where it is recorded.
//!
//! One [`Metrics`] value per member, shared (`Arc`) by the driver, the peer transport, the
//! client listeners and the HTTP endpoint. Every value is recorded where its event happens,
//! with an atomic add or a histogram observation (lock-free inside `prometheus-client`);
//! labelled families take the family's lock only when a label set is first used — per-peer
//! and per-type handles are resolved once and kept by the recorder. Scraping renders
//! everything in the OpenMetrics text format ([`Metrics::encode`]); the process figures are
//! read from `/proc` at scrape time. Labelled families are rendered once a first label set has
//! been recorded, as Prometheus clients do.
//!
//! Every family carries the `qraft_` prefix, the process ones too
//! (`qraft_process_resident_memory_bytes`, `qraft_process_open_fds`): one prefix selects all of
//! a member's metrics, and a qraft member never collides with another exporter's `process_*`
//! in the same scrape.

mod client;
mod peer;
mod process;

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use client::{ClientMetrics, REQUEST_TYPES, RequestTypeLabel, request_type};
pub use peer::{FromPeer, HeartbeatClock, ToPeer};

/// An apply of one batch of committed entries that takes longer counts as slow (etcd warns
/// about applies over 100 ms).
pub const SLOW_APPLY: Duration = Duration::from_millis(100);

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn peer_rtt_histogram() -> Histogram {
    // etcd: 0.0001 s doubling, 16 buckets (100 µs .. 3.3 s).
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

fn disk_histogram() -> Histogram {
    // etcd: 0.001 s doubling, 14 buckets (1 ms .. 8 s).
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// `qraft_server_*`: raft and apply state of this member.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    pub has_leader: Gauge,
    pub is_leader: Gauge,
    pub leader_changes_seen: Counter,
    /// Gauges, as in etcd: the current committed/applied raft index.
    pub proposals_committed: Gauge,
    pub proposals_applied: Gauge,
    pub proposals_pending: Gauge,
    pub proposals_failed: Counter,
    pub slow_apply: Counter,
    pub heartbeat_send_failures: Counter,
}

/// `qraft_disk_*`: durability costs.
#[derive(Debug)]
pub struct DiskMetrics {
    /// Seconds per LMDB commit that makes raft log entries, vote or term durable (the commit
    /// is the fsync of qraft's log).
    pub wal_fsync_duration_seconds: Histogram,
    /// Seconds per LMDB commit that carries applied entries (the state machine's backend).
    pub backend_commit_duration_seconds: Histogram,
}

/// `qraft_mvcc_*`: the key space.
#[derive(Debug, Default)]
pub struct MvccMetrics {
    pub db_total_size_in_bytes: Gauge,
    pub db_total_size_in_use_in_bytes: Gauge,
    /// Gauge named `keys_total` as etcd's `etcd_debugging_mvcc_keys_total`: live keys.
    pub keys_total: Gauge,
    pub watcher_total: Gauge,
    /// Watch events sent to watchers.
    pub events: Counter,
}

/// `qraft_network_*`: peer traffic (per peer) and client traffic.
#[derive(Debug)]
pub struct NetworkMetrics {
    peer_round_trip_time_seconds: HistogramFamily<ToPeer>,
    peer_sent_bytes: Family<ToPeer, Counter>,
    peer_received_bytes: Family<FromPeer, Counter>,
}

impl NetworkMetrics {
    /// The round-trip-time histogram of the connection to `member` (keep the handle: looking
    /// it up takes the family's lock).
    pub fn round_trip_to(&self, member: u64) -> Histogram {
        self.peer_round_trip_time_seconds
            .get_or_create_owned(&ToPeer::new(member))
    }

    /// The counter of bytes sent to `member` (keep the handle).
    pub fn sent_to(&self, member: u64) -> Counter {
        self.peer_sent_bytes
            .get_or_create_owned(&ToPeer::new(member))
    }

    /// The counter of bytes received from `member` (keep the handle).
    pub fn received_from(&self, member: u64) -> Counter {
        self.peer_received_bytes
            .get_or_create_owned(&FromPeer::new(member))
    }
}

/// `qraft_lease_*`.
#[derive(Debug, Default)]
pub struct LeaseMetrics {
    pub granted: Counter,
    pub revoked: Counter,
    pub renewed: Counter,
}

/// All metric families of one member and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    pub server: ServerMetrics,
    pub disk: DiskMetrics,
    pub mvcc: MvccMetrics,
    pub network: NetworkMetrics,
    pub client: ClientMetrics,
    pub lease: LeaseMetrics,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let server = ServerMetrics::default();
        let disk = DiskMetrics {
            wal_fsync_duration_seconds: disk_histogram(),
            backend_commit_duration_seconds: disk_histogram(),
        };
        let mvcc = MvccMetrics::default();
        let network = NetworkMetrics {
            peer_round_trip_time_seconds: Family::new_with_constructor(peer_rtt_histogram),
            peer_sent_bytes: Family::default(),
            peer_received_bytes: Family::default(),
        };
        let client = ClientMetrics::default();
        let lease = LeaseMetrics::default();

        let mut registry = Registry::default();
        let qraft = registry.sub_registry_with_prefix("qraft");
        qraft
            .sub_registry_with_prefix("process")
            .register_collector(Box::new(process::ProcessCollector));

        let s = qraft.sub_registry_with_prefix("server");
        s.register(
            "has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
            server.has_leader.clone(),
        );
        s.register(
            "is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            server.is_leader.clone(),
        );
        s.register(
            "leader_changes_seen",
            "The number of leader changes seen.",
            server.leader_changes_seen.clone(),
        );
        s.register(
            "proposals_committed_total",
            "The total number of consensus proposals committed.",
            server.proposals_committed.clone(),
        );
        s.register(
            "proposals_applied_total",
            "The total number of consensus proposals applied.",
            server.proposals_applied.clone(),
        );
        s.register(
            "proposals_pending",
            "The current number of pending proposals to commit.",
            server.proposals_pending.clone(),
        );
        s.register(
            "proposals_failed",
            "The total number of failed proposals seen.",
            server.proposals_failed.clone(),
        );
        s.register(
            "slow_apply",
            "The total number of slow apply requests (likely overloaded from slow disk).",
            server.slow_apply.clone(),
        );
        s.register(
            "heartbeat_send_failures",
            "The total number of leader heartbeat send failures (likely overloaded from slow disk).",
            server.heartbeat_send_failures.clone(),
        );
        s.register(
            "client_requests",
            "The total number of client requests per request type.",
            client.requests.clone(),
        );

        let d = qraft.sub_registry_with_prefix("disk");
        d.register(
            "wal_fsync_duration_seconds",
            "The latency distributions of fsync called by the raft log.",
            disk.wal_fsync_duration_seconds.clone(),
        );
        d.register(
            "backend_commit_duration_seconds",
            "The latency distributions of commit called by backend.",
            disk.backend_commit_duration_seconds.clone(),
        );

        let m = qraft.sub_registry_with_prefix("mvcc");
        m.register(
            "db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            mvcc.db_total_size_in_bytes.clone(),
        );
        m.register(
            "db_total_size_in_use_in_bytes",
            "Total size of the underlying database logically in use in bytes.",
            mvcc.db_total_size_in_use_in_bytes.clone(),
        );
        m.register(
            "keys_total",
            "Total number of keys.",
            mvcc.keys_total.clone(),
        );
        m.register(
            "watcher_total",
            "Total number of watchers.",
            mvcc.watcher_total.clone(),
        );
        m.register(
            "events",
            "Total number of events sent by this member.",
            mvcc.events.clone(),
        );

        let n = qraft.sub_registry_with_prefix("network");
        n.register(
            "peer_round_trip_time_seconds",
            "Round-Trip-Time histogram between peers.",
            network.peer_round_trip_time_seconds.clone(),
        );
        n.register(
            "peer_sent_bytes",
            "The total number of bytes sent to peers.",
            network.peer_sent_bytes.clone(),
        );
        n.register(
            "peer_received_bytes",
            "The total number of bytes received from peers.",
            network.peer_received_bytes.clone(),
        );
        n.register(
            "client_grpc_received_bytes",
            "The total number of bytes received from clients.",
            client.received_bytes.clone(),
        );
        n.register(
            "client_grpc_sent_bytes",
            "The total number of bytes sent to clients.",
            client.sent_bytes.clone(),
        );

        let l = qraft.sub_registry_with_prefix("lease");
        l.register(
            "granted",
            "The total number of granted leases.",
            lease.granted.clone(),
        );
        l.register(
            "revoked",
            "The total number of revoked leases.",
            lease.revoked.clone(),
        );
        l.register(
            "renewed",
            "The number of renewed leases seen by the leader.",
            lease.renewed.clone(),
        );

        Metrics {
            server,
            disk,
            mvcc,
            network,
            client,
            lease,
            registry,
        }
    }

    /// Renders every family in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a collector.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    /// The `Content-Type` of [`Metrics::encode`]'s output.
    pub const CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_the_qraft_prefix() {
        let metrics = Metrics::new();
        metrics.server.has_leader.set(1);
        metrics.server.leader_changes_seen.inc();
        metrics.disk.wal_fsync_duration_seconds.observe(0.0025);
        metrics.network.sent_to(0xabc).inc_by(42);
        metrics.network.received_from(0xabc).inc_by(7);
        metrics.network.round_trip_to(2).observe(0.0003);
        metrics.client.received(None, 3);
        let text = metrics.encode();
        for needle in [
            "qraft_server_has_leader 1\n",
            "qraft_server_leader_changes_seen_total 1\n",
            "qraft_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 1\n",
            "qraft_network_peer_sent_bytes_total{To=\"abc\"} 42\n",
            "qraft_network_peer_received_bytes_total{From=\"abc\"} 7\n",
            "qraft_network_peer_round_trip_time_seconds_count{To=\"2\"} 1\n",
            "qraft_network_client_grpc_received_bytes_total 3\n",
            "qraft_server_client_requests_total{type=\"unknown\"} 1\n",
            "# TYPE qraft_lease_granted counter\n",
            "# TYPE qraft_mvcc_keys_total gauge\n",
            "qraft_process_open_fds ",
            "qraft_process_resident_memory_bytes ",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("qraft_"), "unprefixed sample {line:?}");
        }
        for line in text
            .lines()
            .filter(|l| l.starts_with("# TYPE ") || l.starts_with("# HELP "))
        {
            assert!(
                line[7..].starts_with("qraft_"),
                "unprefixed family {line:?}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
