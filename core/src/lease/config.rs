//! Tunables of the lessor, with etcd's defaults.

/// The largest TTL a lease may be granted with, in seconds (etcd's `MaxLeaseTTL`).
pub const MAX_LEASE_TTL_SECS: i64 = 9_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessorConfig {
    /// Shorter requested TTLs are raised to this. etcd: ceil(1.5 × election timeout) = 2 s.
    pub min_ttl_secs: i64,
    /// Replicate remaining TTLs so they survive leader changes and restarts. On by default in
    /// qraft (an alpha gate, off by default, in etcd 3.6).
    pub checkpoints_enabled: bool,
    /// How often the primary checkpoints a lease; leases with less time left are not
    /// checkpointed (etcd: 5 minutes).
    pub checkpoint_interval_ms: u64,
    /// At most this many checkpoints go into one `LeaseCheckpointRequest` (etcd: 1000).
    pub max_checkpoints_per_request: usize,
    /// At most this many expired leases are reported per `expired()` call. The shell calls it
    /// every 500 ms, so 500 gives etcd's rate of 1000 revokes per second.
    pub max_revokes_per_call: usize,
    /// An expired lease reported once is reported again only after this long, giving its revoke
    /// time to commit (etcd: 3 s).
    pub expired_retry_ms: u64,
    /// Seed of the RNG that picks lease IDs.
    pub seed: u64,
}

impl Default for LessorConfig {
    fn default() -> Self {
        LessorConfig {
            min_ttl_secs: 2,
            checkpoints_enabled: true,
            checkpoint_interval_ms: 5 * 60 * 1000,
            max_checkpoints_per_request: 1000,
            max_revokes_per_call: 500,
            expired_retry_ms: 3000,
            seed: 0,
        }
    }
}
