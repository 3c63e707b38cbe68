//! The batch of applied entries the loop keeps open across turns.
//!
//! Applying a committed entry answers its client at once (the entry is durable in the raft
//! journal of a majority; a restart replays it). Committing the LMDB transaction that holds the
//! applied state costs a device flush of scattered pages — about 0.5 ms here, longer than the
//! journal's — and a loop blocked in it cannot take the next request. So the loop keeps the
//! transaction open and goes on applying into it, as etcd's backend batches its commits, and
//! commits it:
//!
//! - once it is [`HOLD_LIMIT`] old, at the next turn or when the loop is idle that long;
//! - before anything reads the applied state outside it, on this thread: reads and hashes the
//!   core serves (`run::reads_applied_state`, `Server::advance_uses_backend`), watchers catching
//!   up, ticks (the corruption check hashes the key space);
//! - before any other write: snapshots, configurations, schema migrations, the loop's end.
//!
//! Invariants: the batch lives on the loop's thread only (an LMDB write transaction belongs to
//! the thread that began it); while it is open it holds the writer lock, so the journal takes
//! the turn's raft records through it ([`HeldBatch::journal_append`]) and writers on other
//! threads (defrag) wait at most [`HOLD_LIMIT`] and a turn. Readers on other threads see the
//! last commit, as before a turn's commit.

use std::time::{Duration, Instant};

use qraft_proto::raftpb::{Entry, HardState};

use super::metrics::LoopMetrics;
use crate::storage::{LmdbStorage, StorageError, WriteBatch};

/// How long applied entries may wait in an open transaction. A power loss is not the limit
/// (the journal covers it); the limit bounds how long other threads' writers wait and how
/// much a commit carries.
pub(super) const HOLD_LIMIT: Duration = Duration::from_millis(10);

pub(super) struct HeldBatch<'s> {
    storage: &'s LmdbStorage,
    open: Option<(WriteBatch<'s>, Instant)>,
}

impl<'s> HeldBatch<'s> {
    pub fn new(storage: &'s LmdbStorage) -> Self {
        Self {
            storage,
            open: None,
        }
    }

    /// The open batch to apply into, or a new one.
    pub fn take_or_begin(&mut self) -> Result<(WriteBatch<'s>, Instant), StorageError> {
        match self.open.take() {
            Some(open) => Ok(open),
            None => Ok((self.storage.begin_write()?, Instant::now())),
        }
    }

    /// Keeps `batch` (begun at `since`) open, or commits it if it is due.
    pub fn keep(
        &mut self,
        batch: WriteBatch<'s>,
        since: Instant,
        metrics: &LoopMetrics,
    ) -> Result<(), StorageError> {
        self.open = Some((batch, since));
        if since.elapsed() >= HOLD_LIMIT {
            self.commit(metrics)?;
        }
        Ok(())
    }

    /// When the open batch is due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.open.as_ref().map(|(_, since)| *since + HOLD_LIMIT)
    }

    pub fn is_due(&self) -> bool {
        self.deadline().is_some_and(|due| Instant::now() >= due)
    }

    /// Commits the open batch, if any: data pages synced, the meta page not (a power loss may
    /// undo it; the journal replays what it held).
    pub fn commit(&mut self, metrics: &LoopMetrics) -> Result<(), StorageError> {
        if let Some((batch, _)) = self.open.take() {
            let start = Instant::now();
            batch.commit_unsynced_meta()?;
            metrics.committed(start.elapsed(), false, true);
        }
        Ok(())
    }

    /// The turn's raft entries and hard state to the journal, through the open batch (which
    /// holds the writer lock) if there is one.
    pub fn journal_append(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<(), StorageError> {
        match self.open.as_mut() {
            Some((batch, _)) => batch.journal_append(entries, hard_state, sync),
            None => self.storage.journal_append(entries, hard_state, sync),
        }
    }
}
