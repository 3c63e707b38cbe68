//! Raft consensus, sans-IO, in the shape of etcd-io/raft.
//!
//! The node never performs IO. The embedder drives it with `tick()`, `step(msg)` and proposals,
//! then repeatedly takes a `Ready`, persists / sends / applies what it describes, and calls
//! `advance()`. Persisted state is read back through the [`Storage`] trait.

mod mem_storage;
mod storage;

pub use mem_storage::MemStorage;
pub use storage::{RaftState, Storage, StorageError, entry_size, limit_size};

#[cfg(test)]
mod storage_tests;
