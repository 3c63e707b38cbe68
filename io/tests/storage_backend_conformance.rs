//! The `Backend` contract (core's MVCC storage trait), checked on core's `MemBackend` and on the
//! LMDB storage with the same scenarios; the LMDB runs also reopen the environment.

use std::ops::ControlFlow;

use qraft_core::backend::{Backend, BackendError, MemBackend, ReadTxn, Table, WriteTxn, meta};
use qraft_io::storage::{LmdbStorage, StorageConfig};
use tempfile::TempDir;

fn collect<T: ReadTxn + ?Sized>(txn: &T, table: Table, start: &[u8], end: Option<&[u8]>) -> Pairs {
    let mut out = Vec::new();
    txn.scan(table, start, end, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        ControlFlow::Continue(())
    })
    .expect("scan");
    out
}

fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

fn write_txn_sees_own_writes_and_commit_publishes_them(b: &impl Backend) {
    let mut w = b.write_txn().expect("write");
    w.put(Table::Key, b"a", b"1").expect("put");
    assert_eq!(w.get(Table::Key, b"a").expect("get"), Some(&b"1"[..]));
    {
        let r = b.read_txn().expect("read");
        assert_eq!(
            r.get(Table::Key, b"a").expect("get"),
            None,
            "uncommitted is invisible"
        );
    }
    w.commit().expect("commit");
    let r = b.read_txn().expect("read");
    assert_eq!(r.get(Table::Key, b"a").expect("get"), Some(&b"1"[..]));
}

fn dropped_write_txn_is_aborted_and_one_writer_at_a_time(b: &impl Backend) {
    {
        let mut w = b.write_txn().expect("write");
        w.put(Table::Lease, b"x", b"y").expect("put");
        assert!(matches!(b.write_txn(), Err(BackendError::WriteTxnActive)));
    }
    let r = b.read_txn().expect("read");
    assert_eq!(r.get(Table::Lease, b"x").expect("get"), None);
    drop(r);
    let w = b.write_txn().expect("the slot is free again");
    drop(w);
}

fn read_txn_is_a_snapshot(b: &impl Backend) {
    let mut w = b.write_txn().expect("write");
    w.put(Table::Key, b"k", b"old").expect("put");
    w.commit().expect("commit");
    let before = b.read_txn().expect("read");
    let mut w = b.write_txn().expect("write");
    w.put(Table::Key, b"k", b"new").expect("put");
    w.put(Table::Key, b"k2", b"v").expect("put");
    w.commit().expect("commit");
    assert_eq!(
        before.get(Table::Key, b"k").expect("get"),
        Some(&b"old"[..])
    );
    assert_eq!(
        collect(&before, Table::Key, b"", None),
        vec![kv("k", "old")]
    );
    let after = b.read_txn().expect("read");
    assert_eq!(
        collect(&after, Table::Key, b"", None),
        vec![kv("k", "new"), kv("k2", "v")]
    );
}

fn scan_orders_bounds_and_stops(b: &impl Backend) {
    let mut w = b.write_txn().expect("write");
    for k in ["b", "a", "c", "ab", "d"] {
        w.put(Table::AuthUsers, k.as_bytes(), k.to_uppercase().as_bytes())
            .expect("put");
    }
    w.put(Table::AuthRoles, b"a", b"role").expect("put");
    assert!(w.delete(Table::AuthUsers, b"d").expect("delete"));
    assert!(!w.delete(Table::AuthUsers, b"zz").expect("delete"));
    let keys = |t: &dyn ReadTxn, s: &[u8], e: Option<&[u8]>| {
        collect(t, Table::AuthUsers, s, e)
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).expect("utf8"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&w, b"", None),
        ["a", "ab", "b", "c"],
        "own writes, in order"
    );
    w.commit().expect("commit");
    let r = b.read_txn().expect("read");
    assert_eq!(
        keys(&r, b"ab", Some(b"c")),
        ["ab", "b"],
        "start inclusive, end exclusive"
    );
    assert_eq!(
        keys(&r, b"c", Some(b"a")),
        Vec::<String>::new(),
        "empty range"
    );
    let mut seen = 0;
    r.scan(Table::AuthUsers, b"", None, &mut |_, _| {
        seen += 1;
        if seen == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .expect("scan");
    assert_eq!(seen, 2, "break stops the scan");
    assert_eq!(
        collect(&r, Table::AuthRoles, b"", None),
        vec![kv("a", "role")],
        "tables are separate"
    );
    assert_eq!(
        meta::get_u64(&r, meta::CONSISTENT_INDEX).expect("meta"),
        None
    );
}

fn meta_helpers_round_trip(b: &impl Backend) {
    let mut w = b.write_txn().expect("write");
    meta::put_u64(&mut w, meta::CONSISTENT_INDEX, 42).expect("put");
    meta::put_i64(&mut w, meta::FINISHED_COMPACT_REVISION, -1).expect("put");
    w.commit().expect("commit");
    let r = b.read_txn().expect("read");
    assert_eq!(
        meta::get_u64(&r, meta::CONSISTENT_INDEX).expect("get"),
        Some(42)
    );
    assert_eq!(
        meta::get_i64(&r, meta::FINISHED_COMPACT_REVISION).expect("get"),
        Some(-1)
    );
}

macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod mem {
            use super::*;
            $(#[test] fn $scenario() { super::$scenario(&MemBackend::new()); })*
        }
        mod lmdb {
            use super::*;
            $(#[test] fn $scenario() {
                let dir = TempDir::new().expect("temp dir");
                let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("open");
                super::$scenario(&storage);
                let before = dump(&storage);
                drop(storage);
                let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("reopen");
                assert_eq!(dump(&storage), before, "reopen changed the data");
            })*
        }
    };
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn dump(b: &impl Backend) -> Vec<(Table, Pairs)> {
    let r = b.read_txn().expect("read");
    Table::ALL
        .iter()
        .map(|&t| (t, collect(&r, t, b"", None)))
        .collect()
}

suite!(
    write_txn_sees_own_writes_and_commit_publishes_them,
    dropped_write_txn_is_aborted_and_one_writer_at_a_time,
    read_txn_is_a_snapshot,
    scan_orders_bounds_and_stops,
    meta_helpers_round_trip,
);
