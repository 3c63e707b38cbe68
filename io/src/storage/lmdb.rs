//! [`LmdbStorage`]: a member's durable state in one LMDB environment, shared by cheap clones.
//!
//! Writes go through a [`WriteBatch`] (one transaction, one fsync); reads through owned
//! [`ReadTxn`]s or the raft accessors, which take the raft bookkeeping from an in-memory copy
//! published at each commit. The file's space — sizes, map growth, defrag — is in
//! `file_space.rs`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use qraft_core::mvcc::KeyIndexBuilder;
use qraft_proto::raftpb::{Entry, HardState, SnapshotMetadata};

use super::codec::decode_pair;
use super::config::{StorageConfig, defrag_temp_path};
use super::env::{lock_data_dir, open_env};
use super::error::{Result, StorageError};
use super::journal::{Journal, JournalPosition, JournalSetup};
use super::journal_record::JournalRecord;
use super::log_tail::LogTail;
use super::opened::{Opened, OpenedCell};
use super::raft_log;
use super::raft_state::PersistedRaftState;
use super::read_txn::{ReadTxn, read_applied_index};
use super::snapshot::SnapshotExporter;
use super::snapshot_meta::applied_snapshot_metadata;
use super::tables::{KEY_IDENTITY, KEY_JOURNAL_POSITION, STORAGE_VERSION, Table};
use super::write_batch::WriteBatch;

#[derive(Clone)]
pub struct LmdbStorage {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    /// The environment and its handles, with the writer lock and reader count that guard
    /// them; replaced only by [`LmdbStorage::defrag`].
    pub cell: OpenedCell,
    pub config: StorageConfig,
    /// The raft bookkeeping as raft sees it: LMDB's last commit plus the journal's tail. Replaced
    /// while a commit is published, so a reader holding it sees the same state as a transaction
    /// begun under it. Lock order: `raft`, then `tail`, then `journal`.
    pub raft: RwLock<PersistedRaftState>,
    /// What the journal holds beyond LMDB; changed under the writer lock, or while a defrag
    /// holds that lock (see `defragging`).
    pub tail: RwLock<LogTail>,
    pub journal: Mutex<Journal>,
    pub applied_index: AtomicU64,
    /// Set while [`LmdbStorage::defrag`] holds the writer lock. A defrag commits nothing, so no
    /// fold of the journal's tail can race an append: [`LmdbStorage::journal_append`] then goes
    /// on without the lock, and raft's log keeps moving for the whole copy.
    pub defragging: AtomicBool,
    /// Whether a snapshot received from the leader gets its key index built as it arrives
    /// (the core's `Server::index_while_receiving`, kept current by the driver).
    pub index_while_receiving: AtomicBool,
    /// The key index built from the last snapshot received with it, and that snapshot's index,
    /// until the state reopened after its install takes it (or it is dropped: refused, or
    /// another snapshot received). One at most: O(keys) of memory.
    pub received_index: Mutex<Option<(u64, KeyIndexBuilder)>>,
    /// Exclusive advisory lock on the data directory; declared last so it is released only
    /// after the environment is closed.
    _dir_lock: File,
}

impl std::fmt::Debug for LmdbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmdbStorage")
            .field("env_dir", &self.shared.config.env_dir())
            .field("last_index", &self.last_index())
            .field("applied_index", &self.applied_index())
            .finish()
    }
}

/// Counts a live [`ReadTxn`] so map growth and defrag wait for it.
pub(crate) struct ReaderSlot {
    shared: Arc<Shared>,
}

impl ReaderSlot {
    pub fn acquire(shared: &Arc<Shared>) -> ReaderSlot {
        shared.cell.acquire_reader();
        ReaderSlot {
            shared: Arc::clone(shared),
        }
    }

    /// The environment this slot keeps in place; `None` only after a failed defrag reopen.
    pub fn opened(&self) -> Result<&Opened> {
        self.shared.cell.for_reader().ok_or(StorageError::Closed)
    }
}

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        self.shared.cell.release_reader();
    }
}

pub(crate) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Who this member is: its ID and its cluster's ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberIdentity {
    pub member_id: u64,
    pub cluster_id: u64,
}

impl LmdbStorage {
    /// Opens (creating if needed) `<data_dir>/member/lmdb`. Fails if another process or handle
    /// holds the data directory or if the stored raft state is inconsistent. The schema version
    /// is not checked here: pass [`Self::storage_version`] to the version layer
    /// (`LocalVersion::check_storage`) before applying anything.
    pub fn open(config: StorageConfig) -> Result<LmdbStorage> {
        LmdbStorage::open_with_journal(config, JournalSetup::default())
    }

    /// [`Self::open`] with the journal's files in `journal` (tests stand in for the disk).
    pub(crate) fn open_with_journal(
        config: StorageConfig,
        journal: JournalSetup,
    ) -> Result<LmdbStorage> {
        let dir_lock = lock_data_dir(&config)?;
        // A defrag interrupted before its rename left only a temporary copy: the original is
        // intact, so the copy is dropped.
        match fs::remove_file(defrag_temp_path(&config.env_dir())) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
        super::received_snapshot::remove_leftovers(&config.env_dir())?;
        let opened = open_env(&config)?;
        let (raft, applied, position) = load_raft_state(&opened)?;
        let recovered = Journal::open(journal, &config.journal_dir(), position)?;
        let journal_end = recovered.journal.end();
        let storage = LmdbStorage {
            shared: Arc::new(Shared {
                cell: OpenedCell::new(opened),
                config,
                raft: RwLock::new(raft),
                tail: RwLock::new(LogTail::new(position)),
                journal: Mutex::new(recovered.journal),
                defragging: AtomicBool::new(false),
                index_while_receiving: AtomicBool::new(false),
                received_index: Mutex::new(None),
                applied_index: AtomicU64::new(applied),
                _dir_lock: dir_lock,
            }),
        };
        storage.replay(recovered.records, position, journal_end)?;
        Ok(storage)
    }

    /// Folds the journal's records past LMDB's position into LMDB, durably: after a crash, the
    /// entries and hard states of the turns whose state machine commit did not happen (or did
    /// not survive). Also records the journal's `end` when LMDB holds an older position (a
    /// journal just created: from then on a missing journal is noticed at open).
    fn replay(
        &self,
        records: Vec<(JournalRecord, JournalPosition)>,
        position: JournalPosition,
        end: JournalPosition,
    ) -> Result<()> {
        if records.is_empty() && position == end {
            return Ok(());
        }
        let writer = self.shared.cell.lock_writer();
        {
            let mut raft = write_lock(&self.shared.raft);
            let mut tail = write_lock(&self.shared.tail);
            for (record, _) in &records {
                LogTail::check(&raft, &record.entries)?;
                tail.absorb(&mut raft, &record.entries, record.hard_state.as_ref(), None);
            }
            tail.absorb(&mut raft, &[], None, Some(end));
        }
        if !records.is_empty() {
            tracing::info!(
                records = records.len(),
                last_index = self.last_index(),
                "replayed the raft journal into LMDB"
            );
        }
        WriteBatch::new(&self.shared, writer)?.commit()
    }

    /// Makes a loop turn's raft entries and hard state durable in the journal — one record, one
    /// `fdatasync` — and visible to raft; the next write batch folds them into LMDB. With
    /// `sync` false (raft needs nothing durable: a commit index only) nothing is written and the
    /// hard state waits in memory for that batch. It waits for the writer lock, except behind a
    /// defrag (see [`Shared::defragging`]): raft's log moves on while the file is copied.
    pub fn journal_append(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<()> {
        let _writer = match self.shared.cell.try_lock_writer() {
            Some(writer) => Some(writer),
            // A defrag holds the lock for the whole copy and commits nothing meanwhile.
            None if self.shared.defragging.load(Ordering::Acquire) => None,
            None => Some(self.shared.cell.lock_writer()),
        };
        append_to_journal(&self.shared, entries, hard_state, sync)
    }

    /// Folds the journal's tail into LMDB with a durable commit, so that LMDB alone holds the
    /// member's whole state (a clean stop does this).
    pub fn fold_journal(&self) -> Result<()> {
        let pending = read_lock(&self.shared.tail).is_pending();
        if pending {
            self.begin_write()?.commit()?;
        }
        Ok(())
    }

    pub fn config(&self) -> &StorageConfig {
        &self.shared.config
    }

    pub fn env_dir(&self) -> PathBuf {
        self.shared.config.env_dir()
    }

    /// Starts the write batch of this loop turn, waiting for a running one to finish. Commit
    /// it with [`WriteBatch::commit`] (one fsync); dropping it writes nothing.
    pub fn begin_write(&self) -> Result<WriteBatch<'_>> {
        let writer = self.shared.cell.lock_writer();
        self.maybe_grow(&writer);
        WriteBatch::new(&self.shared, writer)
    }

    /// Like [`Self::begin_write`] but `None` instead of waiting when a batch is open.
    pub fn try_begin_write(&self) -> Result<Option<WriteBatch<'_>>> {
        let Some(writer) = self.shared.cell.try_lock_writer() else {
            return Ok(None);
        };
        self.maybe_grow(&writer);
        WriteBatch::new(&self.shared, writer).map(Some)
    }

    /// Runs `f` in one write batch and commits it if `f` succeeds (group commit in closure
    /// form): the driver appends the turn's raft entries, saves the hard state, applies the
    /// committed entries and sets the applied index all in `f`. A write that does not fit the
    /// map fails with [`StorageError::NoSpace`] and writes nothing.
    pub fn write<R, E>(&self, f: impl FnOnce(&mut WriteBatch<'_>) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StorageError>,
    {
        let mut batch = self.begin_write()?;
        let out = f(&mut batch)?;
        batch.commit()?;
        Ok(out)
    }

    /// A read transaction over the data tables (a consistent snapshot; keep it short).
    pub fn read(&self) -> Result<ReadTxn> {
        ReadTxn::begin(&self.shared)
    }

    /// The storage schema version in the meta table (`None` for a new store), as written by the
    /// version layer.
    pub fn storage_version(&self) -> Result<Option<String>> {
        let read = self.read()?;
        let version = read.get(Table::Meta, STORAGE_VERSION)?;
        Ok(version.map(|v| String::from_utf8_lossy(v).into_owned()))
    }

    /// The member and cluster IDs recorded when this storage was first set up; `None` for a
    /// store that never was (or one written before IDs were recorded).
    pub fn identity(&self) -> Result<Option<MemberIdentity>> {
        let read = self.read()?;
        let Some(bytes) = read.tables().raft_state.get(read.raw(), KEY_IDENTITY)? else {
            return Ok(None);
        };
        let (member_id, cluster_id) = decode_pair("member identity", bytes)?;
        Ok(Some(MemberIdentity {
            member_id,
            cluster_id,
        }))
    }

    /// The committed raft bookkeeping (hard state, conf state, snapshot, log bounds).
    pub fn raft_state(&self) -> PersistedRaftState {
        read_lock(&self.shared.raft).clone()
    }

    /// The applied index as of the last commit.
    pub fn applied_index(&self) -> u64 {
        self.shared.applied_index.load(Ordering::Acquire)
    }

    pub fn first_index(&self) -> u64 {
        read_lock(&self.shared.raft).first_index()
    }

    pub fn last_index(&self) -> u64 {
        read_lock(&self.shared.raft).last_index
    }

    /// Entries `lo..hi`, at most `max_bytes` of them (but at least one): LMDB's below the
    /// journal tail, the tail's from there.
    pub fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>> {
        let raft = read_lock(&self.shared.raft);
        let tail = read_lock(&self.shared.tail);
        if lo <= raft.log_start.index {
            return Err(StorageError::Compacted);
        }
        if hi > raft.last_index + 1 {
            return Err(StorageError::Unavailable);
        }
        let mut out = Vec::new();
        let mut budget = max_bytes;
        if !tail.covers(lo) {
            let bounds = tail.lmdb_bounds(&raft);
            let lmdb_hi = hi.min(bounds.last_index + 1);
            let txn = self.read()?;
            out = raft_log::entries(txn.raw(), txn.tables(), bounds, lo, lmdb_hi, max_bytes)?;
            if (out.len() as u64) < lmdb_hi.saturating_sub(lo) {
                return Ok(out);
            }
            let used: u64 = out
                .iter()
                .map(|e| prost::Message::encoded_len(e) as u64)
                .sum();
            budget = max_bytes.saturating_sub(used);
        }
        tail.extend_entries(&mut out, lo, hi, &mut budget);
        Ok(out)
    }

    pub fn term(&self, index: u64) -> Result<u64> {
        let raft = read_lock(&self.shared.raft);
        let tail = read_lock(&self.shared.tail);
        if tail.covers(index) {
            return tail.term(index).ok_or(StorageError::Unavailable);
        }
        let bounds = tail.lmdb_bounds(&raft);
        let txn = self.read()?;
        raft_log::term(txn.raw(), txn.tables(), bounds, index)
    }

    /// The published raft state and a transaction that sees exactly that state.
    fn raft_and_txn(&self) -> Result<(PersistedRaftState, ReadTxn)> {
        let raft = read_lock(&self.shared.raft);
        let txn = self.read()?;
        Ok((raft.clone(), txn))
    }

    /// The whole key space as a stream of chunks, from one read transaction.
    pub fn export_snapshot(&self) -> Result<SnapshotExporter> {
        let (raft, read) = self.raft_and_txn()?;
        SnapshotExporter::new(read, &raft)
    }

    /// The raft snapshot metadata of the current applied state (see [`SnapshotExporter::metadata`]).
    pub fn applied_snapshot_metadata(&self) -> Result<SnapshotMetadata> {
        Ok(self.applied_snapshot_txn()?.0)
    }

    /// A read transaction and the snapshot metadata of exactly what it sees.
    pub(crate) fn applied_snapshot_txn(&self) -> Result<(SnapshotMetadata, ReadTxn)> {
        let (raft, read) = self.raft_and_txn()?;
        Ok((applied_snapshot_metadata(&read, &raft)?, read))
    }

    /// `snapshot save`: writes the key space stream to `path` and syncs it.
    pub fn save_snapshot(&self, path: &Path) -> Result<u64> {
        let mut file = super::permissions::create_private_file(path)?;
        let written = self.export_snapshot()?.write_all_to(&mut file)?;
        file.sync_all()?;
        Ok(written)
    }
}

/// [`LmdbStorage::journal_append`] for a caller that holds the writer lock (the lock the
/// journal's tail changes under).
pub(crate) fn append_to_journal(
    shared: &Shared,
    entries: &[Entry],
    hard_state: Option<&HardState>,
    sync: bool,
) -> Result<()> {
    LogTail::check(&read_lock(&shared.raft), entries)?;
    let end = if sync || !entries.is_empty() {
        let record = JournalRecord {
            entries: entries.to_vec(),
            hard_state: hard_state.copied(),
        };
        Some(lock_journal(shared).append(&record)?)
    } else {
        None
    };
    let mut raft = write_lock(&shared.raft);
    write_lock(&shared.tail).absorb(&mut raft, entries, hard_state, end);
    Ok(())
}

pub(crate) fn lock_journal(shared: &Shared) -> MutexGuard<'_, Journal> {
    shared
        .journal
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The raft bookkeeping, applied index and journal position stored in a freshly opened
/// environment.
pub(crate) fn load_raft_state(
    opened: &Opened,
) -> Result<(PersistedRaftState, u64, JournalPosition)> {
    let txn = opened.env.read_txn()?;
    let position = match opened.tables.raft_state.get(&txn, KEY_JOURNAL_POSITION)? {
        Some(bytes) => JournalPosition::decode(bytes)?,
        None => JournalPosition::default(),
    };
    Ok((
        PersistedRaftState::load(&txn, &opened.tables)?,
        read_applied_index(&txn, &opened.tables)?,
        position,
    ))
}

#[cfg(test)]
mod tests {
    use heed::EnvFlags;

    use super::*;

    /// Durability rests on LMDB syncing at every commit: none of the flags that trade it away
    /// may be set.
    #[test]
    fn the_environment_syncs_every_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("open");
        let read = storage.read().expect("read");
        let flags = read.env().get_flags().expect("flags");
        for unsafe_flag in [
            EnvFlags::NO_SYNC,
            EnvFlags::NO_META_SYNC,
            EnvFlags::MAP_ASYNC,
            EnvFlags::WRITE_MAP,
        ] {
            assert_eq!(flags & unsafe_flag.bits(), 0, "{unsafe_flag:?} is set");
        }
        assert!(format!("{storage:?}").contains("member/lmdb"));
    }

    /// A batch committed without its meta sync is visible at once and after a reopen, and the
    /// environment goes back to syncing every commit.
    #[test]
    fn a_commit_without_meta_sync_is_visible_and_leaves_the_flags_as_they_were() {
        let dir = tempfile::tempdir().expect("dir");
        let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("open");
        let mut batch = storage.begin_write().expect("batch");
        batch.put(Table::Lease, b"k", b"applied").expect("put");
        batch.commit_unsynced_meta().expect("commit");
        let read = storage.read().expect("read");
        let flags = read.env().get_flags().expect("flags");
        assert_eq!(flags & EnvFlags::NO_META_SYNC.bits(), 0);
        assert_eq!(
            read.get(Table::Lease, b"k").expect("get"),
            Some(&b"applied"[..])
        );
        drop(read);
        drop(storage);
        let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("reopen");
        let read = storage.read().expect("read");
        assert_eq!(
            read.get(Table::Lease, b"k").expect("get"),
            Some(&b"applied"[..])
        );
    }
}
