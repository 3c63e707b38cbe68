//! Opening one member's LMDB environment: the directory lock, sizing the map and creating the
//! named databases. The storage schema version (meta `storageVersion`) is left to the version
//! layer (`qraft_core::version`), which reads it through the `Backend` and decides — knowing
//! `--emulated-version` — whether this binary may use the data.

use std::fs::{self, File};
use std::path::Path;

use heed::{CompactionOption, Env, EnvOpenOptions, WithoutTls};

use super::config::{StorageConfig, round_to_pages};
use super::error::{Result, StorageError};
use super::opened::Opened;
use super::permissions::{create_private_dir_all, create_private_file, private_file_options};
use super::tables::{MAX_DBS, Tables};

/// Concurrent read transactions allowed (LMDB's reader table size).
const MAX_READERS: u32 = 1024;

/// Takes the exclusive advisory lock on `<data-dir>/member/lock`; held as long as the file is.
pub(crate) fn lock_data_dir(config: &StorageConfig) -> Result<File> {
    let env_dir = config.env_dir();
    create_private_dir_all(&env_dir)?;
    let lock_path = env_dir.with_file_name("lock");
    let lock = private_file_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    if lock.try_lock().is_err() {
        return Err(StorageError::Locked(config.data_dir.clone()));
    }
    Ok(lock)
}

/// Opens the environment; the caller must hold the data directory lock.
pub(crate) fn open_env(config: &StorageConfig) -> Result<Opened> {
    let dir = config.env_dir();
    create_private_dir_all(&dir)?;
    sync_dirs(config)?;
    open_env_in(&dir, config)
}

/// Opens (creating) an environment in `dir`, sized for `config`'s quota: the member's own, or
/// a fresh one a snapshot from the leader is received into.
pub(crate) fn open_env_in(dir: &Path, config: &StorageConfig) -> Result<Opened> {
    let file_len = match fs::metadata(dir.join("data.mdb")) {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
        Err(err) => return Err(err.into()),
    };
    // A restart with a smaller quota than the data must still open: keep room past the file.
    let from_file = round_to_pages(file_len.saturating_add(config.headroom_bytes()))?;
    let map_size = config.map_size()?.max(from_file);

    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options
        .map_size(map_size)
        .max_dbs(MAX_DBS)
        .max_readers(MAX_READERS);
    // SAFETY: the memory map is only unsound if the file is modified behind LMDB's back. The
    // data directory is held by an exclusive lock file while the environment is open (see
    // `lock_data_dir`), and no unsafe flags (NO_LOCK, NO_SYNC, WRITE_MAP) are set.
    #[allow(unsafe_code)]
    let env = unsafe { options.open(dir) }?;

    let tables = Tables::create(&env)?;
    Ok(Opened { env, tables })
}

/// Makes the directory entries of a fresh data directory durable (the files' own contents are
/// synced by LMDB's commits).
fn sync_dirs(config: &StorageConfig) -> Result<()> {
    let env_dir = config.env_dir();
    let mut dir = Some(env_dir.as_path());
    while let Some(d) = dir {
        File::open(d)?.sync_all()?;
        if d == config.data_dir {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

pub(crate) fn page_size(env: &Env<WithoutTls>) -> u64 {
    u64::from(env.unnamed_database_stat().page_size)
}

/// Bytes of the map handed out so far (the high-water mark of the file).
pub(crate) fn allocated_bytes(env: &Env<WithoutTls>) -> u64 {
    (env.info().last_page_number as u64 + 1) * page_size(env)
}

pub(crate) fn map_size(env: &Env<WithoutTls>) -> u64 {
    env.info().map_size as u64
}

/// Writes a compacted copy (free pages dropped) to `path` and syncs it.
pub(crate) fn copy_compacted(env: &Env<WithoutTls>, path: &Path) -> Result<()> {
    // Created 0600 first: heed would create it with the umask's mode, and the copy replaces
    // `data.mdb`.
    drop(create_private_file(path)?);
    let file = env.copy_to_path(path, CompactionOption::Enabled)?;
    file.sync_all()?;
    Ok(())
}
