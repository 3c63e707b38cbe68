//! [`LmdbStorage`]: a member's durable state in one LMDB environment, shared by cheap clones.
//!
//! Writes go through a [`WriteBatch`] (one transaction, one fsync); reads through owned
//! [`ReadTxn`]s or the raft accessors, which take the raft bookkeeping from an in-memory copy
//! published at each commit.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use heed::{Env, WithoutTls};
use qraft_proto::raftpb::{Entry, SnapshotMetadata};

use super::codec::decode_pair;
use super::config::{StorageConfig, defrag_temp_path, round_to_pages};
use super::env::{allocated_bytes, copy_compacted, lock_data_dir, map_size, open_env, page_size};
use super::error::{Result, StorageError};
use super::raft_log;
use super::raft_state::{LogBounds, PersistedRaftState};
use super::read_txn::{ReadTxn, read_applied_index};
use super::snapshot::SnapshotExporter;
use super::snapshot_meta::applied_snapshot_metadata;
use super::tables::{KEY_IDENTITY, STORAGE_VERSION, Table, Tables};
use super::write_batch::WriteBatch;

#[derive(Clone)]
pub struct LmdbStorage {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub env: Env<WithoutTls>,
    pub tables: Tables,
    config: StorageConfig,
    /// The committed raft bookkeeping. Replaced while a commit is published, so a reader holding
    /// it sees the same state as a transaction begun under it.
    pub raft: RwLock<PersistedRaftState>,
    pub applied_index: AtomicU64,
    /// One write batch at a time, so each starts from the last published raft state.
    writer: Mutex<()>,
    /// Live read transactions; the map may only be resized while this is zero.
    readers: Mutex<usize>,
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

/// Counts a live [`ReadTxn`] so map growth waits for it.
pub(crate) struct ReaderSlot {
    shared: Arc<Shared>,
}

impl ReaderSlot {
    pub fn acquire(shared: &Arc<Shared>) -> ReaderSlot {
        *mutex(&shared.readers) += 1;
        ReaderSlot {
            shared: Arc::clone(shared),
        }
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        let mut readers = mutex(&self.shared.readers);
        *readers = readers.saturating_sub(1);
    }
}

/// Sizes for `endpoint status` and the quota check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeInfo {
    /// Size of the data file on disk (etcd's `dbSize`).
    pub file_bytes: u64,
    /// Bytes in pages the databases use (etcd's `dbSizeInUse`); the rest is free pages that
    /// LMDB reuses and `defrag` returns to the file system.
    pub in_use_bytes: u64,
    /// The memory map's size: the hard limit before writes fail with NOSPACE.
    pub map_bytes: u64,
    pub quota_bytes: u64,
}

pub(crate) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn mutex<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let dir_lock = lock_data_dir(&config)?;
        // A defrag interrupted before its rename left only a temporary copy: the original is
        // intact, so the copy is dropped.
        match fs::remove_file(defrag_temp_path(&config.env_dir())) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
        let (env, tables) = open_env(&config)?;
        let (raft, applied) = {
            let txn = env.read_txn()?;
            (
                PersistedRaftState::load(&txn, &tables)?,
                read_applied_index(&txn, &tables)?,
            )
        };
        Ok(LmdbStorage {
            shared: Arc::new(Shared {
                env,
                tables,
                config,
                raft: RwLock::new(raft),
                applied_index: AtomicU64::new(applied),
                writer: Mutex::new(()),
                readers: Mutex::new(0),
                _dir_lock: dir_lock,
            }),
        })
    }

    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
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
        let writer = mutex(&self.shared.writer);
        self.maybe_grow();
        WriteBatch::new(&self.shared, writer)
    }

    /// Like [`Self::begin_write`] but `None` instead of waiting when a batch is open.
    pub fn try_begin_write(&self) -> Result<Option<WriteBatch<'_>>> {
        let writer = match self.shared.writer.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
        };
        self.maybe_grow();
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
        let txn = self.shared.env.read_txn()?;
        let Some(bytes) = self.shared.tables.raft_state.get(&txn, KEY_IDENTITY)? else {
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

    /// Entries `lo..hi`, at most `max_bytes` of them (but at least one).
    pub fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>> {
        let (bounds, txn) = self.bounds_and_txn()?;
        raft_log::entries(txn.raw(), txn.tables(), bounds, lo, hi, max_bytes)
    }

    pub fn term(&self, index: u64) -> Result<u64> {
        let (bounds, txn) = self.bounds_and_txn()?;
        raft_log::term(txn.raw(), txn.tables(), bounds, index)
    }

    /// The published raft state and a transaction that sees exactly that state.
    fn raft_and_txn(&self) -> Result<(PersistedRaftState, ReadTxn)> {
        let raft = read_lock(&self.shared.raft);
        let txn = self.read()?;
        Ok((raft.clone(), txn))
    }

    /// The published log bounds and a transaction that sees exactly that log.
    fn bounds_and_txn(&self) -> Result<(LogBounds, ReadTxn)> {
        let raft = read_lock(&self.shared.raft);
        let txn = self.read()?;
        Ok((raft.bounds(), txn))
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
        let mut file = File::create(path)?;
        let written = self.export_snapshot()?.write_all_to(&mut file)?;
        file.sync_all()?;
        Ok(written)
    }

    pub fn size_info(&self) -> Result<SizeInfo> {
        let env = &self.shared.env;
        let tables = &self.shared.tables;
        let read = self.read()?; // counted, so the map never resizes under it
        let txn = read.raw();
        let mut pages = 2; // the two meta pages
        let mut add = |stat: heed::DatabaseStat| {
            pages += (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64;
        };
        add(env.unnamed_database_stat());
        add(tables.log.stat(txn)?);
        add(tables.raft_state.stat(txn)?);
        for table in Table::ALL {
            add(tables.data(table).stat(txn)?);
        }
        Ok(SizeInfo {
            file_bytes: env.real_disk_size()?,
            in_use_bytes: pages * page_size(env),
            map_bytes: map_size(env),
            quota_bytes: self.shared.config.effective_quota(),
        })
    }

    /// Whether the data in use exceeds `--quota-backend-bytes` (the NOSPACE alarm condition).
    pub fn over_quota(&self) -> Result<bool> {
        let size = self.size_info()?;
        Ok(size.in_use_bytes > size.quota_bytes)
    }

    /// Grows the map by the headroom when less than half the headroom is left. LMDB allows this
    /// only with no transaction running in the process: the caller holds the writer lock, and
    /// if read transactions are live it tries again at the next batch.
    fn maybe_grow(&self) {
        let env = &self.shared.env;
        let headroom = self.shared.config.headroom_bytes();
        if allocated_bytes(env) + headroom / 2 <= map_size(env) {
            return;
        }
        let readers = mutex(&self.shared.readers);
        if *readers != 0 {
            return;
        }
        let Ok(new_size) = round_to_pages(map_size(env) + headroom) else {
            return;
        };
        // SAFETY: no write transaction exists (our caller holds the writer lock and has not begun
        // one), no read transaction exists (count is zero) and none can begin while we hold the
        // reader count lock. Internal reads (`size_info`, `open`) never overlap a batch start.
        #[allow(unsafe_code)]
        let resized = unsafe { env.resize(new_size) };
        drop(readers);
        match resized {
            Ok(()) => tracing::info!(new_size, "grew the LMDB map"),
            Err(err) => tracing::warn!(%err, "could not grow the LMDB map"),
        }
    }

    /// Online defragmentation: closes this storage, rewrites the data file without its free
    /// pages and reopens it, so the file shrinks to about the size in use. Needs the only handle
    /// (no clones, no live `ReadTxn`): the driver drops the others, defrags, and rebuilds what it
    /// derived from them, as on restart. Returns the reopened storage and sizes before/after.
    pub fn defrag(self) -> Result<(LmdbStorage, SizeInfo, SizeInfo)> {
        let before = self.size_info()?;
        let shared = Arc::try_unwrap(self.shared)
            .map_err(|_| StorageError::Busy("defrag needs the only storage handle"))?;
        let config = shared.config.clone();
        // Copy while the lock is still ours, then close before replacing the file.
        let temp = defrag_temp_path(&config.env_dir());
        copy_compacted(&shared.env, &temp)?;
        let Shared { env, _dir_lock, .. } = shared;
        env.prepare_for_closing().wait();
        fs::rename(&temp, config.env_dir().join("data.mdb"))?;
        File::open(config.env_dir())?.sync_all()?;
        drop(_dir_lock);
        let storage = LmdbStorage::open(config)?;
        let after = storage.size_info()?;
        Ok((storage, before, after))
    }

    /// Offline defragmentation of a data directory no process has open.
    pub fn defrag_dir(config: &StorageConfig) -> Result<(SizeInfo, SizeInfo)> {
        let storage = LmdbStorage::open(config.clone())?;
        let (_storage, before, after) = storage.defrag()?;
        Ok((before, after))
    }
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
        let flags = storage.shared.env.get_flags().expect("flags");
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
        let flags = storage.shared.env.get_flags().expect("flags");
        assert_eq!(flags & EnvFlags::NO_META_SYNC.bits(), 0);
        let read = storage.read().expect("read");
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
