//! Differential test of the KV API: the same seeded random operation sequences run against
//! the real etcd (through its JSON gateway) and against qraft's MVCC store on a MemBackend;
//! every answer — kvs, revisions, versions, prev_kv, more/count, succeeded, errors — must be
//! identical. qraft's store is also reopened from its backend now and then, so index rebuilds
//! are covered.
//!
//! CI runs a few fixed seeds; `QRAFT_DIFF_OPS=N` (ops per seed) and `QRAFT_DIFF_SEEDS=N` run
//! longer. Without etcd the test is skipped loudly, except under `CI=true` where it fails.

#![allow(clippy::unwrap_used)]

use qraft_core::backend::{Backend, MemBackend, WriteTxn};
use qraft_core::error::Error;
use qraft_core::mvcc::{Leases, MvccStore, is_read_only, validate};
use qraft_proto::etcdserverpb::{DeleteRangeResponse, PutResponse, RangeResponse, TxnResponse};
use qraft_tests::etcd::{EtcdProcess, require_etcd};
use qraft_tests::etcd_json::*;
use qraft_tests::kv_gen::{KvGen, KvOp, LEASES};

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Range(RangeResponse),
    Put(PutResponse),
    Delete(DeleteRangeResponse),
    Txn(TxnResponse),
    Compacted(i64),
    Error(i32, String),
}

impl Outcome {
    fn revision(&self) -> Option<i64> {
        let header = match self {
            Outcome::Range(r) => r.header.as_ref(),
            Outcome::Put(r) => r.header.as_ref(),
            Outcome::Delete(r) => r.header.as_ref(),
            Outcome::Txn(r) => r.header.as_ref(),
            Outcome::Compacted(rev) => return Some(*rev),
            Outcome::Error(..) => None,
        };
        header.map(|h| h.revision)
    }
}

fn qraft_error(e: Error) -> Outcome {
    Outcome::Error(e.code() as i32, e.to_string())
}

fn request(op: &KvOp) -> (&'static str, serde_json::Value) {
    match op {
        KvOp::Range(r) => ("/v3/kv/range", range_json(r)),
        KvOp::Put(r) => ("/v3/kv/put", put_json(r)),
        KvOp::Delete(r) => ("/v3/kv/deleterange", delete_json(r)),
        KvOp::Txn(r) => ("/v3/kv/txn", txn_json(r)),
        KvOp::Compact(r) => ("/v3/kv/compaction", compaction_json(r)),
    }
}

fn run_etcd(etcd: &EtcdProcess, op: &KvOp) -> Outcome {
    let (path, body) = request(op);
    let response = etcd.post(path, &body.to_string());
    let value: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_else(|e| {
        panic!(
            "etcd answered {path} with non-JSON ({e}): {}",
            response.body
        )
    });
    if response.status != 200 {
        let (code, message) = error_from(&value);
        return Outcome::Error(code, message);
    }
    match op {
        KvOp::Range(_) => Outcome::Range(range_from(&value)),
        KvOp::Put(_) => Outcome::Put(put_from(&value)),
        KvOp::Delete(_) => Outcome::Delete(delete_from(&value)),
        KvOp::Txn(_) => Outcome::Txn(txn_from(&value)),
        KvOp::Compact(_) => Outcome::Compacted(range_from(&value).header.map_or(0, |h| h.revision)),
    }
}

/// The leases granted on etcd at start (the qraft side has no lessor here, only the ids).
struct Granted;

impl Leases for Granted {
    fn exists(&self, lease: i64) -> bool {
        LEASES.contains(&lease)
    }
}

fn run_qraft(backend: &MemBackend, store: &mut MvccStore, op: &KvOp) -> Outcome {
    let granted = Granted;
    // `--max-txn-ops` is the admission check a member makes where a txn enters (as etcd's gRPC
    // layer), not the store's: made here as the server makes it, with etcd's default.
    if let KvOp::Txn(r) = op
        && let Err(err) = validate::check_txn(r, validate::MAX_TXN_OPS)
    {
        return qraft_error(err);
    }
    if let KvOp::Range(r) = op {
        let read = backend.read_txn().unwrap();
        return store
            .range(&read, r)
            .map_or_else(qraft_error, Outcome::Range);
    }
    if let KvOp::Txn(r) = op
        && is_read_only(r)
    {
        let read = backend.read_txn().unwrap();
        let read_only = store.txn_read_only(&read, r);
        let mut txn = backend.write_txn().unwrap();
        let written = store.txn(&mut txn, r, &granted).map(|a| a.response);
        txn.commit().unwrap();
        assert_eq!(
            read_only, written,
            "read-only txn path differs from the write path"
        );
        return written.map_or_else(qraft_error, Outcome::Txn);
    }
    let mut txn = backend.write_txn().unwrap();
    let outcome = match op {
        KvOp::Put(r) => store
            .put(&mut txn, r, &granted)
            .map_or_else(qraft_error, |a| Outcome::Put(a.response)),
        KvOp::Delete(r) => store
            .delete_range(&mut txn, r)
            .map_or_else(qraft_error, |a| Outcome::Delete(a.response)),
        KvOp::Txn(r) => store
            .txn(&mut txn, r, &granted)
            .map_or_else(qraft_error, |a| Outcome::Txn(a.response)),
        KvOp::Compact(r) => store.compact(&mut txn, r).map_or_else(qraft_error, |resp| {
            Outcome::Compacted(resp.header.map_or(0, |h| h.revision))
        }),
        KvOp::Range(_) => unreachable!("handled above"),
    };
    txn.commit().unwrap();
    outcome
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_seed(seed: u64, ops: usize) {
    let etcd = EtcdProcess::start();
    for id in LEASES {
        let grant = etcd.post(
            "/v3/lease/grant",
            &format!(r#"{{"ID":"{id}","TTL":"3600"}}"#),
        );
        assert_eq!(grant.status, 200, "lease grant failed: {}", grant.body);
    }
    let backend = MemBackend::new();
    let mut store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
    let mut generator = KvGen::new(seed);
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for i in 0..ops {
        let op = generator.next_op();
        let expected = run_etcd(&etcd, &op);
        let actual = run_qraft(&backend, &mut store, &op);
        assert_eq!(
            actual,
            expected,
            "seed {seed}, op #{i} differs from etcd\nop: {} {}\nqraft (left) vs etcd (right)",
            request(&op).0,
            request(&op).1
        );
        if let Some(rev) = expected.revision() {
            generator.current_revision = generator.current_revision.max(rev);
        }
        if let (KvOp::Compact(c), Outcome::Compacted(_)) = (&op, &expected) {
            generator.compact_revision = c.revision;
        }
        if let Outcome::Error(_, message) = &expected {
            *errors.entry(message.clone()).or_default() += 1;
        }
        if i % 97 == 96 {
            store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
        }
    }
    eprintln!(
        "seed {seed}: {ops} ops identical to etcd, final revision {}, errors {errors:?}",
        store.current_revision()
    );
}

#[test]
fn kv_operations_match_etcd() {
    require_etcd("kv_operations_match_etcd");
    let ops = env_usize("QRAFT_DIFF_OPS", 500);
    let seeds = env_usize("QRAFT_DIFF_SEEDS", 4) as u64;
    for seed in 0..seeds {
        run_seed(0x5eed_0000 + seed, ops);
    }
}
