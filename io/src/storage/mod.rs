//! Durable storage of one member in LMDB (via heed).
//!
//! One environment per member at `<data-dir>/member/lmdb` holds named databases for the raft
//! log, the raft state (hard state, conf state, snapshot metadata, log start) and one per
//! state machine table (MVCC keys, meta with the applied index and storage schema version,
//! leases, alarms, auth, members, cluster records); see [`tables`] for the layout. Because it
//! is one environment, the log, the applied index and the data it produced commit atomically.
//!
//! # The raft journal and group commit
//!
//! A driver loop turn over core's `Server<LmdbStorage, LmdbStorage>`:
//!
//! ```ignore
//! let work = server.ready();                          // RaftWork
//! storage.journal_append(&work.entries, work.hard_state.as_ref(), work.must_sync)?;
//! transport.send(work.persisted_messages);            // durable: one fdatasync
//! let mut batch = storage.begin_write()?;             // folds the journal's tail into LMDB
//! server.advance_in(&mut batch)?;                     // applies committed entries into it
//! batch.commit_unsynced_meta()?;                      // data pages synced, meta page not
//! server.advance()?;
//! ```
//!
//! The journal (`journal.rs`) makes raft's part durable with one device flush; LMDB takes the
//! same entries and hard state in the next batch, whose commit may be undone by a power loss
//! (only its meta page is unsynced) because the journal still holds them: at open, the records
//! past the position LMDB recorded are replayed. Raft reads (`entries`, `term`, `last_index`)
//! see LMDB's log followed by the journal's tail (`log_tail.rs`). A snapshot from the leader, the
//! periodic snapshot and compaction, and other writes go through LMDB batches committed durably
//! ([`WriteBatch::commit`]); every batch first folds the tail in, so LMDB never lags behind a
//! batch. [`LmdbStorage::write`] is the closure form of begin/commit. See `benches/lmdb.rs`.
//!
//! # Snapshots
//!
//! `Storage::snapshot` returns the metadata of the applied state only; the key space travels as
//! a stream of chunks from [`LmdbStorage::export_snapshot`] (one read transaction; format in
//! [`snapshot`]) — to a follower by the peer transport, to a file by `snapshot save` — and a
//! follower receives it into a fresh environment ([`LmdbStorage::receive_snapshot`]) that is
//! swapped in whole when raft installs it ([`LmdbStorage::install_received_snapshot`]; see
//! `received_snapshot.rs`). [`WriteBatch::restore_key_space`] restores a stream in place.
//! For etcd's tools, [`LmdbStorage::export_etcd_image`] streams the key space from one read
//! transaction as an etcd v3 backend database instead (a bbolt file: `etcd_image.rs` maps
//! the tables to etcd's buckets, `bbolt_image.rs` and `bbolt_page.rs` write the pages,
//! `bbolt_file.rs` reads such files, and `etcd_snapshot.rs` maps etcd's buckets back).
//!
//! # Durability
//!
//! No `NO_SYNC`/`WRITE_MAP` flags: a batch committed with [`WriteBatch::commit`] survives kill -9
//! and power loss; so does a record [`LmdbStorage::journal_append`] returned from.
//! [`WriteBatch::commit_unsynced_meta`] (the driver's turns) syncs the data pages but not the
//! meta page: atomic and consistent at once, durable with the next commit; a power loss in
//! between undoes that batch only, which a restart replays from the journal and the raft log.
//! Journal segments are deleted only once a commit that can no longer be undone holds their
//! records. Undecodable records give [`StorageError::Corrupt`], never a panic; a journal record
//! torn by a crash is cut off at the next open, and any other damage or missing piece of the
//! journal refuses the open. The whole argument, with its invariants: `docs/storage.md`.

mod backend_impl;
mod bbolt_file;
mod bbolt_image;
#[cfg(test)]
mod bbolt_image_tests;
mod bbolt_page;
mod codec;
mod config;
#[cfg(test)]
mod corruption_tests;
mod driver_storage_impl;
mod env;
mod error;
mod etcd_image;
mod etcd_snapshot;
mod file_space;
mod journal;
#[cfg(test)]
mod journal_crash_fs;
#[cfg(test)]
mod journal_crash_tests;
mod journal_damage;
mod journal_fs;
mod journal_record;
mod lmdb;
mod log_tail;
mod opened;
mod permissions;
mod raft_log;
mod raft_state;
mod raft_storage_impl;
mod read_txn;
mod received_snapshot;
pub mod snapshot;
mod snapshot_file;
mod snapshot_meta;
pub mod tables;
mod write_batch;

pub use config::{DEFAULT_QUOTA_BYTES, JOURNAL_SUBDIR, LMDB_SUBDIR, StorageConfig};
pub use error::{GRPC_RESOURCE_EXHAUSTED, NO_SPACE_MESSAGE, Result, StorageError};
pub use etcd_image::EtcdImageExporter;
pub use file_space::SizeInfo;
pub use journal::JournalPosition;
pub use lmdb::{LmdbStorage, MemberIdentity};
pub use permissions::{
    LoosePermission, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, create_private_dir_all,
    create_private_file, loose_permissions, private_file_options,
};
pub use raft_state::{LogPosition, PersistedRaftState};
pub use read_txn::{ReadTxn, Visitor};
pub use snapshot::{ChunksReader, SnapshotExporter, SnapshotRecord, SnapshotTrailer};
pub use snapshot_file::{
    DigestCheck, DigestPolicy, SnapshotFileSummary, SnapshotFormat, scan_snapshot_file,
};
pub use tables::Table;
pub use write_batch::WriteBatch;
