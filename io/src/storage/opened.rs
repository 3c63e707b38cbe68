//! The open LMDB environment and its database handles, replaceable while the storage is shared.
//!
//! Online defragmentation must close the environment and open the rewritten file in its place
//! while clones of the storage live on in the core, the driver and every client handle. heed's
//! write transactions borrow the environment (`RwTxn<'env>`), so the environment cannot sit
//! behind a lock guard that a [`super::WriteBatch`] would have to own next to its transaction.
//! Instead it sits in a cell guarded by the two locks every user of it already holds:
//!
//! * the **writer lock** (one write batch at a time), held by each write batch for its whole
//!   life and by map growth;
//! * a **reader slot** (the count of live read transactions), held by each read transaction
//!   for its whole life.
//!
//! Invariant: a reference to the [`Opened`] is only ever derived from a held writer guard or a
//! held reader slot and does not outlive it; [`OpenedCell::replace`] runs only with the writer
//! guard held *and* the reader count locked at zero, so no reference exists while it writes.

use std::cell::UnsafeCell;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use heed::{Env, WithoutTls};

use super::tables::Tables;

pub(crate) struct Opened {
    pub env: Env<WithoutTls>,
    pub tables: Tables,
}

pub(crate) struct OpenedCell {
    /// `None` only after a failed reopen: the storage is then unusable until restart.
    opened: UnsafeCell<Option<Opened>>,
    /// One write batch at a time, so each starts from the last published raft state.
    writer: Mutex<()>,
    /// Live read transactions; the map may only be resized, and the environment replaced,
    /// while this is zero.
    readers: Mutex<usize>,
    no_readers: Condvar,
}

// SAFETY: `Opened` is Send + Sync (heed's `Env<WithoutTls>` and database handles are). The cell
// is only written by `replace`, which requires the writer guard and the reader count locked at
// zero; every shared reference handed out is tied to a writer guard or a reader slot (see the
// module invariant), so a write never overlaps a read of the cell.
#[allow(unsafe_code)]
unsafe impl Sync for OpenedCell {}

/// The held writer lock of one [`OpenedCell`].
pub(crate) struct WriterGuard<'a> {
    _guard: MutexGuard<'a, ()>,
    cell: &'a OpenedCell,
}

impl OpenedCell {
    pub fn new(opened: Opened) -> Self {
        OpenedCell {
            opened: UnsafeCell::new(Some(opened)),
            writer: Mutex::new(()),
            readers: Mutex::new(0),
            no_readers: Condvar::new(),
        }
    }

    pub fn lock_writer(&self) -> WriterGuard<'_> {
        WriterGuard {
            _guard: lock(&self.writer),
            cell: self,
        }
    }

    pub fn try_lock_writer(&self) -> Option<WriterGuard<'_>> {
        let guard = match self.writer.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(WriterGuard {
            _guard: guard,
            cell: self,
        })
    }

    /// The environment, for the holder of `writer`. The caller keeps the guard alive as long as
    /// the returned reference (a `WriteBatch` owns both; its transaction drops first).
    pub fn for_writer<'a>(&'a self, writer: &WriterGuard<'a>) -> Option<&'a Opened> {
        if !std::ptr::eq(writer.cell, self) {
            return None;
        }
        // SAFETY: the writer guard excludes `replace` (see the module invariant).
        #[allow(unsafe_code)]
        unsafe {
            (*self.opened.get()).as_ref()
        }
    }

    /// Counts a new reader; the count excludes `replace` until [`Self::release_reader`].
    pub fn acquire_reader(&self) {
        *lock(&self.readers) += 1;
    }

    pub fn release_reader(&self) {
        let mut readers = lock(&self.readers);
        *readers = readers.saturating_sub(1);
        if *readers == 0 {
            self.no_readers.notify_all();
        }
    }

    /// The environment, for the holder of a reader slot (counted by [`Self::acquire_reader`]).
    pub fn for_reader(&self) -> Option<&Opened> {
        // SAFETY: the caller's counted reader slot excludes `replace` (module invariant).
        #[allow(unsafe_code)]
        unsafe {
            (*self.opened.get()).as_ref()
        }
    }

    /// Runs `f` with the reader count locked at zero, or `None` if readers are still live after
    /// `wait`. Map growth and environment replacement both need this.
    pub fn with_no_readers<R>(
        &self,
        wait: Duration,
        f: impl FnOnce(&mut ExclusiveAccess<'_>) -> R,
    ) -> Option<R> {
        let deadline = Instant::now() + wait;
        let mut readers = lock(&self.readers);
        while *readers != 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            readers = match self.no_readers.wait_timeout(readers, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        let out = f(&mut ExclusiveAccess { cell: self });
        drop(readers);
        Some(out)
    }
}

/// Proof that no reader is live and none can start (the count is locked at zero). Only
/// [`OpenedCell::with_no_readers`] makes one, and callers hold the writer guard too.
pub(crate) struct ExclusiveAccess<'a> {
    cell: &'a OpenedCell,
}

impl ExclusiveAccess<'_> {
    /// Takes the environment out (to close it); the cell is empty until [`Self::put`].
    ///
    /// The caller must not use a reference it got from [`OpenedCell::for_writer`] after this.
    pub fn take(&mut self, writer: &WriterGuard<'_>) -> Option<Opened> {
        if !std::ptr::eq(writer.cell, self.cell) {
            return None;
        }
        // SAFETY: no reader slot is live and none can be acquired (count locked at zero), and
        // the caller holds the writer guard, so no reference into the cell exists.
        #[allow(unsafe_code)]
        unsafe {
            (*self.cell.opened.get()).take()
        }
    }

    pub fn put(&mut self, writer: &WriterGuard<'_>, opened: Opened) {
        if !std::ptr::eq(writer.cell, self.cell) {
            return;
        }
        // SAFETY: as in `take`.
        #[allow(unsafe_code)]
        unsafe {
            *self.cell.opened.get() = Some(opened);
        }
    }
}

fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
