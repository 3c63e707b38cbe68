//! An in-memory [`Backend`] for tests, simulations and embedders that need no durability.
//!
//! Committed state is one `Arc<BTreeMap>` per table. A read transaction clones those `Arc`s, so
//! it is a true snapshot. A write transaction records its changes in an overlay and applies them
//! on commit with `Arc::make_mut`: in place when no reader holds the table, otherwise the table is
//! copied first (copy-on-write), which keeps open snapshots intact at the cost of a copy.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::collections::btree_map;
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

use super::{Backend, BackendError, BackendSpace, ReadTxn, Table, Visit, WriteTxn};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;
type Tables = [Arc<Map>; Table::ALL.len()];

fn index(table: Table) -> usize {
    table as usize
}

fn bounds<'k>(start: &'k [u8], end: Option<&'k [u8]>) -> (Bound<&'k [u8]>, Bound<&'k [u8]>) {
    let end = match end {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (Bound::Included(start), end)
}

fn empty_range(start: &[u8], end: Option<&[u8]>) -> bool {
    end.is_some_and(|end| end <= start)
}

/// In-memory backend. Not `Sync`: one thread drives it (read snapshots are `Send`).
#[derive(Default)]
pub struct MemBackend {
    committed: RefCell<Tables>,
    writing: Cell<bool>,
    /// The quota [`Backend::space`] reports against; `None`: no quota.
    quota_bytes: Cell<Option<u64>>,
}

impl MemBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries committed in `table` (for tests and memory accounting).
    pub fn len(&self, table: Table) -> usize {
        self.committed.borrow()[index(table)].len()
    }

    /// Whether `table` has no committed entries.
    pub fn is_empty(&self, table: Table) -> bool {
        self.len(table) == 0
    }

    /// Gives the backend a quota (`None`: none): [`Backend::space`] then reports the committed
    /// keys' and values' bytes against it, so the core's quota alarm can be exercised in memory.
    pub fn set_quota(&self, quota_bytes: Option<u64>) {
        self.quota_bytes.set(quota_bytes);
    }
}

impl Backend for MemBackend {
    type ReadTxn<'a> = MemReadTxn;
    type WriteTxn<'a> = MemWriteTxn<'a>;

    fn read_txn(&self) -> Result<MemReadTxn, BackendError> {
        Ok(MemReadTxn {
            tables: self.committed.borrow().clone(),
        })
    }

    fn write_txn(&self) -> Result<MemWriteTxn<'_>, BackendError> {
        if self.writing.replace(true) {
            return Err(BackendError::WriteTxnActive);
        }
        Ok(MemWriteTxn {
            backend: self,
            base: Some(self.committed.borrow().clone()),
            overlay: Default::default(),
        })
    }

    fn space(&self) -> Result<Option<BackendSpace>, BackendError> {
        let Some(quota_bytes) = self.quota_bytes.get() else {
            return Ok(None);
        };
        let in_use_bytes = self
            .committed
            .borrow()
            .iter()
            .flat_map(|table| table.iter())
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        Ok(Some(BackendSpace {
            file_bytes: in_use_bytes,
            in_use_bytes,
            quota_bytes,
        }))
    }
}

/// A snapshot of a [`MemBackend`].
pub struct MemReadTxn {
    tables: Tables,
}

impl ReadTxn for MemReadTxn {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, BackendError> {
        Ok(self.tables[index(table)].get(key).map(Vec::as_slice))
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Visit,
    ) -> Result<(), BackendError> {
        if empty_range(start, end) {
            return Ok(());
        }
        for (k, v) in self.tables[index(table)].range::<[u8], _>(bounds(start, end)) {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// The write transaction of a [`MemBackend`]. Dropping it without commit aborts it.
pub struct MemWriteTxn<'a> {
    backend: &'a MemBackend,
    /// The committed state when the transaction began (always `Some` until commit).
    base: Option<Tables>,
    /// Uncommitted changes per table; `None` marks a deletion.
    overlay: [BTreeMap<Vec<u8>, Option<Vec<u8>>>; Table::ALL.len()],
}

impl MemWriteTxn<'_> {
    fn base(&self, table: Table) -> &Map {
        match &self.base {
            Some(tables) => &tables[index(table)],
            None => unreachable!("base is only taken by commit, which consumes the txn"),
        }
    }
}

impl Drop for MemWriteTxn<'_> {
    fn drop(&mut self) {
        self.backend.writing.set(false);
    }
}

impl ReadTxn for MemWriteTxn<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, BackendError> {
        match self.overlay[index(table)].get(key) {
            Some(change) => Ok(change.as_deref()),
            None => Ok(self.base(table).get(key).map(Vec::as_slice)),
        }
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Visit,
    ) -> Result<(), BackendError> {
        if empty_range(start, end) {
            return Ok(());
        }
        let base = self.base(table).range::<[u8], _>(bounds(start, end));
        let overlay = self.overlay[index(table)].range::<[u8], _>(bounds(start, end));
        for (k, v) in Merged::new(base, overlay) {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }
}

impl WriteTxn for MemWriteTxn<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), BackendError> {
        self.overlay[index(table)].insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// A sorted map has no pages to fill: the same as `put`.
    fn put_at_end(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), BackendError> {
        self.put(table, key, value)
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, BackendError> {
        let existed = self.get(table, key)?.is_some();
        if existed {
            self.overlay[index(table)].insert(key.to_vec(), None);
        }
        Ok(existed)
    }

    fn commit(mut self) -> Result<(), BackendError> {
        // Release our own reference to the base first so unshared tables are updated in place.
        self.base = None;
        let overlay = std::mem::take(&mut self.overlay);
        let mut committed = self.backend.committed.borrow_mut();
        for (table, changes) in committed.iter_mut().zip(overlay) {
            if changes.is_empty() {
                continue;
            }
            let table = Arc::make_mut(table);
            for (key, change) in changes {
                match change {
                    Some(value) => table.insert(key, value),
                    None => table.remove(&key),
                };
            }
        }
        Ok(())
    }
}

/// Ascending merge of committed entries and overlay changes; the overlay wins on equal keys and
/// its deletions hide committed entries.
struct Merged<'a> {
    base: Peekable<btree_map::Range<'a, Vec<u8>, Vec<u8>>>,
    overlay: Peekable<btree_map::Range<'a, Vec<u8>, Option<Vec<u8>>>>,
}

impl<'a> Merged<'a> {
    fn new(
        base: btree_map::Range<'a, Vec<u8>, Vec<u8>>,
        overlay: btree_map::Range<'a, Vec<u8>, Option<Vec<u8>>>,
    ) -> Self {
        Self {
            base: base.peekable(),
            overlay: overlay.peekable(),
        }
    }
}

impl<'a> Iterator for Merged<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_overlay = match (self.base.peek(), self.overlay.peek()) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((ok, _))) => {
                    if ok <= bk {
                        if ok == bk {
                            self.base.next();
                        }
                        true
                    } else {
                        false
                    }
                }
            };
            if take_overlay {
                let (k, change) = self.overlay.next()?;
                if let Some(v) = change {
                    return Some((k.as_slice(), v.as_slice()));
                }
            } else {
                let (k, v) = self.base.next()?;
                return Some((k.as_slice(), v.as_slice()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect<T: ReadTxn + ?Sized>(
        txn: &T,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        txn.scan(Table::Key, start, end, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Visit::Continue(())
        })
        .unwrap();
        out
    }

    #[test]
    fn write_txn_sees_own_writes_and_commit_publishes_them() {
        let b = MemBackend::new();
        let mut w = b.write_txn().unwrap();
        w.put(Table::Key, b"a", b"1").unwrap();
        w.put(Table::Key, b"c", b"3").unwrap();
        assert_eq!(w.get(Table::Key, b"a").unwrap(), Some(&b"1"[..]));
        assert_eq!(b.read_txn().unwrap().get(Table::Key, b"a").unwrap(), None);
        w.commit().unwrap();
        let r = b.read_txn().unwrap();
        assert_eq!(collect(&r, b"", None).len(), 2);
        assert_eq!(
            r.get(Table::Meta, b"a").unwrap(),
            None,
            "tables are separate"
        );
    }

    #[test]
    fn dropped_write_txn_is_aborted_and_releases_the_writer_slot() {
        let b = MemBackend::new();
        {
            let mut w = b.write_txn().unwrap();
            assert_eq!(b.write_txn().err(), Some(BackendError::WriteTxnActive));
            w.put(Table::Key, b"a", b"1").unwrap();
        }
        assert_eq!(b.read_txn().unwrap().get(Table::Key, b"a").unwrap(), None);
        assert!(b.write_txn().is_ok());
    }

    #[test]
    fn read_txn_is_a_snapshot() {
        let b = MemBackend::new();
        let mut w = b.write_txn().unwrap();
        w.put(Table::Key, b"a", b"1").unwrap();
        w.commit().unwrap();
        let before = b.read_txn().unwrap();
        let mut w = b.write_txn().unwrap();
        w.put(Table::Key, b"a", b"2").unwrap();
        w.put(Table::Key, b"b", b"2").unwrap();
        w.commit().unwrap();
        assert_eq!(before.get(Table::Key, b"a").unwrap(), Some(&b"1"[..]));
        assert_eq!(collect(&before, b"", None).len(), 1);
        assert_eq!(
            b.read_txn().unwrap().get(Table::Key, b"a").unwrap(),
            Some(&b"2"[..])
        );
    }

    #[test]
    fn scan_merges_overlay_with_committed_state() {
        let b = MemBackend::new();
        let mut w = b.write_txn().unwrap();
        for k in [b"a", b"b", b"c", b"d"] {
            w.put(Table::Key, k, b"old").unwrap();
        }
        w.commit().unwrap();
        let mut w = b.write_txn().unwrap();
        assert!(w.delete(Table::Key, b"b").unwrap());
        assert!(!w.delete(Table::Key, b"zz").unwrap());
        w.put(Table::Key, b"c", b"new").unwrap();
        w.put(Table::Key, b"bb", b"new").unwrap();
        let got = collect(&w, b"a", Some(b"d"));
        let want: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"a".to_vec(), b"old".to_vec()),
            (b"bb".to_vec(), b"new".to_vec()),
            (b"c".to_vec(), b"new".to_vec()),
        ];
        assert_eq!(got, want);
        let mut first = None;
        w.scan(Table::Key, b"", None, &mut |k, _| {
            first = Some(k.to_vec());
            Visit::Break(())
        })
        .unwrap();
        assert_eq!(first, Some(b"a".to_vec()));
        assert!(collect(&w, b"d", Some(b"a")).is_empty());
    }
}
