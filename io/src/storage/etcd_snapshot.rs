//! etcd v3 snapshot files (the bbolt database `etcdctl snapshot save` writes) read as qraft
//! snapshot records, so `snapshot restore` moves an etcd cluster's data to qraft with every
//! revision intact, and `snapshot status` prints what etcdctl prints for the same file.
//!
//! qraft's tables keep etcd's layout (see `qraft_core::backend::Table`), so most buckets map
//! one to one:
//!
//! | etcd bucket            | qraft                                                        |
//! |------------------------|--------------------------------------------------------------|
//! | `key`                  | `key` as is: revision keys, `mvccpb.KeyValue` values          |
//! | `lease`                | `lease` as is: lease ID (8 bytes BE) → `leasepb.Lease`        |
//! | `auth`                 | `auth` as is: `authEnabled` (one byte), `authRevision` (u64)  |
//! | `authUsers`/`authRoles`| as is: name → `authpb.User` / `authpb.Role`                   |
//! | `meta`                 | the compaction revisions only, re-encoded (see below)         |
//! | the others             | dropped: membership, alarms and cluster records are the new   |
//! |                        | cluster's (as etcd's own restore does), so are the raft state |
//! |                        | and the consistent index                                      |
//!
//! etcd keeps `scheduledCompactRev` and `finishedCompactRev` as revision keys (17 bytes, the
//! main revision first); qraft keeps the main revision as 8 bytes big-endian.

use std::fs::File;

use qraft_core::backend::meta::{FINISHED_COMPACT_REVISION, SCHEDULED_COMPACT_REVISION};
use qraft_core::mvcc::Revision;

use super::bbolt_file::{BboltFile, BucketEntry, Visit};
use super::error::{Result, StorageError};
use super::snapshot::SnapshotRecord;
use super::tables::Table;

/// CRC-32C, the checksum `etcdctl snapshot status` prints.
const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// What `etcdctl snapshot status` reports for the file (etcd 3.4's definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EtcdFileStatus {
    /// CRC-32C over every bucket's name, then its keys and values, in order.
    pub hash: u32,
    /// The main revision of the last key in the `key` bucket.
    pub revision: i64,
    /// Key-value pairs in every bucket.
    pub total_keys: u64,
    /// Pages in use times the page size.
    pub total_size: u64,
}

/// Reads the etcd database in the first `db_len` bytes of `file`, calling `visit` with every
/// record qraft keeps, converted; a record is only known good once this returns `Ok`.
pub(crate) fn scan_etcd_db(
    file: File,
    db_len: u64,
    visit: &mut dyn FnMut(SnapshotRecord) -> Result<()>,
) -> Result<EtcdFileStatus> {
    let db = BboltFile::open(file, db_len)?;
    let mut digest = CASTAGNOLI.digest();
    let mut revision = 0;
    let mut total_keys = 0u64;
    db.for_each(&mut |item| match item {
        Visit::Bucket(name) => {
            digest.update(name);
            Ok(())
        }
        Visit::Entry(entry) => {
            digest.update(entry.key);
            digest.update(entry.value);
            total_keys += 1;
            if entry.bucket == b"key" {
                revision = decode_revision(entry.key)?.main;
            }
            match convert(&entry)? {
                Some(record) => visit(record),
                None => Ok(()),
            }
        }
    })?;
    Ok(EtcdFileStatus {
        hash: digest.finalize(),
        revision,
        total_keys,
        total_size: db.size(),
    })
}

fn decode_revision(key: &[u8]) -> Result<Revision> {
    Revision::decode(key)
        .map(|(rev, _tombstone)| rev)
        .map_err(|err| bad(format!("key bucket: {err}")))
}

fn bad(what: String) -> StorageError {
    StorageError::BadSnapshot(format!("etcd (bbolt) database: {what}"))
}

/// The qraft record for one etcd bucket entry, `None` for what a restore does not keep.
fn convert(entry: &BucketEntry<'_>) -> Result<Option<SnapshotRecord>> {
    let as_is = |table| {
        Some(SnapshotRecord {
            table,
            key: entry.key.to_vec(),
            value: entry.value.to_vec(),
        })
    };
    Ok(match entry.bucket {
        b"key" => as_is(Table::Key),
        b"lease" => as_is(Table::Lease),
        b"auth" => as_is(Table::Auth),
        b"authUsers" => as_is(Table::AuthUsers),
        b"authRoles" => as_is(Table::AuthRoles),
        b"meta" if [SCHEDULED_COMPACT_REVISION, FINISHED_COMPACT_REVISION].contains(&entry.key) => {
            let main = decode_revision(entry.value)?.main;
            Some(SnapshotRecord {
                table: Table::Meta,
                key: entry.key.to_vec(),
                value: main.to_be_bytes().to_vec(),
            })
        }
        _ => None,
    })
}
