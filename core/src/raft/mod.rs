//! Raft consensus, sans-IO, in the shape of etcd-io/raft.
//!
//! The node never performs IO. The embedder drives a [`RawNode`] with `tick()`, `step(msg)` and
//! proposals, then repeatedly takes a [`Ready`], persists / sends / applies what it describes (in
//! the order documented on [`Ready`]), and calls `advance()`. Persisted state is read back
//! through the [`Storage`] trait ([`MemStorage`] in memory; an LMDB one lives in `qraft-io`).
//!
//! Implemented: elections with randomised timeouts, pre-vote, check-quorum (leader steps down
//! without a quorum; followers in a lease ignore vote requests), log replication with term-at-a-
//! time back-off, probe/replicate/snapshot flow control with a bounded in-flight window,
//! commit of current-term entries only, ReadIndex (Safe: one heartbeat round for a batch of
//! reads; LeaseBased behind check-quorum), snapshots for followers behind compaction, learners,
//! joint consensus (with auto-leave), leadership transfer, proposal forwarding.

mod confchange;
mod config;
pub mod describe;
mod errors;
mod leader;
mod log;
mod machine;
mod mem_storage;
mod node;
mod read_only;
mod ready;
mod step;
mod storage;
pub mod tracker;
mod unstable;

pub use confchange::{ConfChangeError, ConfChangeProposal};
pub use config::{Config, ConfigError};
pub use errors::RaftError;
pub use log::RaftLog;
pub use machine::{NONE, Raft, StateRole};
pub use mem_storage::MemStorage;
pub use node::{RawNode, SnapshotStatus, Status};
pub use read_only::{ReadOnlyOption, ReadState};
pub use ready::{Ready, SoftState};
pub use storage::{RaftState, Storage, StorageError, entry_size, fitting_prefix, limit_size};

#[cfg(test)]
mod storage_tests;
