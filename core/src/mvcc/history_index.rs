//! Building the key index from the key history ([`Table::Key`]), one record at a time in
//! revision order.
//!
//! Opening a store feeds it every record of its backend's history. A member receiving a
//! snapshot from the leader feeds it the history records as they arrive (the leader sends the
//! table in key order, which is revision order), so that the state reopened after the install
//! takes the finished index instead of reading the whole key space again: at millions of keys
//! that pass is seconds of a join's critical path. Either way the index comes out the same (a
//! test below checks it), since it is a function of the records alone.
//!
//! Memory: the index itself (O(keys), as etcd's treeIndex) and one entry per leased live key
//! — never the values.

use std::collections::BTreeMap;

use prost::Message;
use qraft_proto::Bytes;

use super::key_index::KeyIndexTree;
use super::revision::Revision;
use super::store::MvccStore;
use crate::backend::{BackendError, ReadTxn, Table, Visit, meta};
use crate::error::Result;

/// The fields of a stored `KeyValue` the key index and lease links need: the same tags as
/// etcd's `mvccpb.KeyValue` without `value` (tag 5) and `mod_revision` (the record's own
/// revision), which prost skips without copying: the pass is proportional to the keys, not to
/// the data.
#[derive(Clone, PartialEq, prost::Message)]
struct IndexedKeyValue {
    #[prost(bytes = "bytes", tag = "1")]
    key: Bytes,
    #[prost(int64, tag = "2")]
    create_revision: i64,
    #[prost(int64, tag = "4")]
    version: i64,
    #[prost(int64, tag = "6")]
    lease: i64,
}

/// A key index under construction from history records given in strictly increasing revision
/// order (see the module documentation). Finished into a store by [`KeyIndexBuilder::finish`].
#[derive(Debug, Clone, Default)]
pub struct KeyIndexBuilder {
    index: KeyIndexTree,
    /// The last record's revision: the next one must be above it.
    last: Option<Revision>,
    /// The lease of every live key attached to one, in key order.
    leased: BTreeMap<Bytes, i64>,
}

impl KeyIndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder fed every record of `txn`'s stored history, in the table's key order (which
    /// is revision order): what opening a store does.
    pub fn from_stored_history<T: ReadTxn + ?Sized>(txn: &T) -> Result<Self> {
        let mut builder = Self::new();
        let mut failure = None;
        txn.scan(
            Table::Key,
            &[],
            None,
            &mut |rev_key, value| match builder.add(rev_key, value) {
                Ok(()) => Visit::Continue(()),
                Err(e) => {
                    failure = Some(e);
                    Visit::Break(())
                }
            },
        )?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(builder),
        }
    }

    /// Adds the history record stored under `rev_key` with `value` (a `KeyValue`). A record
    /// that cannot be decoded, or that does not come after the previous one, is an error: the
    /// builder then no longer describes any history and must be dropped.
    pub fn add(&mut self, rev_key: &[u8], value: &[u8]) -> Result<(), BackendError> {
        let (rev, tombstone) = Revision::decode(rev_key)?;
        if self.last.is_some_and(|last| rev <= last) {
            return Err(BackendError::Corrupt {
                table: Table::Key,
                reason: format!("history record {rev:?} after {:?}", self.last),
            });
        }
        let kv = IndexedKeyValue::decode(value).map_err(|e| BackendError::Corrupt {
            table: Table::Key,
            reason: format!("undecodable KeyValue: {e}"),
        })?;
        // In revision order the last record seen for a key is its live one.
        if tombstone || kv.lease == 0 {
            self.leased.remove(kv.key.as_ref());
        } else {
            self.leased.insert(kv.key.clone(), kv.lease);
        }
        if tombstone {
            self.index.tombstone(&kv.key, rev);
        } else {
            self.index
                .restore_put(&kv.key, rev, kv.create_revision, kv.version);
        }
        self.last = Some(rev);
        Ok(())
    }

    /// Number of keys indexed so far (live or with history).
    pub fn indexed_keys(&self) -> usize {
        self.index.len()
    }

    /// The store over the history added, with its compaction point from [`Table::Meta`] of
    /// `txn` (the backend that holds that history), and the lease of every live key attached to
    /// one (key order).
    pub fn finish<T: ReadTxn + ?Sized>(self, txn: &T) -> Result<(MvccStore, BTreeMap<Bytes, i64>)> {
        let finished = meta::get_i64(txn, meta::FINISHED_COMPACT_REVISION)?.unwrap_or(-1);
        // Compaction runs in the write transaction that schedules it, so a scheduled revision
        // above the finished one only comes from another writer; treating it as done is safe
        // because reads below it are refused and the next compaction removes what is left.
        let scheduled = meta::get_i64(txn, meta::SCHEDULED_COMPACT_REVISION)?.unwrap_or(-1);
        let compact_revision = finished.max(scheduled);
        let max_main = self.last.map_or(0, |rev| rev.main);
        let store = MvccStore {
            index: self.index,
            current_revision: max_main.max(compact_revision).max(1),
            compact_revision,
        };
        Ok((store, self.leased))
    }
}

#[cfg(test)]
mod tests {
    use qraft_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest};

    use super::*;
    use crate::backend::{Backend, MemBackend, Visit, WriteTxn};

    fn history() -> (MemBackend, MvccStore) {
        let backend = MemBackend::new();
        let mut store = MvccStore::default();
        let mut txn = backend.write_txn().unwrap();
        for (key, lease) in [("a", 7), ("b", 0), ("a", 0), ("c", 8), ("b", 9)] {
            let req = PutRequest {
                key: key.as_bytes().to_vec().into(),
                value: b"v".to_vec().into(),
                lease,
                ..Default::default()
            };
            store.put(&mut txn, &req, &|_| true).unwrap();
        }
        let req = DeleteRangeRequest {
            key: b"c".to_vec().into(),
            ..Default::default()
        };
        store.delete_range(&mut txn, &req).unwrap();
        store.compact_to(&mut txn, 7).unwrap();
        txn.commit().unwrap();
        (backend, store)
    }

    fn records(backend: &MemBackend) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        let txn = backend.read_txn().unwrap();
        txn.scan(Table::Key, &[], None, &mut |k, v| {
            all.push((k.to_vec(), v.to_vec()));
            Visit::Continue(())
        })
        .unwrap();
        all
    }

    /// Fed the history's records one by one (as a snapshot delivers them), the builder gives
    /// the store and the lease links that opening the backend gives, and it reads as the
    /// store that wrote the history.
    #[test]
    fn records_in_revision_order_build_the_index_opening_builds() {
        let (backend, written) = history();
        let mut builder = KeyIndexBuilder::new();
        for (key, value) in records(&backend) {
            builder.add(&key, &value).unwrap();
        }
        let indexed = builder.indexed_keys();
        let txn = backend.read_txn().unwrap();
        let (built, leased) = builder.finish(&txn).unwrap();
        let (opened, opened_leased) = MvccStore::open_reporting_leases(&txn).unwrap();
        assert_eq!(built, opened);
        assert_eq!((indexed, built.indexed_keys()), (3, 3));
        assert_eq!(leased, opened_leased);
        let leased: Vec<(&[u8], i64)> = leased.iter().map(|(k, l)| (k.as_ref(), *l)).collect();
        assert_eq!(leased, vec![(&b"b"[..], 9)]);
        assert_eq!((built.current_revision(), built.compact_revision()), (7, 7));
        let all = RangeRequest {
            key: vec![0].into(),
            range_end: vec![0].into(),
            ..Default::default()
        };
        assert_eq!(
            built.range(&txn, &all).unwrap(),
            written.range(&txn, &all).unwrap()
        );
    }

    #[test]
    fn a_record_out_of_revision_order_is_refused() {
        let (backend, _) = history();
        let all = records(&backend);
        let mut builder = KeyIndexBuilder::new();
        builder.add(&all[1].0, &all[1].1).unwrap();
        for (key, value) in [&all[0], &all[1]] {
            assert!(matches!(
                builder.add(key, value),
                Err(BackendError::Corrupt {
                    table: Table::Key,
                    ..
                })
            ));
        }
    }
}
