//! Carrying out a loop turn's writes ([`Loop::write_turn`]): what goes to disk, a snapshot
//! turn's writes into its batch (entries and hard state otherwise go to the journal, see
//! `DriverStorage::journal_append`), applying the committed entries into the held batch, the
//! configurations applied entries produced, storing the state machine's periodic snapshots and
//! compacting the log. (`MsgSnap` data is streamed by the peer transport, and received by it,
//! off the loop.)

use std::time::Instant;

use qraft_core::server::{Output, RaftWork};
use qraft_proto::raftpb::ConfState;

use super::handle::DriverError;
use super::outputs::release_responses;
use super::run::Loop;
use super::storage_contract::{DriverBatch, DriverStorage};
use crate::storage::StorageError;

impl<S: DriverStorage> Loop<'_, S> {
    /// The turn's writes. Raft's part — entries and hard state — goes to the journal (one
    /// `fdatasync`), after which the acknowledgements (`persisted_messages`) leave at once. The
    /// committed entries the core applies go into the batch the loop keeps open across turns
    /// (see [`super::held`]) with the applied index and the journal's tail; the answers to them
    /// leave at once. Each answers a committed entry, already durable in the raft log of a
    /// majority (the leader's own journal included: it counts its own acknowledgement only
    /// after the turn that appended the entry), and a crash before the batch commits replays
    /// the entry from the journal to the same result; reads see it through the batch. A
    /// snapshot from the leader (already received by the transport) is swapped in first
    /// ([`install_snapshot`]), then the turn's entries and hard state are committed durably in a
    /// batch (the journal untouched); a new configuration is committed at once. Returns the
    /// outputs produced so far — responses among them — and whether a configuration was stored.
    pub(super) fn write_turn(
        &mut self,
        work: &mut RaftWork,
    ) -> Result<(Vec<Output>, bool), DriverError> {
        let backend = self.backend.clone();
        let held = backend.held();
        let applies = self.server.has_entries_to_apply();
        let snapshot = work.snapshot.is_some();
        if !snapshot && needs_write(work) {
            let start = Instant::now();
            held.journal_append(&work.entries, work.hard_state.as_ref(), work.must_sync)?;
            if work.must_sync {
                self.metrics.committed(start.elapsed(), true, false);
            }
            self.transport
                .send(std::mem::take(&mut work.persisted_messages));
        }
        if !snapshot && !applies {
            return Ok((self.server.take_outputs(), false));
        }
        if snapshot {
            held.commit()?;
            install_snapshot(self.storage, work)?;
        }
        let mut write = held.write()?;
        if snapshot {
            persist_into(write.batch(), work)?;
        }
        let apply_start = Instant::now();
        self.server.advance_in(&mut write)?;
        self.metrics.applied(apply_start.elapsed());
        let mut outputs = self.server.take_outputs();
        let stored_conf = store_conf_states(write.batch(), &outputs)?;
        write.done();
        // The configurations are stored above (`Output::Removed`, if one leaves this member
        // out, stays for `deliver`).
        outputs.retain(|output| !matches!(output, Output::ConfState(_)));
        release_responses(&mut self.waiting, &mut outputs);
        if snapshot {
            held.commit_durably()?;
        } else if stored_conf {
            held.commit()?;
        } else {
            held.commit_if_due()?;
        }
        Ok((outputs, stored_conf))
    }
}

/// Whether `work` has anything for the disk.
pub fn needs_write(work: &RaftWork) -> bool {
    work.snapshot.is_some() || !work.entries.is_empty() || work.hard_state.is_some()
}

/// Makes the snapshot from the leader in `work`, already received by the transport, the
/// member's state (see `DriverStorage::install_received_snapshot`): before any batch, since it
/// replaces the store.
pub fn install_snapshot(storage: &impl DriverStorage, work: &RaftWork) -> Result<(), StorageError> {
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
pub fn persist_into(batch: &mut impl DriverBatch, work: &RaftWork) -> Result<(), StorageError> {
    batch.append_entries(&work.entries)?;
    if let Some(hard_state) = &work.hard_state {
        batch.set_hard_state(hard_state)?;
    }
    Ok(())
}

/// Records in `batch` the configuration each applied conf change left in force (a restart
/// resumes with the last one); returns whether there was any.
pub fn store_conf_states(
    batch: &mut impl DriverBatch,
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
    storage: &impl DriverStorage,
    index: u64,
    conf_state: &ConfState,
    compact_to: u64,
) -> Result<(), StorageError> {
    storage.write(|batch| {
        batch.create_snapshot(index, Some(conf_state.clone()))?;
        if compact_to > batch.log_start_index() {
            batch.compact(compact_to)?;
        }
        Ok::<(), StorageError>(())
    })?;
    tracing::info!(index, compact_to, "snapshot stored, log compacted");
    Ok(())
}
