//! Node configuration.

use super::read_only::ReadOnlyOption;

/// Settings of one raft node. Defaults follow etcd: election 10 ticks, heartbeat 1 tick.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's id (non-zero).
    pub id: u64,
    /// Ticks without hearing from a leader before a follower campaigns; the actual timeout is
    /// randomised in `[election_tick, 2 * election_tick)`.
    pub election_tick: usize,
    /// Ticks between leader heartbeats. Must be less than `election_tick`.
    pub heartbeat_tick: usize,
    /// The highest index the application has already applied (restart without re-applying).
    pub applied: u64,
    /// Byte limit of the entries in one `MsgApp` (at least one entry is always sent).
    pub max_size_per_msg: u64,
    /// Byte limit of the committed entries handed out in one `Ready`.
    pub max_committed_size_per_ready: u64,
    /// Maximum number of unacknowledged `MsgApp`s per follower in the replicate state.
    pub max_inflight_msgs: usize,
    /// Maximum unacknowledged bytes per follower (`u64::MAX` for no limit).
    pub max_inflight_bytes: u64,
    /// Limit of the uncommitted entries' payload on the leader; proposals beyond it are dropped.
    pub max_uncommitted_entries_size: u64,
    /// A leader steps down when it has not heard from a quorum within an election timeout, and
    /// followers that heard from a leader within the timeout ignore vote requests.
    pub check_quorum: bool,
    /// Run a pre-vote round before bumping the term, so a partitioned node rejoining cannot
    /// disrupt a working leader.
    pub pre_vote: bool,
    pub read_only_option: ReadOnlyOption,
    /// Followers drop proposals instead of forwarding them to the leader.
    pub disable_proposal_forwarding: bool,
    /// Seed of the node's RNG (election timeout randomisation).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            id: 0,
            election_tick: 10,
            heartbeat_tick: 1,
            applied: 0,
            max_size_per_msg: 1024 * 1024,
            max_committed_size_per_ready: u64::MAX,
            max_inflight_msgs: 256,
            max_inflight_bytes: u64::MAX,
            max_uncommitted_entries_size: u64::MAX,
            check_quorum: false,
            pre_vote: false,
            read_only_option: ReadOnlyOption::Safe,
            disable_proposal_forwarding: false,
            seed: 0,
        }
    }
}

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot use none as id")]
    ZeroId,
    #[error("heartbeat tick must be greater than 0")]
    ZeroHeartbeat,
    #[error("election tick must be greater than heartbeat tick")]
    ElectionNotAboveHeartbeat,
    #[error("max inflight messages must be greater than 0")]
    ZeroInflight,
    #[error("check_quorum must be enabled when read_only_option is LeaseBased")]
    LeaseWithoutCheckQuorum,
}

impl Config {
    pub fn new(id: u64) -> Self {
        Self {
            id,
            seed: id,
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        if self.heartbeat_tick == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::ElectionNotAboveHeartbeat);
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && !self.check_quorum {
            return Err(ConfigError::LeaseWithoutCheckQuorum);
        }
        Ok(())
    }
}
