//! qraft's key space as an etcd v3 backend database (bbolt), the image the gRPC
//! `Maintenance.Snapshot` stream serves so that `etcdctl snapshot save` from qraft writes a
//! file etcd's `snapshot status` reads and etcd's `snapshot restore` + `etcd` start from,
//! with every revision, version, lease and auth record as qraft has them. The inverse of
//! `etcd_snapshot.rs`, and the same bucket map read the other way:
//!
//! | etcd bucket                 | from qraft                                              |
//! |-----------------------------|---------------------------------------------------------|
//! | `key`, `lease`, `auth`,     | the table of the same name, as is (qraft keeps etcd's   |
//! | `authUsers`, `authRoles`    | encodings: revision keys, `mvccpb`, `leasepb`, `authpb`)|
//! | `meta`                      | `consistent_index` and `term` as is (the applied index  |
//! |                             | and its term, which etcd writes with each apply);       |
//! |                             | `scheduledCompactRev`/`finishedCompactRev` re-encoded   |
//! |                             | as etcd's 17-byte revision keys                         |
//! | `alarm`, `cluster`,         | empty: membership, alarms and the cluster version are   |
//! | `members`, `members_removed`| the restored cluster's own (etcd's restore replaces the |
//! |                             | membership; qraft's member records are not etcd's JSON) |
//!
//! Every bucket comes from the one read transaction the exporter holds, so the image is a
//! point-in-time copy however long the stream takes.

use std::ops::Bound;

use qraft_core::backend::meta::{
    CONSISTENT_INDEX, FINISHED_COMPACT_REVISION, SCHEDULED_COMPACT_REVISION, TERM,
};
use qraft_core::mvcc::Revision;

use super::bbolt_image::{BboltImage, BucketSource, PairVisitor};
use super::codec::decode_u64;
use super::error::Result;
use super::lmdb::LmdbStorage;
use super::read_txn::ReadTxn;
use super::tables::Table;

/// etcd's bucket names in byte order, and the qraft table each one is read from.
const BUCKETS: [(&[u8], Option<Table>); 10] = [
    (b"alarm", None),
    (b"auth", Some(Table::Auth)),
    (b"authRoles", Some(Table::AuthRoles)),
    (b"authUsers", Some(Table::AuthUsers)),
    (b"cluster", None),
    (b"key", Some(Table::Key)),
    (b"lease", Some(Table::Lease)),
    (b"members", None),
    (b"members_removed", None),
    (b"meta", Some(Table::Meta)),
];

const NAMES: [&[u8]; BUCKETS.len()] = {
    let mut names: [&[u8]; BUCKETS.len()] = [b""; BUCKETS.len()];
    let mut i = 0;
    while i < BUCKETS.len() {
        names[i] = BUCKETS[i].0;
        i += 1;
    }
    names
};

/// The qraft tables behind etcd's buckets, read through one transaction.
struct QraftBuckets {
    read: ReadTxn,
}

impl BucketSource for QraftBuckets {
    fn names(&self) -> &[&'static [u8]] {
        &NAMES
    }

    fn scan(&self, bucket: usize, after: Option<&[u8]>, visit: &mut PairVisitor<'_>) -> Result<()> {
        let Some(&(_, Some(table))) = BUCKETS.get(bucket) else {
            return Ok(());
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        for item in self.read.range(table, start, Bound::Unbounded)? {
            let (key, value) = item?;
            let flow = if table == Table::Meta {
                match etcd_meta_value(key, value)? {
                    Some(value) => visit(key, &value),
                    None => continue,
                }
            } else {
                visit(key, value)
            };
            if flow.is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// The value etcd keeps under meta key `key`, `None` for qraft's own meta records.
fn etcd_meta_value(key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
    if key == CONSISTENT_INDEX || key == TERM {
        return Ok(Some(value.to_vec()));
    }
    if key == SCHEDULED_COMPACT_REVISION || key == FINISHED_COMPACT_REVISION {
        let main = decode_u64("compaction revision", value)? as i64;
        return Ok(Some(Revision::new(main, 0).encode(false)));
    }
    Ok(None)
}

/// An etcd-format (bbolt) image of the key space, produced in chunks of whole pages from one
/// read transaction, with memory bounded by a page per tree level (see `bbolt_image.rs`).
pub struct EtcdImageExporter {
    image: BboltImage<QraftBuckets>,
    applied_index: u64,
}

impl EtcdImageExporter {
    /// The image's exact length in bytes, known before the first chunk.
    pub fn len(&self) -> u64 {
        self.image.len()
    }

    /// Never true: an image holds at least its meta, freelist and root bucket pages.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The applied index the image reflects (its `consistent_index`).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The next chunk of about `target_bytes` (whole pages), or `None` after the last one.
    pub fn next_chunk(&mut self, target_bytes: usize) -> Result<Option<Vec<u8>>> {
        self.image.next_chunk(target_bytes)
    }
}

impl LmdbStorage {
    /// The key space as an etcd v3 snapshot database, from one read transaction; lays the
    /// image out first (one pass over the data, no copies).
    pub fn export_etcd_image(&self) -> Result<EtcdImageExporter> {
        let read = self.read()?;
        let applied_index = read.applied_index()?;
        Ok(EtcdImageExporter {
            image: BboltImage::new(QraftBuckets { read })?,
            applied_index,
        })
    }
}
