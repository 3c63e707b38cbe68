//! Settings of the state machine, with etcd's defaults.

use crate::auth::AuthConfig;
use crate::lease::LessorConfig;
use qraft_proto::qraftpb::Attributes;

use crate::version::Version;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub member_id: u64,
    pub cluster_id: u64,
    /// Milliseconds per raft tick: the heartbeat interval (etcd: 100 ms).
    pub tick_ms: u64,
    /// Election timeout in ticks (etcd: 1000 ms = 10 ticks).
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// A request that has not completed after this long is answered "request timed out".
    pub request_timeout_ms: u64,
    /// Encoded client requests above this are refused (etcd: 1.5 MiB).
    pub max_request_bytes: usize,
    /// `--max-txn-ops`: a txn with more operations (compares, or ops of one branch, nested
    /// txns counted against what is left) is refused where it enters this member, as etcd's
    /// gRPC layer does (etcd: 128). Not checked when applying: members may differ.
    pub max_txn_ops: usize,
    /// Proposals are refused while more than this many committed entries wait to be applied.
    pub max_unapplied_entries: u64,
    /// Take a snapshot every this many applied entries (etcd's `--snapshot-count`: 10,000;
    /// 0 = never).
    pub snapshot_count: u64,
    /// Whether snapshots carry the image of the applied state inside raft: the periodic
    /// [`super::Output::Snapshot`] has it, and installing a received snapshot writes its image
    /// into the backend. An embedder that streams snapshot data beside raft (the LMDB shell:
    /// `MsgSnap` carries metadata only, the transport streams the data and the shell swaps it
    /// into the backend before [`super::Server::advance`]) turns it off.
    pub snapshot_images: bool,
    /// Entries kept in the raft log behind a snapshot for slow followers (etcd: 5,000).
    pub snapshot_catch_up_entries: u64,
    /// How often the leader looks for expired leases (etcd: 500 ms).
    pub lease_check_interval_ms: u64,
    pub lessor: LessorConfig,
    pub auth: AuthConfig,
    /// Seed of the raft node's RNG (election jitter) and of the state machine's own choices
    /// (member IDs). Not secret: secrets come from the [`crate::auth::SecretRng`] handed to
    /// [`super::Server::new`] (docs/security.md, "Randomness").
    pub seed: u64,
    /// `--emulated-version`: run as this older minor version (features, schema, published
    /// version); `None` runs as the binary's own version.
    pub emulated_version: Option<Version>,
    /// The binary's version; `None` is this build's [`crate::version::BINARY_VERSION`]
    /// (tests set another to play a newer or older binary).
    pub binary_version: Option<Version>,
    /// Ticks between version checks: each member publishes its versions if the replicated
    /// record differs, the leader decides the cluster version (etcd: every 5 s = 50 ticks).
    pub version_check_ticks: u64,
    /// What this member publishes about itself through raft (name and advertised client
    /// URLs, etcd's `publish`); `None` publishes nothing.
    pub member_attrs: Option<Attributes>,
    /// `--experimental-corrupt-check-time` in ticks: the leader proposes its key-space hash
    /// this often for every member to compare (`super::corrupt`); 0 = never (etcd's default).
    pub corrupt_check_ticks: u64,
    /// `--auto-compaction-mode` and `--auto-compaction-retention`: the history the leader keeps
    /// (`super::auto_compaction`); `None` = no auto compaction (etcd's default, retention 0).
    pub auto_compaction: Option<super::AutoCompaction>,
    /// `--experimental-initial-corrupt-check`: the member proposes its hash once it first
    /// knows a leader after starting.
    pub initial_corrupt_check: bool,
    /// `--strict-reconfig-check`: refuse member changes that would lose the quorum of started,
    /// connected voters (`super::reconfig_check`). etcd's default is on, and so is the
    /// server's; off here, because the check needs the shell to report its peers
    /// ([`super::Server::peer_active_since`]), which embedders and tests turn on with it.
    pub strict_reconfig_check: bool,
    /// `--watch-progress-notify-interval`: how often synced watchers that asked for progress
    /// notifications and got no events meanwhile get one (etcd: 10 minutes). Counted in
    /// ticks, so rounded up to a whole tick ([`super::Server::watch_config`]).
    pub watch_progress_notify_ms: u64,
}

impl ServerConfig {
    pub fn new(member_id: u64, cluster_id: u64) -> Self {
        ServerConfig {
            member_id,
            cluster_id,
            tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 1,
            request_timeout_ms: 5000,
            max_request_bytes: 1_572_864,
            max_txn_ops: crate::mvcc::validate::MAX_TXN_OPS,
            max_unapplied_entries: 5000,
            lease_check_interval_ms: 500,
            snapshot_count: 10_000,
            snapshot_images: true,
            snapshot_catch_up_entries: 5_000,
            lessor: LessorConfig {
                seed: member_id,
                ..LessorConfig::default()
            },
            auth: AuthConfig::default(),
            seed: member_id,
            emulated_version: None,
            binary_version: None,
            version_check_ticks: 50,
            member_attrs: None,
            corrupt_check_ticks: 0,
            initial_corrupt_check: false,
            auto_compaction: None,
            strict_reconfig_check: false,
            watch_progress_notify_ms: 600_000,
        }
    }

    pub fn election_timeout_ms(&self) -> u64 {
        self.tick_ms.saturating_mul(self.election_ticks as u64)
    }
}
