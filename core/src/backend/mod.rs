//! The storage abstraction under MVCC, leases, auth and membership.
//!
//! A [`Backend`] is a set of named, byte-ordered key/value tables ([`Table`]) with
//! transactions, shaped after LMDB so that `qraft-io` can implement it on LMDB directly:
//!
//! - **One write transaction at a time.** [`Backend::write_txn`] fails with
//!   [`BackendError::WriteTxnActive`] while another one is open (LMDB would block; core never
//!   blocks). A write transaction sees its own uncommitted writes. Dropping it without
//!   [`WriteTxn::commit`] aborts it: nothing it wrote becomes visible.
//! - **Read transactions are snapshots.** A [`ReadTxn`] sees the state committed before it was
//!   opened and nothing later, however long it lives; any number may be open, also while a write
//!   transaction is running.
//! - **Atomic commit.** Everything written in one write transaction becomes visible (and, for a
//!   durable backend, durable) together or not at all.
//! - **Visible at commit.** Every read transaction opened after [`WriteTxn::commit`] returns
//!   sees what it wrote. This is how the core reads the applied state: through
//!   [`Backend::read_txn`] only, so a backend that batches commits must serve reads from its
//!   batch (as etcd's backend reads through its write buffer). Durability may come later: the
//!   applied index commits with the data (below), so a crash loses a suffix of applied entries
//!   that the raft log applies again. qraft-io's loop backend keeps one LMDB write transaction
//!   open for a few milliseconds across many such commits and serves reads through it.
//!
//! # Invariant: applied index and applied data commit together
//! The state machine applies committed raft entries inside one write transaction and, in that
//! same transaction, writes the index (and term) of the last entry it applied to
//! [`Table::Meta`] under [`meta::CONSISTENT_INDEX`] / [`meta::TERM`]. After a crash the store
//! therefore holds exactly the effects of the entries up to the stored index: none applied twice,
//! none lost. Nobody may write application data in a transaction that does not also advance (or
//! keep) the consistent index accordingly.
//!
//! # Why generic associated types
//! Transactions borrow the backend (LMDB read and write transactions borrow their environment), so the transaction
//! types are GATs with the backend's lifetime. Code that consumes transactions (MVCC, lease, auth)
//! is generic over `T: ReadTxn + ?Sized` / `T: WriteTxn + ?Sized`, so it also works with
//! `&dyn ReadTxn` / `&mut dyn WriteTxn` when an embedder prefers dynamic dispatch. Range scans
//! take a visitor closure instead of returning an iterator, which keeps the trait object-safe
//! and lets LMDB hand out borrowed slices valid only for the duration of the call.

mod mem;
pub mod meta;

pub use mem::{MemBackend, MemReadTxn, MemWriteTxn};

use std::ops::ControlFlow;

/// The named tables of a backend. Keys within a table are ordered bytewise.
///
/// The set is fixed so an LMDB environment can create every named database up front.
/// Adding a table is a storage schema change (bump [`meta::STORAGE_VERSION`] handling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// MVCC history: key = encoded revision (see `mvcc::revision`), value = `mvccpb.KeyValue`.
    Key,
    /// Single-value records: consistent index, term, compaction revisions, storage schema version,
    /// confstate. Keys are the constants in [`meta`].
    Meta,
    /// Leases: key = lease id (i64 big-endian), value = the lease record (owned by `lease/`).
    Lease,
    /// Raised alarms: key = member id + alarm type, value empty (owned by the alarm code).
    Alarm,
    /// Auth switches: enabled flag and auth revision (owned by `auth/`).
    Auth,
    /// Auth users: key = user name, value = `authpb.User`.
    AuthUsers,
    /// Auth roles: key = role name, value = `authpb.Role`.
    AuthRoles,
    /// Cluster members: key = member id (u64 big-endian), value = `qraftpb.MemberRecord`.
    Members,
    /// Removed member ids (never allowed back): key = member id, value empty.
    MembersRemoved,
    /// Cluster-wide records: cluster version, downgrade info (owned by `version/`).
    Cluster,
}

impl Table {
    /// Every table, in a fixed order (the LMDB implementation creates one database each).
    pub const ALL: [Table; 10] = [
        Table::Key,
        Table::Meta,
        Table::Lease,
        Table::Alarm,
        Table::Auth,
        Table::AuthUsers,
        Table::AuthRoles,
        Table::Members,
        Table::MembersRemoved,
        Table::Cluster,
    ];

    /// Stable name, used as the LMDB database name. Never change a published name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Key => "key",
            Table::Meta => "meta",
            Table::Lease => "lease",
            Table::Alarm => "alarm",
            Table::Auth => "auth",
            Table::AuthUsers => "authUsers",
            Table::AuthRoles => "authRoles",
            Table::Members => "members",
            Table::MembersRemoved => "members_removed",
            Table::Cluster => "cluster",
        }
    }
}

/// Failure of the storage layer. The MVCC layer turns these into an internal error for the
/// client; the IO shell treats them as fatal for the member (data may be unreadable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// A write transaction was requested while another one is open.
    #[error("backend: a write transaction is already open")]
    WriteTxnActive,
    /// Stored bytes could not be decoded.
    #[error("backend: corrupt data in table {table:?}: {reason}")]
    Corrupt { table: Table, reason: String },
    /// The storage engine failed (IO error, map full, ...).
    #[error("backend: {0}")]
    Storage(String),
    /// Maintenance could not get the access it needs now (a defragmentation already running,
    /// readers that did not finish in time); trying again later may work.
    #[error("backend busy: {0}")]
    Busy(String),
}

/// What a range visitor wants next.
pub type Visit = ControlFlow<()>;

/// A consistent, read-only view of the backend.
pub trait ReadTxn {
    /// The value stored under `key`, if any.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, BackendError>;

    /// Calls `visit(key, value)` for every entry with `start <= key` and, when `end` is given,
    /// `key < end`, in ascending key order, until `visit` returns `ControlFlow::Break`.
    /// The slices are only valid during the call.
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Visit,
    ) -> Result<(), BackendError>;
}

/// A read-write transaction. Reads see the transaction's own writes.
pub trait WriteTxn: ReadTxn {
    /// Stores `value` under `key`, replacing any previous value.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), BackendError>;

    /// Stores `value` under `key`, which sorts after every key `table` holds: the MVCC history
    /// only grows at its end. The outcome is [`WriteTxn::put`]'s; the hint lets a B-tree fill
    /// its last page before it starts the next one, where an insert in the middle would split
    /// the page in two half-empty ones (with 1 KiB values LMDB's file then takes twice the
    /// data, and every snapshot of it ships the holes). A key that does not sort last must
    /// still be stored correctly, only without the saving. Required, not defaulted: a wrapper
    /// that forgot to pass it on would silently store every revision the expensive way.
    fn put_at_end(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), BackendError>;

    /// Removes `key`; returns whether it existed.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, BackendError>;

    /// Makes every write of this transaction visible (and durable) atomically.
    fn commit(self) -> Result<(), BackendError>
    where
        Self: Sized;
}

/// A transactional store of named tables. See the module documentation for the contract.
pub trait Backend {
    type ReadTxn<'a>: ReadTxn
    where
        Self: 'a;
    type WriteTxn<'a>: WriteTxn
    where
        Self: 'a;

    /// Opens a snapshot of the committed state.
    fn read_txn(&self) -> Result<Self::ReadTxn<'_>, BackendError>;

    /// Opens the (single) write transaction.
    fn write_txn(&self) -> Result<Self::WriteTxn<'_>, BackendError>;

    /// How much space the backend uses against its quota (etcd's `--quota-backend-bytes`),
    /// for the core's quota alarm (`server::quota`) and `Maintenance.Status`; `None` for a
    /// backend without a quota.
    /// Called every few ticks on the core's thread: it must be cheap and must not block.
    fn space(&self) -> Result<Option<BackendSpace>, BackendError> {
        Ok(None)
    }

    /// Makes everything committed through this backend visible to readers outside it —
    /// another thread reading the store's last commit, a copy of its file. A backend that
    /// batches its commits (see "Visible at commit" above) commits its batch here; the default
    /// does nothing, for a backend whose every commit is already there. The core calls it
    /// before it lets the runtime serve a call from the store itself (a client's snapshot,
    /// [`crate::server::Server::admit`]), so the runtime cannot serve that call from a state
    /// older than the answers it gave: the rule is the core's, not the runtime's. An error is
    /// fatal for the member, as any failed commit.
    fn commit_batched(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A backend's sizes and quota (see [`Backend::space`]), as `Maintenance.Status` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendSpace {
    /// Bytes the backend's file takes, free pages included (etcd's `dbSize`); the same as
    /// `in_use_bytes` for a backend without a file.
    pub file_bytes: u64,
    /// Bytes the stored data takes (etcd's `dbSizeInUse`).
    pub in_use_bytes: u64,
    /// The most it may take before the member raises NOSPACE.
    pub quota_bytes: u64,
}
