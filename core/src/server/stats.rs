//! Counters of events inside the state machine that a shell exports as metrics. Plain numbers
//! (no IO): the shell reads [`super::Server::stats`] after a turn and records what moved.

/// Monotonic counts since this `Server` was opened; they survive installing a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Proposals that failed: refused by raft (no leader, dropped, too many unapplied
    /// entries) or timed out before they were applied (etcd's `proposals_failed_total`).
    pub proposals_failed: u64,
    /// Lease grants applied by this member (every member applies them).
    pub leases_granted: u64,
    /// Lease revokes applied by this member (client revokes and expiries alike).
    pub leases_revoked: u64,
    /// Keep-alives this member renewed as the leader.
    pub leases_renewed: u64,
    /// Times this member saw the leader change to a known one (`Output::LeaderChanged` with
    /// a leader; etcd's `leader_changes_seen_total`, which the first leader counts too).
    pub leader_changes: u64,
}
