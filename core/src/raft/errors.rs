//! Errors returned by the node's API.

use super::confchange::ConfChangeError;
use super::config::ConfigError;
use super::storage::StorageError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    /// The proposal was not accepted. `leader_hint` names the leader the client should retry
    /// with, when known (0 = unknown).
    #[error("raft proposal dropped (leader hint: {leader_hint})")]
    ProposalDropped { leader_hint: u64 },
    #[error("conf change refused: {0}")]
    ConfChangeRefused(#[from] ConfChangeError),
    #[error("raft: cannot step raft local message")]
    StepLocalMsg,
    #[error("raft: cannot step as peer not found")]
    StepPeerNotFound,
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}
