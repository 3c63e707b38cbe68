//! The MVCC store: current revision, compaction point and key index, over a [`Backend`].
//!
//! [`MvccStore`] holds only in-memory state; every operation takes the backend transaction to
//! work in, so the state machine can apply many raft entries in one write transaction (and
//! write the applied index in that same transaction). The in-memory state is updated as the
//! operations run: if the caller aborts the write transaction instead of committing it, the
//! store no longer matches the backend and must be reopened with [`MvccStore::open`].
//!
//! [`Backend`]: crate::backend::Backend

use std::collections::BTreeMap;

use prost::Message;
use qraft_proto::Bytes;
use qraft_proto::mvccpb::KeyValue;

use super::history_index::KeyIndexBuilder;
use super::key_index::{KeyIndexTree, KeyRange};
use super::revision::Revision;
use crate::backend::{BackendError, ReadTxn, Table, Visit, WriteTxn, meta};
use crate::error::{Error, Result};

/// The multi-version key-value store (etcd's `mvcc.store`).
#[derive(Debug, Clone, PartialEq)]
pub struct MvccStore {
    pub(crate) index: KeyIndexTree,
    /// Revision of the last write transaction that changed something; starts at 1.
    pub(crate) current_revision: i64,
    /// Reads below this revision fail with [`Error::Compacted`]; -1 before any compaction.
    pub(crate) compact_revision: i64,
}

/// What a read of the key space found (before the Range request's sorting and filtering).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// Number of keys in the range at the read revision, independent of the limit.
    pub count: i64,
}

pub(crate) fn decode_kv(bytes: &[u8]) -> Result<KeyValue, BackendError> {
    KeyValue::decode(bytes).map_err(|e| BackendError::Corrupt {
        table: Table::Key,
        reason: format!("undecodable KeyValue: {e}"),
    })
}

impl Default for MvccStore {
    fn default() -> Self {
        Self {
            index: KeyIndexTree::default(),
            current_revision: 1,
            compact_revision: -1,
        }
    }
}

impl MvccStore {
    /// Rebuilds the store from the backend: the key index from [`Table::Key`], the compaction
    /// point from [`Table::Meta`]. An empty backend gives a store at revision 1.
    pub fn open<T: ReadTxn + ?Sized>(txn: &T) -> Result<Self> {
        Ok(Self::open_reporting_leases(txn)?.0)
    }

    /// [`MvccStore::open`], also reporting the lease of every live key attached to one (key
    /// order), found in the same single pass over the history: the caller re-attaches keys to
    /// their leases without reading the key space a second time. Memory beyond the index is
    /// one entry per leased live key — never the values (a member opening or installing
    /// gigabytes of data must not hold them).
    pub fn open_reporting_leases<T: ReadTxn + ?Sized>(
        txn: &T,
    ) -> Result<(Self, BTreeMap<Bytes, i64>)> {
        KeyIndexBuilder::from_stored_history(txn)?.finish(txn)
    }

    /// The revision of the latest change (what response headers carry).
    pub fn current_revision(&self) -> i64 {
        self.current_revision
    }

    /// The revision of the last compaction, or -1 if the store was never compacted.
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Number of keys the index tracks (live or with retained history).
    pub fn indexed_keys(&self) -> usize {
        self.index.len()
    }

    /// Number of keys live at the current revision (one walk of the index: for a baseline
    /// at start or after a snapshot install, not for every turn).
    pub fn live_keys(&self) -> usize {
        let mut count = 0;
        let all = KeyRange::Span {
            start: &[],
            end: None,
        };
        self.index.visit(all, self.current_revision, &mut |_, _| {
            count += 1;
            true
        });
        count
    }

    /// Reads `range` at revision `rev` as seen by a reader whose current revision is
    /// `current` (inside a write transaction that already changed something, `current` is the
    /// revision being written). `rev <= 0` means `current`. `limit = 0` means no limit.
    pub(crate) fn range_keys<T: ReadTxn + ?Sized>(
        &self,
        txn: &T,
        range: KeyRange<'_>,
        rev: i64,
        current: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<RangeResult> {
        if rev > current {
            return Err(Error::FutureRevision);
        }
        let rev = if rev <= 0 { current } else { rev };
        if rev < self.compact_revision {
            return Err(Error::Compacted);
        }
        let mut count = 0i64;
        let mut revs = Vec::new();
        self.index.visit(range, rev, &mut |key, at| {
            count += 1;
            if !count_only && (limit == 0 || revs.len() < limit) {
                revs.push((key.to_vec(), at.modified));
            }
            true
        });
        let mut kvs = Vec::with_capacity(revs.len());
        for (key, modified) in revs {
            let Some(bytes) = txn.get(Table::Key, &modified.encode(false))? else {
                return Err(BackendError::Corrupt {
                    table: Table::Key,
                    reason: format!(
                        "index names revision {modified:?} of {key:02x?}, backend lacks it"
                    ),
                }
                .into());
            };
            kvs.push(decode_kv(bytes)?);
        }
        Ok(RangeResult { kvs, count })
    }

    /// Compacts the history at `rev`: afterwards reads below `rev` fail with
    /// [`Error::Compacted`], and for every key only the latest revision `<= rev` (plus
    /// everything newer) stays. Errors: `rev <= ` last compaction → [`Error::Compacted`];
    /// `rev >` current revision → [`Error::FutureRevision`].
    pub fn compact_to<T: WriteTxn + ?Sized>(&mut self, txn: &mut T, rev: i64) -> Result<()> {
        if rev <= self.compact_revision {
            return Err(Error::Compacted);
        }
        if rev > self.current_revision {
            return Err(Error::FutureRevision);
        }
        meta::put_i64(txn, meta::SCHEDULED_COMPACT_REVISION, rev)?;
        self.compact_revision = rev;
        let keep = self.index.compact(rev);
        let mut doomed = Vec::new();
        let end = Revision::start_key(rev.saturating_add(1));
        let mut failure = None;
        txn.scan(Table::Key, &[], Some(&end), &mut |rev_key, _| {
            match Revision::decode(rev_key) {
                Ok((r, _)) if !keep.contains(&r) => doomed.push(rev_key.to_vec()),
                Ok(_) => {}
                Err(e) => {
                    failure = Some(e);
                    return Visit::Break(());
                }
            }
            Visit::Continue(())
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        for rev_key in doomed {
            txn.delete(Table::Key, &rev_key)?;
        }
        meta::put_i64(txn, meta::FINISHED_COMPACT_REVISION, rev)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use qraft_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest};

    use super::*;
    use crate::backend::{Backend, MemBackend};

    fn put(store: &mut MvccStore, backend: &MemBackend, key: &str, value: &str, lease: i64) {
        let mut txn = backend.write_txn().unwrap();
        let req = PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            lease,
            ..Default::default()
        };
        store.put(&mut txn, &req, &|_| true).unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn reopening_reports_the_lease_of_each_live_key_and_keeps_versions() {
        let backend = MemBackend::new();
        let mut store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
        put(&mut store, &backend, "a", "1", 7);
        put(&mut store, &backend, "b", "1", 7);
        put(&mut store, &backend, "b", "2", 0); // b leaves its lease
        put(&mut store, &backend, "c", "1", 8);
        put(&mut store, &backend, "d", "1", 9);
        {
            let mut txn = backend.write_txn().unwrap();
            let req = DeleteRangeRequest {
                key: b"d".to_vec().into(),
                ..Default::default()
            };
            store.delete_range(&mut txn, &req).unwrap();
            txn.commit().unwrap();
        }
        put(&mut store, &backend, "c", "2", 9); // c moves to another lease

        let txn = backend.read_txn().unwrap();
        let (reopened, leased) = MvccStore::open_reporting_leases(&txn).unwrap();
        let leased: Vec<(&[u8], i64)> = leased.iter().map(|(k, l)| (k.as_ref(), *l)).collect();
        assert_eq!(leased, vec![(&b"a"[..], 7), (&b"c"[..], 9)]);
        assert_eq!(reopened.current_revision(), store.current_revision());
        let all = RangeRequest {
            key: vec![0].into(),
            range_end: vec![0].into(),
            ..Default::default()
        };
        assert_eq!(
            reopened.range(&txn, &all).unwrap(),
            store.range(&txn, &all).unwrap()
        );
    }
}
