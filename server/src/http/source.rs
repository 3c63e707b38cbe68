//! What the HTTP endpoints need to know about the member, behind one trait the server wiring
//! implements (and tests fake).

use qraft_core::version::VersionReport;
use qraft_io::metrics::Metrics;
use qraft_proto::etcdserverpb::AlarmType;
use std::future::Future;

/// The member as the health, readiness and version endpoints see it.
///
/// The read checks are async because they go through the member's loop (and, for the
/// linearizable one, through a raft ReadIndex round). Implementations must bound them with
/// the server's request timeout and return the error text a client would see (e.g.
/// `etcdserver: request timed out`), which the endpoints show verbatim.
pub trait HealthSource: Send + Sync + 'static {
    /// A serializable read of one key served by this member alone (etcd: Range, keys-only,
    /// limit 1, serializable).
    fn serializable_read(&self) -> impl Future<Output = Result<(), String>> + Send;

    /// A linearizable read of one key (needs a leader and a quorum).
    fn linearizable_read(&self) -> impl Future<Output = Result<(), String>> + Send;

    /// Whether this member is a learner (non-voting).
    fn is_learner(&self) -> bool;

    /// Whether this member currently knows a leader.
    fn has_leader(&self) -> bool;

    /// The alarms raised anywhere in the cluster (as replicated to this member).
    fn alarms(&self) -> Vec<AlarmType>;

    /// Server, cluster and storage versions for `/version`.
    fn versions(&self) -> VersionReport;

    /// Brings the gauges that mirror the member's state up to date before `/metrics` renders
    /// them (the loop publishes that state; counting it again on every turn would be waste).
    fn refresh_metrics(&self, _metrics: &Metrics) {}
}
