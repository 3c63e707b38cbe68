//! The LMDB file's space: its sizes (`endpoint status`, the quota), growing the memory map
//! between batches, and defragmentation — rewriting the file without its free pages while the
//! storage stays shared (see [`LmdbStorage::defrag`]).

use std::fs::{self, File};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::config::{StorageConfig, defrag_temp_path, round_to_pages};
use super::env::{allocated_bytes, copy_compacted, map_size, open_env, page_size};
use super::error::{Result, StorageError};
use super::lmdb::LmdbStorage;
use super::opened::WriterGuard;
use super::tables::Table;

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

impl LmdbStorage {
    pub fn size_info(&self) -> Result<SizeInfo> {
        let read = self.read()?; // counted, so the map never resizes under it
        let env = read.env();
        let tables = read.tables();
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

    /// Grows the map by the headroom when less than half the headroom is left. LMDB allows this
    /// only with no transaction running in the process: the caller holds the writer lock, and
    /// if read transactions are live it tries again at the next batch.
    pub(crate) fn maybe_grow(&self, writer: &WriterGuard<'_>) {
        let Some(opened) = self.shared.cell.for_writer(writer) else {
            return;
        };
        let env = &opened.env;
        let headroom = self.shared.config.headroom_bytes();
        if allocated_bytes(env) + headroom / 2 <= map_size(env) {
            return;
        }
        let Ok(new_size) = round_to_pages(map_size(env) + headroom) else {
            return;
        };
        let resized = self.shared.cell.with_no_readers(Duration::ZERO, |_| {
            // SAFETY: no write transaction exists (our caller holds the writer lock and has not
            // begun one) and no read transaction exists or can begin (count locked at zero).
            #[allow(unsafe_code)]
            unsafe {
                env.resize(new_size)
            }
        });
        match resized {
            Some(Ok(())) => tracing::info!(new_size, "grew the LMDB map"),
            Some(Err(err)) => tracing::warn!(%err, "could not grow the LMDB map"),
            None => {}
        }
    }

    /// Defragmentation: rewrites the data file without its free pages and reopens it in place,
    /// so the file shrinks to about the size in use. Works while the storage is shared: writes
    /// wait for the writer lock for the whole run (as etcd's defrag blocks writes), journal
    /// appends do not (a driver pauses applying meanwhile and raft goes on), reads wait only
    /// while the environment is swapped. Fails with [`StorageError::Busy`] (nothing changed) if
    /// read transactions stay open past `reader_wait`. Returns the sizes before and after.
    ///
    /// Crash safety: the compacted copy is synced before it is renamed over `data.mdb` (an
    /// atomic replace), so a crash leaves either the old file or the new one; a leftover copy
    /// is removed at the next open.
    pub fn defrag(&self, reader_wait: Duration) -> Result<(SizeInfo, SizeInfo)> {
        let before = self.size_info()?;
        let writer = self.shared.cell.lock_writer();
        // Declared after `writer`, so it is cleared before the lock is released, on every path.
        let _defragging = DefragFlag::raise(&self.shared.defragging);
        let temp = defrag_temp_path(&self.env_dir());
        {
            let opened = self
                .shared
                .cell
                .for_writer(&writer)
                .ok_or(StorageError::Closed)?;
            // Writes are held off by the writer lock, so the copy is the current state.
            copy_compacted(&opened.env, &temp)?;
        }
        let swapped = self
            .shared
            .cell
            .with_no_readers(reader_wait, |access| self.swap_in(&writer, access, &temp));
        let Some(swapped) = swapped else {
            let _ = fs::remove_file(&temp);
            return Err(StorageError::Busy(
                "defrag: read transactions stayed open; try again",
            ));
        };
        swapped?;
        drop(writer);
        let after = self.size_info()?;
        Ok((before, after))
    }

    /// Closes the environment, moves the compacted copy over the data file and opens it. If the
    /// rename fails the old file is reopened; if reopening fails the storage stays closed (the
    /// member stops; a restart opens whichever file the rename left). The published raft state
    /// and applied index stay valid: the copy holds exactly the committed data.
    fn swap_in(
        &self,
        writer: &WriterGuard<'_>,
        access: &mut super::opened::ExclusiveAccess<'_>,
        temp: &Path,
    ) -> Result<()> {
        let Some(old) = access.take(writer) else {
            return Err(StorageError::Closed);
        };
        old.env.prepare_for_closing().wait();
        let renamed = fs::rename(temp, self.env_dir().join("data.mdb"))
            .and_then(|()| File::open(self.env_dir())?.sync_all());
        let opened = open_env(&self.shared.config)?;
        access.put(writer, opened);
        renamed?;
        Ok(())
    }

    /// Offline defragmentation of a data directory no process has open.
    pub fn defrag_dir(config: &StorageConfig) -> Result<(SizeInfo, SizeInfo)> {
        LmdbStorage::open(config.clone())?.defrag(Duration::ZERO)
    }
}

/// [`Shared::defragging`], raised for the life of the value.
struct DefragFlag<'a>(&'a AtomicBool);

impl<'a> DefragFlag<'a> {
    fn raise(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::Release);
        DefragFlag(flag)
    }
}

impl Drop for DefragFlag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
