//! Carrying out the raft half of a loop turn on storage: what goes to disk, a snapshot turn's
//! writes into its batch (entries and hard state otherwise go to the journal, see
//! `LmdbStorage::journal_append`), the configurations applied entries produced, storing the
//! state machine's periodic snapshots and compacting the log. (`MsgSnap` data comes from the
//! storage's `snapshot()` itself.)

use qraft_core::server::{Output, RaftWork};
use qraft_proto::raftpb::ConfState;

use crate::storage::{LmdbStorage, StorageError, WriteBatch};

/// Whether `work` has anything for the disk.
pub fn needs_write(work: &RaftWork) -> bool {
    work.snapshot.is_some() || !work.entries.is_empty() || work.hard_state.is_some()
}

/// Writes the durable part of `work` into `batch`: a snapshot from the leader (log reset and
/// its image), then the entries, then the hard state.
pub fn persist_into(batch: &mut WriteBatch<'_>, work: &RaftWork) -> Result<(), StorageError> {
    if let Some(snapshot) = &work.snapshot {
        batch.install_snapshot(snapshot)?;
    }
    batch.append(&work.entries)?;
    if let Some(hard_state) = &work.hard_state {
        batch.set_hard_state(hard_state)?;
    }
    Ok(())
}

/// Records in `batch` the configuration each applied conf change left in force (a restart
/// resumes with the last one); returns whether there was any.
pub fn store_conf_states(
    batch: &mut WriteBatch<'_>,
    outputs: &[Output],
) -> Result<bool, StorageError> {
    let mut changed = false;
    for output in outputs {
        if let Output::ConfState(conf_state) = output {
            batch.set_conf_state(conf_state)?;
            changed = true;
        }
    }
    Ok(changed)
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
