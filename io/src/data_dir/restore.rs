//! `snapshot restore`: a data directory for one member of a **new** cluster, built from a
//! snapshot file (etcdutl's meaning): qraft's own, or etcd's (the bbolt file `etcdctl snapshot
//! save` writes against etcd, read as qraft records by `storage::etcd_snapshot`), so a cluster
//! moves from etcd to qraft with its revisions, leases and auth as they were.
//!
//! The core decides which records of the snapshot are kept
//! ([`qraft_core::server::kept_by_restore`]: the key space, leases, auth; not the membership,
//! the raft records, alarms or cluster records). Written here in their place: the membership
//! (the members of `--initial-cluster`, with the IDs a new cluster's bootstrap gives them;
//! nobody removed yet), the raft state (a fresh log whose snapshot at index 1, term 1 holds
//! that configuration, exactly as a bootstrap writes it, with the data applied at that index),
//! the member's identity.
//!
//! Every member restored from the same file with the same flags holds the same state at index
//! 1, which is what raft requires of members that start from a common snapshot.
//!
//! Crash safety: the directory is built under a temporary name beside the target
//! (`.<name>.restoring`), synced, and renamed to the target only when complete, so the target
//! either does not exist (or is the empty directory it was) or is whole. A leftover temporary
//! directory from a crashed restore is removed by the next restore to the same target. On
//! error nothing is left behind. Memory stays bounded: records are read one at a time and
//! written in transactions of at most [`BATCH_BYTES`].

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use prost::Message as _;
use qraft_core::backend::meta::{CONF_STATE, TERM};
use qraft_core::server::{initial_members, kept_by_restore};
use qraft_proto::qraftpb::MemberRecord;

use super::bootstrap::{InitialMember, write_members};
use crate::storage::{
    DigestPolicy, LmdbStorage, MemberIdentity, SnapshotFileSummary, SnapshotRecord, StorageConfig,
    StorageError, Table, WriteBatch, scan_snapshot_file,
};

/// Bytes of records per write transaction while restoring (LMDB keeps a transaction's dirty
/// pages in memory until it spills them).
pub const BATCH_BYTES: usize = 16 << 20;

/// The raft index (and term) of the configuration a restored member starts from, as bootstrap.
const START_INDEX: u64 = 1;

/// What to restore where, for which member.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    pub snapshot: PathBuf,
    pub data_dir: PathBuf,
    /// This member's ID and the new cluster's, derived from the flags as bootstrap does.
    pub identity: MemberIdentity,
    /// Every member of the new cluster (`--initial-cluster`), IDs included.
    pub members: Vec<InitialMember>,
    /// Skip the SHA-256 of an etcd-style file (a qraft stream's CRC-32 is always checked); an
    /// etcd database without one needs it, as in etcd.
    pub skip_hash_check: bool,
}

/// Why a restore refused or failed; nothing was left at the target.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("data-dir {0:?} not empty or could not be read")]
    TargetNotEmpty(PathBuf),
    #[error("{}: {source}", path.display())]
    Snapshot {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error("building {}: {source}", path.display())]
    Build {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Restores `plan.snapshot` into `plan.data_dir` (see the module doc).
pub fn restore_data_dir(plan: &RestorePlan) -> Result<SnapshotFileSummary, RestoreError> {
    check_target(&plan.data_dir)?;
    let temp = temp_dir_for(&plan.data_dir);
    remove_dir_if_present(&temp)?;
    let result = build(plan, &temp).and_then(|summary| {
        sync_tree(&temp)?;
        rename_into_place(&temp, &plan.data_dir)?;
        Ok(summary)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&temp);
    }
    result
}

/// etcdutl's rule: the target may be missing or an empty directory.
fn check_target(target: &Path) -> Result<(), RestoreError> {
    let empty = match fs::read_dir(target) {
        Ok(mut entries) => entries.next().is_none(),
        Err(err) => err.kind() == std::io::ErrorKind::NotFound,
    };
    if empty {
        Ok(())
    } else {
        Err(RestoreError::TargetNotEmpty(target.to_path_buf()))
    }
}

/// `<parent>/.<name>.restoring`: beside the target (same file system, so the rename is
/// atomic) and never taken for a member's data dir.
pub fn temp_dir_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    target.with_file_name(format!(".{name}.restoring"))
}

fn remove_dir_if_present(dir: &Path) -> Result<(), RestoreError> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(RestoreError::Io {
            what: "removing the leftover",
            path: dir.to_path_buf(),
            source: err,
        }),
        _ => Ok(()),
    }
}

fn build(plan: &RestorePlan, temp: &Path) -> Result<SnapshotFileSummary, RestoreError> {
    let build_err = |source| RestoreError::Build {
        path: temp.to_path_buf(),
        source,
    };
    let storage = LmdbStorage::open(StorageConfig::new(temp)).map_err(build_err)?;
    let mut batch: Option<WriteBatch<'_>> = None;
    let mut batch_bytes = 0usize;
    let mut build_failure = None;
    let policy = if plan.skip_hash_check {
        DigestPolicy::Skip
    } else {
        DigestPolicy::Required
    };
    let scanned = scan_snapshot_file(&plan.snapshot, policy, |record| {
        if !kept_by_restore(record.table, &record.key) {
            return Ok(());
        }
        let result = put_record(&storage, &mut batch, &mut batch_bytes, &record);
        // Keep a failure to write apart from a failure to read, for the message.
        result.map_err(|err| {
            let text = err.to_string();
            build_failure = Some(err);
            StorageError::Config(text)
        })
    });
    let summary = match scanned {
        Ok(summary) => summary,
        Err(source) => {
            return Err(match build_failure {
                Some(err) => build_err(err),
                None => RestoreError::Snapshot {
                    path: plan.snapshot.clone(),
                    source,
                },
            });
        }
    };
    if let Some(last) = batch.take() {
        last.commit().map_err(build_err)?;
    }
    storage
        .write(|batch| start_new_cluster(batch, plan))
        .map_err(build_err)?;
    Ok(summary)
}

/// Writes one record into the open batch (beginning one if needed), committing it once it
/// holds [`BATCH_BYTES`].
fn put_record<'s>(
    storage: &'s LmdbStorage,
    batch: &mut Option<WriteBatch<'s>>,
    batch_bytes: &mut usize,
    record: &SnapshotRecord,
) -> Result<(), StorageError> {
    let open = match batch {
        Some(open) => open,
        None => batch.insert(storage.begin_write()?),
    };
    // Both kinds of file hold each table in key order (a qraft stream as exported, an etcd
    // database as its B+tree walks): appended, the pages fill up instead of splitting
    // half-empty (docs/storage.md, "Page fill"); a key out of order is stored the usual way.
    open.put_at_end(record.table, &record.key, &record.value)?;
    *batch_bytes += record.key.len() + record.value.len();
    if *batch_bytes >= BATCH_BYTES {
        *batch_bytes = 0;
        if let Some(full) = batch.take() {
            full.commit()?;
        }
    }
    Ok(())
}

/// The raft state, membership and identity of a new cluster, over the restored data.
fn start_new_cluster(batch: &mut WriteBatch<'_>, plan: &RestorePlan) -> Result<(), StorageError> {
    let records: Vec<MemberRecord> = plan.members.iter().map(InitialMember::record).collect();
    let initial = initial_members(&records);
    let conf_state = initial.conf_state.clone();
    batch.bootstrap(conf_state.clone())?;
    write_members(batch, &initial)?;
    batch.set_applied_index(START_INDEX)?;
    batch.put(Table::Meta, TERM, &START_INDEX.to_be_bytes())?;
    batch.put(Table::Meta, CONF_STATE, &conf_state.encode_to_vec())?;
    batch.set_identity(plan.identity)
}

/// Makes the built directory durable before it gets its final name: LMDB synced its data
/// file at each commit; the directory entries of the files it created are synced here.
fn sync_tree(dir: &Path) -> Result<(), RestoreError> {
    for sub in [
        crate::storage::LMDB_SUBDIR,
        crate::storage::JOURNAL_SUBDIR,
        "member",
        "",
    ] {
        let path = dir.join(sub);
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|source| RestoreError::Io {
                what: "syncing",
                path,
                source,
            })?;
    }
    Ok(())
}

fn rename_into_place(temp: &Path, target: &Path) -> Result<(), RestoreError> {
    let io_err = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| RestoreError::Io { what, path, source }
    };
    // rename(2) replaces an empty directory; a missing one is simply created.
    fs::rename(temp, target).map_err(io_err("renaming into place", target))?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(&parent)
        .and_then(|f| f.sync_all())
        .map_err(io_err("syncing", &parent))
}
