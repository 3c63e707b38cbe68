//! `HashKV`: a checksum of the key space's history up to a revision, so operators (and tests)
//! can tell whether members that applied the same log hold the same data.
//!
//! The hash covers every stored revision row (`Table::Key`: encoded revision → `KeyValue`)
//! with main revision `<= rev`. Compaction removes rows in the same write transaction that
//! records it, so members at the same applied index hash the same rows. The value is a CRC-32
//! (IEEE) of qraft's own row encoding: comparable between qraft members, not with etcd's.

use super::revision::Revision;
use super::store::MvccStore;
use crate::backend::{ReadTxn, Table, Visit};
use crate::error::{Error, Result};

/// What `HashKV` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvHash {
    pub hash: u32,
    /// The store's compaction point when hashed (-1 if never compacted).
    pub compact_revision: i64,
    /// The revision the hash covers up to (the current revision when 0 was asked for).
    pub hash_revision: i64,
}

impl MvccStore {
    /// Hashes the history up to `rev` (`rev <= 0`: the current revision). Errors as a read
    /// at `rev`: below the compaction point → [`Error::Compacted`], past the current revision →
    /// [`Error::FutureRevision`].
    pub fn hash_kv<T: ReadTxn + ?Sized>(&self, txn: &T, rev: i64) -> Result<KvHash> {
        let hash_revision = if rev <= 0 { self.current_revision } else { rev };
        if hash_revision > self.current_revision {
            return Err(Error::FutureRevision);
        }
        if rev > 0 && rev < self.compact_revision {
            return Err(Error::Compacted);
        }
        let end = Revision::start_key(hash_revision + 1);
        let mut hasher = crc32fast::Hasher::new();
        txn.scan(Table::Key, &[], Some(&end), &mut |rev_key, value| {
            hasher.update(rev_key);
            hasher.update(value);
            Visit::Continue(())
        })?;
        Ok(KvHash {
            hash: hasher.finalize(),
            compact_revision: self.compact_revision,
            hash_revision,
        })
    }
}
