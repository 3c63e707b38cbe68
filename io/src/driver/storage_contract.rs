//! What the driver needs from a member's storage: the contract the loop, its held batch, its
//! writes and its handle are generic over. LMDB implements it (`crate::storage`,
//! `driver_storage_impl.rs`); another store implements these traits and runs under the same
//! loop. The generics are monomorphised: no dynamic dispatch on the loop's path.
//!
//! A store here is three things that commit together:
//! - the **raft log** raft reads back ([`qraft_core::raft::Storage`]), written through a
//!   **journal** ([`DriverStorage::journal_append`]: a turn's entries and hard state, durable
//!   with one sync, visible to raft at once) and folded into the store by its next batch;
//! - the **applied state**, read through snapshots ([`DriverStorage::read`]) and written
//!   through one **batch** at a time ([`DriverStorage::begin_write`], [`DriverBatch`]), which the
//!   loop holds open across turns (`super::held`). A batch sees its own writes; what it commits
//!   is visible to every later read;
//! - **snapshots**: a consistent image of the applied state streamed out
//!   ([`DriverStorage::export_snapshot`]), and one received from the leader swapped in
//!   ([`DriverStorage::install_received_snapshot`]).
//!
//! Invariants a store must keep (the durability argument of `docs/architecture.md`):
//! - the applied index commits in the same batch as the applied data (core's
//!   `backend` contract), so a restart replays from the journal exactly what a lost batch held;
//! - a journal append that returns with `sync` is durable, and raft sees it at once;
//! - a batch commit makes the journal's folded tail and the batch's writes durable together,
//!   [`DriverBatch::commit_durably`] including what the journal cannot replay (raft state of a
//!   snapshot turn).

use std::time::Duration;

use qraft_core::backend;
use qraft_core::mvcc::KeyIndexBuilder;
use qraft_core::raft;
use qraft_proto::raftpb::{ConfState, Entry, HardState, SnapshotMetadata};

use crate::storage::{SizeInfo, StorageError};
use crate::transport::PeerTransport;

/// A member's storage as the driver uses it (see the module documentation). Clones share the
/// store; the loop's thread and blocking threads (defrag, snapshot export) use it at once.
pub trait DriverStorage: raft::Storage + Clone + Send + Sync + 'static {
    /// A consistent read of the last commit; it may live on any thread.
    type Read: backend::ReadTxn;
    /// The single write batch (see [`DriverBatch`]).
    type Batch<'s>: DriverBatch
    where
        Self: 's;
    /// A stream of a snapshot's chunks (see [`DriverStorage::export_snapshot`]).
    type Exporter: SnapshotChunks + Send;

    /// A read of the applied state as last committed.
    fn read(&self) -> Result<Self::Read, StorageError>;

    /// Begins the write batch, waiting for a running one (another thread's) to end.
    fn begin_write(&self) -> Result<Self::Batch<'_>, StorageError>;

    /// Runs `f` in one batch and commits it durably if `f` succeeds.
    fn write<R, E>(&self, f: impl FnOnce(&mut Self::Batch<'_>) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StorageError>,
    {
        let mut batch = self.begin_write()?;
        let out = f(&mut batch)?;
        batch.commit_durably()?;
        Ok(out)
    }

    /// A turn's raft entries and hard state to the journal, durably when `sync` (one record,
    /// one sync), when no batch is open (an open batch takes them: [`DriverBatch`]).
    fn journal_append(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<(), StorageError>;

    /// Folds the journal into the store with a durable commit (a clean stop), so the store
    /// alone holds the member's state.
    fn fold_journal(&self) -> Result<(), StorageError>;

    /// Makes the snapshot from the leader at `meta`, already received beside raft's message by
    /// the transport, the member's state, with `hard_state`. No batch may be open.
    fn install_received_snapshot(
        &self,
        meta: &SnapshotMetadata,
        hard_state: Option<&HardState>,
    ) -> Result<(), StorageError>;

    /// Drops what was received of snapshots up to `index` (raft refused them).
    fn discard_received_snapshots(&self, index: u64);

    /// Whether snapshots received from now on get their key index built as they arrive (the
    /// core's `Server::index_while_receiving`). Called every turn: cheap.
    fn set_index_while_receiving(&self, on: bool);

    /// The key index built as the snapshot at `index` arrived, if any, for the
    /// `StateOpenJob` that reopens the state after its install.
    fn take_received_index(&self, index: u64) -> Option<KeyIndexBuilder>;

    /// A consistent image of the applied state as last committed, as a stream of chunks (a
    /// client's snapshot).
    fn export_snapshot(&self) -> Result<Self::Exporter, StorageError>;

    /// Hands the transport what it streams snapshots from and receives them into (a `MsgSnap`
    /// carries metadata only; the data travels beside it).
    fn serve_snapshots(&self, transport: &dyn PeerTransport);

    /// The store's sizes: its file, the part in use, its quota.
    fn size_info(&self) -> Result<SizeInfo, StorageError>;

    /// Rewrites the store without its free space while raft goes on (blocking: runs on a
    /// blocking thread; the journal keeps taking appends). Waits up to `reader_wait` for open
    /// reads. Returns the sizes before and after.
    fn defrag(&self, reader_wait: Duration) -> Result<(SizeInfo, SizeInfo), StorageError>;
}

/// The store's single write batch: the core's write transaction (the applied entries and the
/// applied index), and the loop's own writes beside them.
pub trait DriverBatch: backend::WriteTxn {
    /// The turn's raft entries and hard state to the journal, through this batch (which holds
    /// the writer's place).
    fn journal_append(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<(), StorageError>;

    /// Appends raft entries (replacing a conflicting suffix) in the batch itself (a snapshot
    /// turn, whose raft state the journal does not take).
    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), StorageError>;

    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError>;

    /// Records the configuration in force at the applied index (a restart resumes with it).
    fn set_conf_state(&mut self, conf_state: &ConfState) -> Result<(), StorageError>;

    /// Records the applied state at `index` as the raft snapshot, with `conf_state`.
    fn create_snapshot(
        &mut self,
        index: u64,
        conf_state: Option<ConfState>,
    ) -> Result<(), StorageError>;

    /// The first index the raft log still holds (entries before it are compacted).
    fn log_start_index(&self) -> u64;

    /// Drops the raft log's entries up to `index`.
    fn compact(&mut self, index: u64) -> Result<(), StorageError>;

    /// Commits everything durably.
    fn commit_durably(self) -> Result<(), StorageError>
    where
        Self: Sized;

    /// Commits with the data synced but not the commit record: a power loss may undo the
    /// commit, and the journal replays what it held (the held batch's schedule).
    fn commit_unsynced(self) -> Result<(), StorageError>
    where
        Self: Sized;
}

/// A snapshot's chunks, in order.
pub trait SnapshotChunks {
    /// The next chunk of about `target_bytes`; `None` after the last.
    fn next_chunk(&mut self, target_bytes: usize) -> Result<Option<Vec<u8>>, StorageError>;
}
