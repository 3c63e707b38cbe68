//! `qraft_core::raft::Storage` (the read side raft uses) on LMDB.
//!
//! Answers come from the state published by the last committed [`super::WriteBatch`]: raft sees
//! what is durable, never a batch in progress.
//!
//! `initial_state()`'s configuration is the one the state machine recorded with the applied
//! index (meta `confState`, written in the same transaction as the conf change's effects), so a
//! restart resumes with the configuration in force at the applied index; before any conf
//! change was applied it is the raft state's (bootstrap or installed snapshot).
//!
//! `snapshot()` is the metadata of the current applied state (applied index, its term, the
//! applied configuration), without data: the data never travels inside a raft message. The
//! peer transport streams it when it sends the `MsgSnap`, from a read transaction of its own
//! (`LmdbStorage::export_snapshot`), and puts that transaction's own metadata — the same or
//! newer — in the message. The stored snapshot record only bounds compaction: compaction never
//! passes it, and it never passes the applied index, so the applied point always covers what a
//! lagging follower is missing.

use qraft_core::backend::meta::CONF_STATE;
use qraft_core::raft::{RaftState, Storage, StorageError as RaftError};
use qraft_proto::raftpb::{ConfState, Entry, Snapshot};

use super::codec::decode;
use super::error::StorageError;
use super::lmdb::LmdbStorage;
use super::tables::Table;

impl From<StorageError> for RaftError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Compacted => RaftError::Compacted,
            StorageError::Unavailable => RaftError::Unavailable,
            StorageError::SnapshotOutOfDate { .. } => RaftError::SnapshotOutOfDate,
            other => RaftError::Other(other.to_string()),
        }
    }
}

impl Storage for LmdbStorage {
    fn initial_state(&self) -> Result<RaftState, RaftError> {
        let state = self.raft_state();
        let applied_conf = {
            let read = self.read()?;
            match read.get(Table::Meta, CONF_STATE)? {
                Some(bytes) => Some(decode::<ConfState>("applied conf state", bytes)?),
                None => None,
            }
        };
        Ok(RaftState {
            hard_state: state.hard_state,
            conf_state: applied_conf.unwrap_or(state.conf_state),
        })
    }

    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>, RaftError> {
        Ok(LmdbStorage::entries(self, lo, hi, max_bytes)?)
    }

    fn term(&self, index: u64) -> Result<u64, RaftError> {
        Ok(LmdbStorage::term(self, index)?)
    }

    fn first_index(&self) -> Result<u64, RaftError> {
        Ok(LmdbStorage::first_index(self))
    }

    fn last_index(&self) -> Result<u64, RaftError> {
        Ok(LmdbStorage::last_index(self))
    }

    fn snapshot(&self, _request_index: u64) -> Result<Snapshot, RaftError> {
        let meta = self.applied_snapshot_metadata()?;
        if meta.index == 0 {
            return Ok(Snapshot::default());
        }
        Ok(Snapshot {
            data: Default::default(),
            metadata: Some(meta),
        })
    }
}
