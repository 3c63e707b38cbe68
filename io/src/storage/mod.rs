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
//! fsync. The driver does a whole loop turn in one batch:
//!
//! ```ignore
//! let mut batch = storage.begin_write()?;
//! if let Some(snap) = ready.snapshot {
//!     batch.apply_snapshot(&snap_meta)?;              // log reset to the snapshot
//!     batch.restore_key_space(snapshot_stream)?;      // ... and its data
//! }
//! batch.append(&ready.entries)?;                      // truncates a conflicting suffix
//! batch.set_hard_state(&ready.hard_state)?;
//! for entry in committed { state_machine.apply(&mut batch, &entry)?; } // Backend WriteTxn
//! batch.set_applied_index(last_committed)?;
//! if due { batch.create_snapshot(applied, None)?; batch.compact(applied - keep)?; }
//! batch.commit()?;                                    // one fsync
//! // now durable: acknowledge to raft, send responses
//! ```
//!
//! [`LmdbStorage::write`] is the same as a closure. Commit latency is dominated by the fsync
//! (≈ 0.6 ms here), so batching a turn's work is what makes throughput; see `benches/lmdb.rs`.
//!
//! # Durability
//!
//! No `NO_SYNC`/`NO_META_SYNC`/`WRITE_MAP` flags: a committed batch survives kill -9 and power
//! loss. Undecodable records give [`StorageError::Corrupt`], never a panic.

mod backend_impl;
mod codec;
mod config;
#[cfg(test)]
mod corruption_tests;
mod env;
mod error;
mod lmdb;
mod raft_log;
mod raft_state;
mod raft_storage_impl;
mod read_txn;
pub mod snapshot;
mod snapshot_meta;
pub mod tables;
mod write_batch;

pub use config::{DEFAULT_QUOTA_BYTES, LMDB_SUBDIR, StorageConfig};
pub use error::{GRPC_RESOURCE_EXHAUSTED, NO_SPACE_MESSAGE, Result, StorageError};
pub use lmdb::{LmdbStorage, SizeInfo};
pub use raft_state::{LogPosition, PersistedRaftState};
pub use read_txn::{ReadTxn, Visitor};
pub use snapshot::{ChunksReader, SnapshotExporter};
pub use tables::Table;
pub use write_batch::WriteBatch;
