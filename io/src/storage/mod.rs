//! Durable storage of one member in LMDB (via heed).
//!
//! One environment per member at `<data-dir>/member/lmdb` holds named databases for the raft
//! log, the raft state (hard state, conf state, snapshot metadata, log start) and one per
//! state machine table (MVCC keys, meta with the applied index and storage schema version,
//! leases, alarms, auth, members, cluster records); see [`tables`] for the layout. Because it
//! is one environment, the log, the applied index and the data it produced commit atomically.
//!
//! # Group commit
//!
//! Every change goes through a [`WriteBatch`] — one LMDB write transaction — committed with one
//! fsync. A driver loop turn over core's `Server<LmdbStorage, LmdbStorage>`:
//!
//! ```ignore
//! let work = server.ready();                          // RaftWork
//! let mut batch = storage.begin_write()?;
//! if let Some(snap) = &work.snapshot {
//!     batch.install_snapshot(snap)?;                  // log reset + data image, atomically
//! }
//! batch.append(&work.entries)?;                       // truncates a conflicting suffix
//! if let Some(hs) = &work.hard_state { batch.set_hard_state(hs)?; }
//! batch.commit()?;                                    // one fsync; then persisted_messages
//! server.advance()?;                                  // applies via Backend::write_txn
//! for out in server.take_outputs() {
//!     if let Output::Snapshot { index, conf_state, compact_to, .. } = out {
//!         storage.write(|b| { b.create_snapshot(index, Some(conf_state))?; b.compact(compact_to) })?;
//!     }
//! }
//! ```
//!
//! Because a [`WriteBatch`] is also the `Backend`'s write transaction, state machine code that
//! takes `&mut impl WriteTxn` can apply committed entries into the same batch as the raft
//! append, so one fsync covers the whole turn (today `Server::advance` opens its own write
//! transaction: two fsyncs per turn until it accepts the caller's). [`LmdbStorage::write`] is
//! the closure form of begin/commit. Commit latency is dominated by the fsync, so batching a
//! turn's work is what makes throughput; see `benches/lmdb.rs`.
//!
//! # Snapshots
//!
//! `Storage::snapshot` returns the applied state's image with metadata of exactly that point;
//! [`LmdbStorage::export_snapshot`] streams the same key space in chunks for `snapshot save`
//! (format in [`snapshot`]), restored with [`WriteBatch::restore_key_space`].
//!
//! # Durability
//!
//! No `NO_SYNC`/`WRITE_MAP` flags: a batch committed with [`WriteBatch::commit`] survives kill -9
//! and power loss. [`WriteBatch::commit_unsynced_meta`] (the driver's apply-only turns) syncs
//! the data pages but not the meta page: atomic and consistent at once, durable with the next
//! commit; a power loss in between undoes that batch only, which a restart replays from the
//! raft log. Undecodable records give [`StorageError::Corrupt`], never a panic.

mod backend_impl;
mod codec;
mod config;
#[cfg(test)]
mod corruption_tests;
mod env;
mod error;
mod journal;
mod journal_record;
mod lmdb;
mod log_tail;
mod opened;
mod raft_log;
mod raft_state;
mod raft_storage_impl;
mod read_txn;
pub mod snapshot;
mod snapshot_meta;
pub mod tables;
mod write_batch;

pub use config::{DEFAULT_QUOTA_BYTES, JOURNAL_SUBDIR, LMDB_SUBDIR, StorageConfig};
pub use error::{GRPC_RESOURCE_EXHAUSTED, NO_SPACE_MESSAGE, Result, StorageError};
pub use journal::JournalPosition;
pub use lmdb::{LmdbStorage, MemberIdentity, SizeInfo};
pub use raft_state::{LogPosition, PersistedRaftState};
pub use read_txn::{ReadTxn, Visitor};
pub use snapshot::{ChunksReader, SnapshotExporter};
pub use tables::Table;
pub use write_batch::WriteBatch;
