//! Carrying out the raft half of a loop turn on LMDB: one write batch (one fsync) for the
//! turn's snapshot, entries and hard state; storing the state machine's periodic snapshots and
//! compacting the log. (`MsgSnap` data comes from the storage's `snapshot()` itself.)

use qraft_core::server::RaftWork;
use qraft_proto::raftpb::ConfState;

use crate::storage::{LmdbStorage, StorageError};

/// Persists the durable part of `work` in one transaction (one fsync): a snapshot from the
/// leader (log reset and its image), then the entries, then the hard state.
pub fn persist(storage: &LmdbStorage, work: &RaftWork) -> Result<(), StorageError> {
    if work.snapshot.is_none() && work.entries.is_empty() && work.hard_state.is_none() {
        return Ok(());
    }
    storage.write(|batch| {
        if let Some(snapshot) = &work.snapshot {
            batch.install_snapshot(snapshot)?;
        }
        batch.append(&work.entries)?;
        if let Some(hard_state) = &work.hard_state {
            batch.set_hard_state(hard_state)?;
        }
        Ok::<(), StorageError>(())
    })
}

/// Stores the state machine's snapshot as the raft snapshot and compacts the log behind it.
pub fn store_snapshot(
    storage: &LmdbStorage,
    index: u64,
    conf_state: &ConfState,
    compact_to: u64,
) -> Result<(), StorageError> {
    storage.write(|batch| {
        batch.create_snapshot(index, Some(conf_state.clone()))?;
        if compact_to > batch.raft_state().log_start.index {
            batch.compact(compact_to)?;
        }
        Ok::<(), StorageError>(())
    })?;
    tracing::info!(index, compact_to, "snapshot stored, log compacted");
    Ok(())
}
