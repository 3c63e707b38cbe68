//! Carrying out the raft half of a loop turn on storage: what goes to disk, a snapshot turn's
//! writes into its batch (entries and hard state otherwise go to the journal, see
//! `LmdbStorage::journal_append`), the configurations applied entries produced, storing the
//! state machine's periodic snapshots and compacting the log. (`MsgSnap` data is streamed by the
//! peer transport, and received by it, off the loop.)

use qraft_core::server::{Output, RaftWork};
use qraft_proto::raftpb::ConfState;

use crate::storage::{LmdbStorage, StorageError, WriteBatch};

/// Whether `work` has anything for the disk.
pub fn needs_write(work: &RaftWork) -> bool {
    work.snapshot.is_some() || !work.entries.is_empty() || work.hard_state.is_some()
}

/// Makes the snapshot from the leader in `work`, already received by the transport, the
/// member's state (see `LmdbStorage::install_received_snapshot`): before any batch, since it
/// replaces the environment.
pub fn install_snapshot(storage: &LmdbStorage, work: &RaftWork) -> Result<(), StorageError> {
    let Some(snapshot) = &work.snapshot else {
        return Ok(());
    };
    let meta = snapshot
        .metadata
        .as_ref()
        .ok_or_else(|| StorageError::BadSnapshot("snapshot without metadata".into()))?;
    let start = std::time::Instant::now();
    storage.install_received_snapshot(meta, work.hard_state.as_ref())?;
    tracing::info!(
        index = meta.index,
        took_ms = start.elapsed().as_millis() as u64,
        "swapped in the received snapshot"
    );
    Ok(())
}

/// Writes the rest of a snapshot turn into `batch`: the entries, then the hard state.
pub fn persist_into(batch: &mut WriteBatch<'_>, work: &RaftWork) -> Result<(), StorageError> {
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
