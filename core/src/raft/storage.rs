//! The read side of the raft log's durable storage.
//!
//! Raft never writes through this trait: the node reports what must be persisted in a `Ready`, the
//! embedder persists it (for example `MemStorage::append` or an LMDB transaction) and then calls
//! `advance`. The node only reads back what was persisted, through [`Storage`].
//!
//! # Invariants every implementation must keep
//! - The log is the contiguous range `first_index()..=last_index()`. Everything below
//!   `first_index()` has been compacted; `term(first_index() - 1)` still answers (the term of the
//!   last compacted entry, which is the snapshot's term when compaction stopped at the snapshot).
//! - Compaction never passes the snapshot: `first_index() - 1 <= snapshot().metadata.index`, so a
//!   follower that needs compacted entries can always be sent the snapshot instead.
//! - An empty log is `last_index() == first_index() - 1`.
//! - `entries(lo, hi, max_bytes)` returns the entries `lo..hi` in order, contiguous, starting
//!   exactly at `lo`. It stops early only when `max_bytes` would be exceeded, but always returns at
//!   least one entry when `lo < hi` (so a single oversized entry still makes progress).
//! - Asking below `first_index()` gives [`StorageError::Compacted`]; asking above
//!   `last_index()` (for `entries`, `hi > last_index() + 1`) gives [`StorageError::Unavailable`].
//! - `initial_state()` returns the last persisted hard state and the configuration in force at
//!   the end of the persisted log's *applied-config* view, i.e. the conf state of the latest
//!   snapshot updated by any conf changes the embedder applied and persisted since.
//! - Methods are synchronous and must not be called concurrently with writes to the same storage
//!   by another thread unless the implementation makes that safe.

use prost::Message as _;
use qraft_proto::raftpb::{ConfState, Entry, HardState, Snapshot};

/// Why a storage read failed. Raft reacts to each variant differently, so they are typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The requested index is below `first_index()`: it was compacted into a snapshot.
    #[error("requested index is unavailable due to compaction")]
    Compacted,
    /// The requested index is above `last_index()`.
    #[error("requested entry at index is unavailable")]
    Unavailable,
    /// A snapshot cannot be produced right now (e.g. it is being built); raft retries later.
    #[error("snapshot is temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// Applying a snapshot older than the one already held.
    #[error("requested index is older than the existing snapshot")]
    SnapshotOutOfDate,
    /// Any other failure (IO, corruption); raft treats it as fatal for the current operation.
    #[error("storage error: {0}")]
    Other(String),
}

/// What a node restarts from: the persisted vote/term/commit and the membership in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RaftState {
    pub hard_state: HardState,
    pub conf_state: ConfState,
}

/// Read-only access to the persisted raft log. Object-safe, synchronous. See the module docs for
/// the invariants implementations must keep.
pub trait Storage {
    /// The persisted hard state and current configuration (used on start and restart).
    fn initial_state(&self) -> Result<RaftState, StorageError>;
    /// Entries in `[lo, hi)`, limited to about `max_bytes` (encoded size) but at least one entry.
    /// `u64::MAX` means no limit.
    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>, StorageError>;
    /// The term of entry `index`, for `first_index() - 1 <= index <= last_index()`.
    fn term(&self, index: u64) -> Result<u64, StorageError>;
    /// The index of the first entry still in the log (snapshot index + 1).
    fn first_index(&self) -> Result<u64, StorageError>;
    /// The index of the last entry in the log (the snapshot index when the log is empty).
    fn last_index(&self) -> Result<u64, StorageError>;
    /// The most recent snapshot. `request_index` is the index the leader needs the snapshot to
    /// cover at least (`next - 1` of the follower); an implementation that cannot produce such a
    /// snapshot now returns [`StorageError::SnapshotTemporarilyUnavailable`].
    fn snapshot(&self, request_index: u64) -> Result<Snapshot, StorageError>;
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn initial_state(&self) -> Result<RaftState, StorageError> {
        (**self).initial_state()
    }
    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        (**self).entries(lo, hi, max_bytes)
    }
    fn term(&self, index: u64) -> Result<u64, StorageError> {
        (**self).term(index)
    }
    fn first_index(&self) -> Result<u64, StorageError> {
        (**self).first_index()
    }
    fn last_index(&self) -> Result<u64, StorageError> {
        (**self).last_index()
    }
    fn snapshot(&self, request_index: u64) -> Result<Snapshot, StorageError> {
        (**self).snapshot(request_index)
    }
}

/// The size raft charges an entry against byte limits (its encoded protobuf length).
pub fn entry_size(entry: &Entry) -> u64 {
    entry.encoded_len() as u64
}

/// Truncates `entries` so their total size stays within `max_bytes`, keeping at least one entry.
pub fn limit_size(entries: &mut Vec<Entry>, max_bytes: u64) {
    if entries.len() <= 1 || max_bytes == u64::MAX {
        return;
    }
    let mut total = 0u64;
    let mut keep = 0;
    for entry in entries.iter() {
        total = total.saturating_add(entry_size(entry));
        if keep > 0 && total > max_bytes {
            break;
        }
        keep += 1;
    }
    entries.truncate(keep);
}

/// How many of `entries` fit in `max_bytes` (at least one if any), without copying them.
pub fn fitting_prefix(entries: &[Entry], max_bytes: u64) -> usize {
    if max_bytes == u64::MAX {
        return entries.len();
    }
    let mut total = 0u64;
    for (i, entry) in entries.iter().enumerate() {
        total = total.saturating_add(entry_size(entry));
        if i > 0 && total > max_bytes {
            return i;
        }
    }
    entries.len()
}
