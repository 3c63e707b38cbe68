//! Typed errors of the LMDB storage.
//!
//! Every record read back from disk is decoded with a checked decoder: a record that cannot be
//! decoded, or that contradicts the key it is stored under, is a [`StorageError::Corrupt`], never
//! a panic. LMDB's "map full" is reported as [`StorageError::NoSpace`], whose text is etcd's.

use std::path::PathBuf;

/// The message etcd gives when the backend quota is exhausted (`ErrNoSpace`); clients match on it.
pub const NO_SPACE_MESSAGE: &str = "mvcc: database space exceeded";

/// gRPC status code `ResourceExhausted`, the code etcd answers [`NO_SPACE_MESSAGE`] with.
pub const GRPC_RESOURCE_EXHAUSTED: i32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The memory map (and so the database) is full: the write was not applied. The member should
    /// raise the NOSPACE alarm; compaction + defrag, or a larger quota on restart, resolve it.
    #[error("{NO_SPACE_MESSAGE}")]
    NoSpace,

    /// LMDB refuses empty keys and keys longer than 511 bytes (its compile-time key limit). The
    /// transaction stays usable: nothing was written.
    #[error("invalid key: empty or longer than 511 bytes")]
    InvalidKey,

    /// A stored record could not be decoded or contradicts its key.
    #[error("storage corrupted: {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },

    /// Another process (or another handle in this process) holds the data directory.
    #[error("data directory {0} is locked by another qraft process")]
    Locked(PathBuf),

    /// Requested log entries lie before the first retained index (they were compacted away).
    #[error("requested index is unavailable due to compaction")]
    Compacted,

    /// Requested log entries lie after the last index (not yet appended).
    #[error("requested entry at index is unavailable")]
    Unavailable,

    /// An append would leave a hole in the log: the first new index is past `last_index + 1`.
    #[error("log gap: appending index {first_new} after last index {last_index}")]
    LogGap { first_new: u64, last_index: u64 },

    /// Entries handed to `append` are not consecutive.
    #[error("entries to append are not consecutive at index {0}")]
    NotConsecutive(u64),

    /// Compaction past the latest snapshot would leave entries no snapshot covers.
    #[error("cannot compact to {index}: latest snapshot is at {snapshot}")]
    CompactBeyondSnapshot { index: u64, snapshot: u64 },

    /// A snapshot older than the one already stored.
    #[error("snapshot at index {given} is older than the stored snapshot at {stored}")]
    SnapshotOutOfDate { given: u64, stored: u64 },

    /// A snapshot stream (export/import) is malformed: bad magic, truncated, checksum mismatch.
    #[error("invalid snapshot stream: {0}")]
    BadSnapshot(String),

    /// A defrag could not reopen the environment; the member must restart.
    #[error("storage closed after a failed defrag reopen; restart the member")]
    Closed,

    /// Maintenance (defrag, map growth) could not get exclusive access in time.
    #[error("storage busy: {0}")]
    Busy(&'static str),

    #[error("invalid storage configuration: {0}")]
    Config(String),

    #[error("lmdb: {0}")]
    Lmdb(heed::Error),

    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        StorageError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    /// The gRPC status code a client should see for this error.
    pub fn grpc_code(&self) -> i32 {
        match self {
            StorageError::NoSpace => GRPC_RESOURCE_EXHAUSTED,
            // Internal: nothing a client can fix.
            _ => 13,
        }
    }
}

impl From<heed::Error> for StorageError {
    fn from(err: heed::Error) -> Self {
        match err {
            heed::Error::Mdb(heed::MdbError::MapFull) => StorageError::NoSpace,
            heed::Error::Mdb(heed::MdbError::BadValSize) => StorageError::InvalidKey,
            heed::Error::Mdb(heed::MdbError::Corrupted)
            | heed::Error::Mdb(heed::MdbError::PageNotFound) => StorageError::corrupt("lmdb", err),
            heed::Error::Decoding(detail) => StorageError::corrupt("record", detail),
            heed::Error::Io(io) => StorageError::Io(io),
            other => StorageError::Lmdb(other),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
