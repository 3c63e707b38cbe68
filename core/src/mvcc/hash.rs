//! `HashKV` and `Hash`: checksums of the key space, so operators (and tests) can tell whether
//! members that applied the same log hold the same data.
//!
//! `HashKV` covers every stored revision row (`Table::Key`: encoded revision → `KeyValue`)
//! with main revision `<= rev`, as a CRC-32 (IEEE). `Hash` (etcd: a hash of the whole backend)
//! covers every stored revision row and the compaction point, as a CRC-32C (Castagnoli, the
//! polynomial etcd uses). Compaction removes rows in the same write transaction that records
//! it, so members at the same applied index hash the same rows and the same compaction point.
//! Both hash qraft's own row encoding: comparable between qraft members, not with etcd's.

use crc::{CRC_32_ISCSI, Crc};

use super::revision::Revision;
use super::store::MvccStore;
use crate::backend::{ReadTxn, Table, Visit};
use crate::error::{Error, Result};

/// What `HashKV` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvHash {
    pub hash: u32,
    /// The store's compaction point when hashed (-1 if never compacted).
    pub compact_revision: i64,
    /// The revision the hash covers up to (the current revision when 0 was asked for).
    pub hash_revision: i64,
}

/// CRC-32C (Castagnoli; "iSCSI" in the CRC catalogue), as etcd's backend hash.
const CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

impl MvccStore {
    /// The `Hash` RPC's checksum: every revision row of the key space in `txn` (a consistent
    /// read snapshot, which must hold exactly what this store applied), then the compaction
    /// point. Tombstones and superseded versions count: two members agree only when their
    /// whole retained history does.
    pub fn hash<T: ReadTxn + ?Sized>(&self, txn: &T) -> Result<u32> {
        let mut digest = CASTAGNOLI.digest();
        txn.scan(Table::Key, &[], None, &mut |rev_key, value| {
            digest.update(rev_key);
            digest.update(value);
            Visit::Continue(())
        })?;
        digest.update(&self.compact_revision.to_be_bytes());
        Ok(digest.finalize())
    }

    /// Hashes the history up to `rev` (`rev <= 0`: the current revision). Errors as a read
    /// at `rev`: below the compaction point → [`Error::Compacted`], past the current revision →
    /// [`Error::FutureRevision`].
    pub fn hash_kv<T: ReadTxn + ?Sized>(&self, txn: &T, rev: i64) -> Result<KvHash> {
        let hash_revision = if rev <= 0 { self.current_revision } else { rev };
        if hash_revision > self.current_revision {
            return Err(Error::FutureRevision);
        }
        if rev > 0 && rev < self.compact_revision {
            return Err(Error::Compacted);
        }
        let end = Revision::start_key(hash_revision + 1);
        let mut hasher = crc32fast::Hasher::new();
        txn.scan(Table::Key, &[], Some(&end), &mut |rev_key, value| {
            hasher.update(rev_key);
            hasher.update(value);
            Visit::Continue(())
        })?;
        Ok(KvHash {
            hash: hasher.finalize(),
            compact_revision: self.compact_revision,
            hash_revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use qraft_proto::etcdserverpb::{CompactionRequest, DeleteRangeRequest, PutRequest};

    use super::*;
    use crate::backend::{Backend, MemBackend, WriteTxn};
    use crate::mvcc::NoLeases;

    struct Member {
        backend: MemBackend,
        store: MvccStore,
    }

    impl Member {
        fn new() -> Self {
            let backend = MemBackend::new();
            let store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
            Self { backend, store }
        }

        fn put(&mut self, key: &str, value: &str) {
            let mut txn = self.backend.write_txn().unwrap();
            let req = PutRequest {
                key: key.as_bytes().to_vec().into(),
                value: value.as_bytes().to_vec().into(),
                ..Default::default()
            };
            self.store.put(&mut txn, &req, &NoLeases).unwrap();
            txn.commit().unwrap();
        }

        fn delete(&mut self, key: &str) {
            let mut txn = self.backend.write_txn().unwrap();
            let req = DeleteRangeRequest {
                key: key.as_bytes().to_vec().into(),
                ..Default::default()
            };
            self.store.delete_range(&mut txn, &req).unwrap();
            txn.commit().unwrap();
        }

        fn compact(&mut self, revision: i64) {
            let mut txn = self.backend.write_txn().unwrap();
            let req = CompactionRequest {
                revision,
                physical: true,
            };
            self.store.compact(&mut txn, &req).unwrap();
            txn.commit().unwrap();
        }

        fn hash(&self) -> u32 {
            self.store.hash(&self.backend.read_txn().unwrap()).unwrap()
        }

        /// The hash of a store rebuilt from the backend, as after a restart.
        fn reopened_hash(&self) -> u32 {
            let txn = self.backend.read_txn().unwrap();
            MvccStore::open(&txn).unwrap().hash(&txn).unwrap()
        }
    }

    fn apply(member: &mut Member) {
        member.put("a", "1");
        member.put("b", "2");
        member.put("a", "3");
        member.delete("b");
    }

    #[test]
    fn members_that_applied_the_same_writes_hash_alike_also_after_a_restart() {
        let (mut one, mut two) = (Member::new(), Member::new());
        apply(&mut one);
        apply(&mut two);
        assert_eq!(one.hash(), two.hash());
        assert_eq!(one.hash(), one.reopened_hash());
    }

    #[test]
    fn every_write_delete_and_compaction_changes_the_hash() {
        let mut member = Member::new();
        let mut seen = vec![member.hash()];
        member.put("a", "1");
        seen.push(member.hash());
        member.put("a", "1");
        seen.push(member.hash());
        member.delete("a");
        seen.push(member.hash());
        // Compacting at 2 removes no row (a@2 is what a read at revision 2 sees): only the
        // compaction point moves.
        member.compact(2);
        seen.push(member.hash());
        let mut distinct = seen.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), seen.len(), "{seen:x?}");
        assert_eq!(member.hash(), member.reopened_hash());
    }

    #[test]
    fn the_same_value_at_another_revision_hashes_differently() {
        let (mut one, mut two) = (Member::new(), Member::new());
        one.put("a", "1");
        two.put("x", "0");
        two.delete("x");
        two.put("a", "1");
        two.compact(4);
        let current = |m: &Member| {
            let req = qraft_proto::etcdserverpb::RangeRequest {
                key: b"a".to_vec().into(),
                ..Default::default()
            };
            m.store
                .range(&m.backend.read_txn().unwrap(), &req)
                .unwrap()
                .kvs
        };
        assert_eq!(current(&one)[0].value, current(&two)[0].value);
        assert_ne!(one.hash(), two.hash());
    }
}
