//! How a member's LMDB environment is sized and where it lives.

use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};

/// etcd's default backend quota (`--quota-backend-bytes` 0 means this).
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Where the environment lives inside `--data-dir`.
pub const LMDB_SUBDIR: &str = "member/lmdb";

/// Where the raft journal lives inside `--data-dir`.
pub const JOURNAL_SUBDIR: &str = "member/journal";

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The member's `--data-dir`; the environment is `<data_dir>/member/lmdb`.
    pub data_dir: PathBuf,
    /// `--quota-backend-bytes`: the size of data past which the member raises the NOSPACE alarm
    /// (0 = [`DEFAULT_QUOTA_BYTES`]). The memory map is larger than the quota (see
    /// [`StorageConfig::headroom_bytes`]) so that deletes, compaction and raft appends still
    /// succeed once the quota is exceeded, as etcd lets them.
    pub quota_bytes: u64,
}

impl StorageConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StorageConfig {
            data_dir: data_dir.into(),
            quota_bytes: 0,
        }
    }

    pub fn with_quota_bytes(mut self, quota_bytes: u64) -> Self {
        self.quota_bytes = quota_bytes;
        self
    }

    pub fn env_dir(&self) -> PathBuf {
        self.data_dir.join(LMDB_SUBDIR)
    }

    /// The raft journal's segments: `<data_dir>/member/journal`.
    pub fn journal_dir(&self) -> PathBuf {
        self.data_dir.join(JOURNAL_SUBDIR)
    }

    /// The quota with 0 replaced by the default.
    pub fn effective_quota(&self) -> u64 {
        if self.quota_bytes == 0 {
            DEFAULT_QUOTA_BYTES
        } else {
            self.quota_bytes
        }
    }

    /// Extra map space past the quota: a quarter of it, at least 64 MiB, at most 1 GiB. The map
    /// is only reserved address space; the file grows as pages are used.
    pub fn headroom_bytes(&self) -> u64 {
        (self.effective_quota() / 4).clamp(64 << 20, 1 << 30)
    }

    /// The initial map size: quota + headroom, rounded up to whole pages.
    pub fn map_size(&self) -> Result<usize> {
        let bytes = self.effective_quota().saturating_add(self.headroom_bytes());
        round_to_pages(bytes)
    }
}

pub(crate) fn round_to_pages(bytes: u64) -> Result<usize> {
    const PAGE: u64 = 64 * 1024; // a multiple of every page size LMDB runs with
    let rounded = bytes.div_ceil(PAGE).saturating_mul(PAGE);
    usize::try_from(rounded)
        .map_err(|_| StorageError::Config(format!("map size {rounded} does not fit in memory")))
}

pub(crate) fn defrag_temp_path(env_dir: &Path) -> PathBuf {
    env_dir.join("data.mdb.defrag")
}
