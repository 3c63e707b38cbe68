//! The batch of applied entries the loop keeps open across turns, and the state machine's
//! backend on top of it: the one way the loop reads or writes the applied state.
//!
//! Applying a committed entry answers its client at once (the entry is durable in the raft
//! journal of a majority; a restart replays it). Committing the LMDB transaction that holds the
//! applied state costs a device flush of scattered pages — about 0.5 ms here, longer than the
//! journal's — and a loop blocked in it cannot take the next request. So the loop keeps the
//! transaction open and goes on applying into it, as etcd's backend batches its commits, and
//! commits it:
//!
//! - once it is [`HOLD_LIMIT`] old, at the next turn or when the loop is idle that long;
//! - before any write outside it: snapshots, configurations, the loop's end;
//! - when the core asks for it (`Backend::commit_batched`): before it lets the shell serve a
//!   call from the committed LMDB file on another thread (a client's snapshot). The core
//!   decides which calls those are; the shell only carries it out.
//!
//! Reads do not commit it. The core reaches the applied state only through its backend, and
//! the backend the loop gives it is [`LoopBackend`]: a read (`Backend::read_txn`) goes through
//! the open batch — an LMDB write transaction sees its own writes — or, when none is open,
//! through a read transaction of the last commit, which then holds everything applied. A write
//! (`Backend::write_txn`) goes into the open batch, and its `commit` leaves it open, to commit
//! on the schedule above (etcd's backend reads through its write buffer the same way). So no
//! read can miss an applied entry, whatever the shell does: the rule is the type, not a
//! convention. A read of the applied state while the loop holds the batch for writing is an
//! error, never a stale answer.
//!
//! Invariants: the batch lives on the loop's thread only (an LMDB write transaction belongs to
//! the thread that began it; `Rc` and `RefCell` keep it there); while it is open it holds the
//! writer lock, so the journal takes the turn's raft records through it
//! ([`HeldBatch::journal_append`]) and writers on other threads (defrag) wait at most
//! [`HOLD_LIMIT`] and a turn. Readers on other threads see the last commit. Its size is bounded
//! by what the loop applies in [`HOLD_LIMIT`], whatever the reads.
//!
//! All of this is over any [`DriverStorage`] (its batch is `DriverStorage::Batch`); the LMDB
//! figures above are LMDB's, the implementation the member runs on.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qraft_core::backend::{self, Backend, BackendError, Table, Visit};
use qraft_proto::raftpb::{Entry, HardState};

use super::metrics::record_commit;
use super::storage_contract::{DriverBatch, DriverStorage};
use crate::metrics::Metrics;
use crate::storage::StorageError;

/// How long applied entries may wait in an open transaction. A power loss is not the limit
/// (the journal covers it); the limit bounds how long other threads' writers wait and how
/// much a commit carries.
pub(super) const HOLD_LIMIT: Duration = Duration::from_millis(10);

/// The open batch, if any, and when it began.
struct Open<'s, S: DriverStorage + 's> {
    batch: S::Batch<'s>,
    since: Instant,
    /// A write handle was dropped without `commit` after it wrote: the batch holds a part of
    /// a change and must never commit.
    abandoned: bool,
}

pub(super) struct HeldBatch<'s, S: DriverStorage> {
    storage: &'s S,
    open: RefCell<Option<Open<'s, S>>>,
    /// Where each commit's duration goes (etcd's backend commit histogram).
    metrics: Arc<Metrics>,
    /// A commit failed: what the batch held is lost from LMDB (the journal still has it), so
    /// nothing may read or write the applied state any more — every later use is an error and
    /// the loop stops; a restart replays the entries.
    failed: Cell<bool>,
}

/// The state machine's backend on the loop: LMDB seen through the held batch (see the module
/// documentation). Clones share the batch.
pub(super) struct LoopBackend<'s, S: DriverStorage>(Rc<HeldBatch<'s, S>>);

impl<S: DriverStorage> Clone for LoopBackend<'_, S> {
    fn clone(&self) -> Self {
        LoopBackend(Rc::clone(&self.0))
    }
}

impl<'s, S: DriverStorage> LoopBackend<'s, S> {
    pub fn new(storage: &'s S, metrics: Arc<Metrics>) -> Self {
        LoopBackend(Rc::new(HeldBatch {
            storage,
            open: RefCell::new(None),
            metrics,
            failed: Cell::new(false),
        }))
    }

    pub fn held(&self) -> &HeldBatch<'s, S> {
        &self.0
    }
}

fn busy() -> StorageError {
    StorageError::Config("the held batch is in use (a read or write of it is still open)".into())
}

fn failed() -> StorageError {
    StorageError::Config("an earlier commit of the applied state failed".into())
}

impl<'s, S: DriverStorage> HeldBatch<'s, S> {
    /// The applied state as of now: through the open batch, or the last commit if none is open.
    pub fn view(&self) -> Result<AppliedView<'_, 's, S>, StorageError> {
        self.check()?;
        let open = self.open.try_borrow().map_err(|_| busy())?;
        match Ref::filter_map(open, |open| open.as_ref().map(|open| &open.batch)) {
            Ok(batch) => Ok(AppliedView::Held(batch)),
            Err(_) => Ok(AppliedView::Committed(self.storage.read()?)),
        }
    }

    /// The open batch to write into, begun if none is open. Its `commit` keeps it open.
    pub fn write(&self) -> Result<HeldWrite<'_, 's, S>, StorageError> {
        self.check()?;
        let mut open = self.open.try_borrow_mut().map_err(|_| busy())?;
        if open.is_none() {
            *open = Some(Open {
                batch: self.storage.begin_write()?,
                since: Instant::now(),
                abandoned: false,
            });
        }
        Ok(HeldWrite {
            open: RefMut::map(open, |open| open.as_mut().expect("opened above")),
            wrote: false,
            committed: false,
        })
    }

    /// When the open batch is due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        let open = self.open.try_borrow().ok()?;
        open.as_ref().map(|open| open.since + HOLD_LIMIT)
    }

    pub fn is_due(&self) -> bool {
        self.deadline().is_some_and(|due| Instant::now() >= due)
    }

    fn check(&self) -> Result<(), StorageError> {
        if self.failed.get() {
            return Err(failed());
        }
        Ok(())
    }

    /// Commits the open batch if it is due.
    pub fn commit_if_due(&self) -> Result<(), StorageError> {
        if self.is_due() {
            self.commit()?;
        }
        Ok(())
    }

    /// Commits the open batch, if any: data pages synced, the meta page not (a power loss may
    /// undo it; the journal replays what it held).
    pub fn commit(&self) -> Result<(), StorageError> {
        self.commit_with(false)
    }

    /// Commits the open batch, if any, durably (the meta page synced too): for a batch that
    /// holds what the journal cannot replay (a snapshot turn's raft state).
    pub fn commit_durably(&self) -> Result<(), StorageError> {
        self.commit_with(true)
    }

    fn commit_with(&self, durably: bool) -> Result<(), StorageError> {
        self.check()?;
        let open = self.open.try_borrow_mut().map_err(|_| busy())?.take();
        let Some(open) = open else {
            return Ok(());
        };
        if open.abandoned {
            return Err(StorageError::Config(
                "a write to the applied state was abandoned half done".into(),
            ));
        }
        let start = Instant::now();
        let committed = if durably {
            open.batch.commit_durably()
        } else {
            open.batch.commit_unsynced()
        };
        if let Err(err) = committed {
            self.failed.set(true);
            return Err(err);
        }
        record_commit(&self.metrics, start.elapsed(), durably, true);
        Ok(())
    }

    /// Drops the open batch uncommitted (the loop stops on an error; the journal holds what it
    /// applied), so that the writer lock is free for the final fold of the journal.
    pub fn abort(&self) {
        if let Ok(mut open) = self.open.try_borrow_mut() {
            open.take();
        }
    }

    /// The turn's raft entries and hard state to the journal, through the open batch (which
    /// holds the writer lock) if there is one.
    pub fn journal_append(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<(), StorageError> {
        let mut open = self.open.try_borrow_mut().map_err(|_| busy())?;
        match open.as_mut() {
            Some(open) => open.batch.journal_append(entries, hard_state, sync),
            None => self.storage.journal_append(entries, hard_state, sync),
        }
    }
}

/// A read of the applied state (see [`HeldBatch::view`]). It lives on the stack for one read:
/// boxing the larger variant would cost an allocation per read for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum AppliedView<'a, 's, S: DriverStorage> {
    Held(Ref<'a, S::Batch<'s>>),
    Committed(S::Read),
}

/// The open batch, borrowed for writing (see [`HeldBatch::write`]). Dropped without
/// [`backend::WriteTxn::commit`] after writing, it leaves the batch unable to commit: the
/// loop then stops, and a restart replays the entries from the journal.
pub(super) struct HeldWrite<'a, 's, S: DriverStorage> {
    open: RefMut<'a, Open<'s, S>>,
    wrote: bool,
    committed: bool,
}

impl<'s, S: DriverStorage> HeldWrite<'_, 's, S> {
    /// The batch itself, for the loop's own writes (raft state in a snapshot turn,
    /// configurations) next to the applied entries.
    pub fn batch(&mut self) -> &mut S::Batch<'s> {
        self.wrote = true;
        &mut self.open.batch
    }

    /// Done writing: the batch stays open (see [`HeldBatch`]).
    pub fn done(mut self) {
        self.committed = true;
    }
}

impl<S: DriverStorage> Drop for HeldWrite<'_, '_, S> {
    fn drop(&mut self) {
        if self.wrote && !self.committed {
            self.open.abandoned = true;
        }
    }
}

impl<'s, S: DriverStorage> Backend for LoopBackend<'s, S> {
    type ReadTxn<'a>
        = AppliedView<'a, 's, S>
    where
        Self: 'a;
    type WriteTxn<'a>
        = HeldWrite<'a, 's, S>
    where
        Self: 'a;

    fn read_txn(&self) -> Result<AppliedView<'_, 's, S>, BackendError> {
        Ok(self.0.view()?)
    }

    fn write_txn(&self) -> Result<HeldWrite<'_, 's, S>, BackendError> {
        Ok(self.0.write()?)
    }

    /// The sizes of the last commit (the held batch adds at most [`HOLD_LIMIT`] of writes),
    /// against `--quota-backend-bytes`.
    fn space(&self) -> Result<Option<backend::BackendSpace>, BackendError> {
        let size = self.0.storage.size_info()?;
        Ok(Some(backend::BackendSpace {
            file_bytes: size.file_bytes,
            in_use_bytes: size.in_use_bytes,
            quota_bytes: size.quota_bytes,
        }))
    }

    /// The core's "serve this from the committed file" (a client's snapshot): the held batch
    /// commits now instead of on its schedule.
    fn commit_batched(&self) -> Result<(), BackendError> {
        Ok(self.0.commit()?)
    }
}

impl<S: DriverStorage> backend::ReadTxn for AppliedView<'_, '_, S> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, BackendError> {
        match self {
            AppliedView::Held(batch) => backend::ReadTxn::get(&**batch, table, key),
            AppliedView::Committed(txn) => backend::ReadTxn::get(txn, table, key),
        }
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Visit,
    ) -> Result<(), BackendError> {
        match self {
            AppliedView::Held(batch) => backend::ReadTxn::scan(&**batch, table, start, end, visit),
            AppliedView::Committed(txn) => backend::ReadTxn::scan(txn, table, start, end, visit),
        }
    }
}

impl<S: DriverStorage> backend::ReadTxn for HeldWrite<'_, '_, S> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, BackendError> {
        backend::ReadTxn::get(&self.open.batch, table, key)
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Visit,
    ) -> Result<(), BackendError> {
        backend::ReadTxn::scan(&self.open.batch, table, start, end, visit)
    }
}

impl<S: DriverStorage> backend::WriteTxn for HeldWrite<'_, '_, S> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), BackendError> {
        backend::WriteTxn::put(self.batch(), table, key, value)
    }

    fn put_at_end(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), BackendError> {
        backend::WriteTxn::put_at_end(self.batch(), table, key, value)
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, BackendError> {
        backend::WriteTxn::delete(self.batch(), table, key)
    }

    /// Makes the writes visible to every later read of the applied state (they go through the
    /// batch) and leaves the LMDB commit to the loop's schedule: durability comes from the
    /// journal, which replays the entries whose effects a crash drops.
    fn commit(self) -> Result<(), BackendError> {
        self.done();
        Ok(())
    }
}
