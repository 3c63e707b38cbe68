//! Model-based property test of the MVCC store: random sequences of put / delete / txn /
//! compact / range / reopen run against the store (on a MemBackend) and against a simple
//! reference model that keeps the full key space of every revision. Every answer must match.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use qraft_core::backend::{Backend, MemBackend, WriteTxn};
use qraft_core::error::Error;
use qraft_core::mvcc::{MvccStore, NoLeases};
use qraft_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use qraft_proto::mvccpb::KeyValue;

const KEYS: [&str; 6] = ["a", "ab", "b", "c", "d", "e"];

#[derive(Debug, Clone)]
enum Op {
    Put(usize, u8),
    /// Delete `[KEYS[from], KEYS[to])`, or the single key when `to <= from`.
    Delete(usize, usize),
    /// If value(KEYS[key]) == value then puts/deletes else puts (distinct keys per branch).
    Txn {
        key: usize,
        value: u8,
        then_puts: Vec<(usize, u8)>,
        then_del: Option<usize>,
        else_puts: Vec<(usize, u8)>,
    },
    /// Compact at current revision - back.
    Compact(i64),
    /// Range `[from, to)` (or everything from `from` when `to == 6`) at current - back.
    Range {
        from: usize,
        to: usize,
        back: i64,
        limit: i64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        4 => (key.clone(), 0u8..4).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (key.clone(), 0..KEYS.len()).prop_map(|(a, b)| Op::Delete(a, b)),
        2 => (
            key.clone(),
            0u8..4,
            proptest::collection::btree_map(0..KEYS.len(), 0u8..4, 0..3),
            proptest::option::of(key.clone()),
            proptest::collection::btree_map(0..KEYS.len(), 0u8..4, 0..3),
        )
            .prop_map(|(key, value, then_puts, then_del, else_puts)| {
                let then_del = then_del.filter(|d| !then_puts.contains_key(d));
                Op::Txn {
                    key,
                    value,
                    then_puts: then_puts.into_iter().collect(),
                    then_del,
                    else_puts: else_puts.into_iter().collect(),
                }
            }),
        1 => (-1i64..6).prop_map(Op::Compact),
        3 => (key.clone(), 0..=KEYS.len(), -2i64..8, -1i64..4)
            .prop_map(|(from, to, back, limit)| Op::Range { from, to, back, limit }),
        1 => Just(Op::Reopen),
    ]
}

/// The reference: the whole key space at every revision (index = revision).
struct Model {
    states: Vec<BTreeMap<String, KeyValue>>,
    compacted: i64,
}

impl Model {
    fn new() -> Self {
        // Revisions 0 and 1 are both the empty store.
        Self {
            states: vec![BTreeMap::new(), BTreeMap::new()],
            compacted: -1,
        }
    }

    fn current(&self) -> i64 {
        self.states.len() as i64 - 1
    }

    /// Applies a list of changes (Some = put value, None = delete) as one revision.
    fn write(&mut self, changes: &[(String, Option<Vec<u8>>)]) {
        let rev = self.current() + 1;
        let mut next = self.states.last().unwrap().clone();
        let mut changed = false;
        for (key, change) in changes {
            match change {
                Some(value) => {
                    let previous = next.get(key);
                    let kv = KeyValue {
                        key: key.clone().into_bytes().into(),
                        create_revision: previous.map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: previous.map_or(1, |p| p.version + 1),
                        value: value.clone().into(),
                        lease: 0,
                    };
                    next.insert(key.clone(), kv);
                    changed = true;
                }
                None => changed |= next.remove(key).is_some(),
            }
        }
        if changed {
            self.states.push(next);
        }
    }

    fn range(
        &self,
        from: &str,
        to: Option<&str>,
        rev: i64,
        limit: i64,
    ) -> Result<(Vec<KeyValue>, i64, bool), Error> {
        if rev > self.current() {
            return Err(Error::FutureRevision);
        }
        let rev = if rev <= 0 { self.current() } else { rev };
        if rev < self.compacted {
            return Err(Error::Compacted);
        }
        let all: Vec<KeyValue> = self.states[rev as usize]
            .range(from.to_owned()..)
            .filter(|(k, _)| to.is_none_or(|to| k.as_str() < to))
            .map(|(_, kv)| kv.clone())
            .collect();
        let count = all.len() as i64;
        let more = limit > 0 && count > limit;
        let kvs = if limit > 0 {
            all.into_iter().take(limit as usize).collect()
        } else {
            all
        };
        Ok((kvs, count, more))
    }
}

fn put_op(key: usize, value: u8) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: KEYS[key].as_bytes().to_vec().into(),
            value: vec![b'0' + value].into(),
            ..Default::default()
        })),
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let backend = MemBackend::new();
    let mut store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
    let mut model = Model::new();
    for op in ops {
        let mut txn = backend.write_txn().unwrap();
        match op {
            Op::Put(k, v) => {
                let req = PutRequest {
                    key: KEYS[k].as_bytes().to_vec().into(),
                    value: vec![b'0' + v].into(),
                    prev_kv: true,
                    ..Default::default()
                };
                let expected_prev = model.states.last().unwrap().get(KEYS[k]).cloned();
                let applied = store.put(&mut txn, &req, &NoLeases).unwrap();
                model.write(&[(KEYS[k].to_owned(), Some(vec![b'0' + v]))]);
                prop_assert_eq!(applied.response.prev_kv, expected_prev);
                prop_assert_eq!(applied.response.header.unwrap().revision, model.current());
            }
            Op::Delete(a, b) => {
                let (end, keys): (Vec<u8>, Vec<String>) = if b <= a {
                    (Vec::new(), vec![KEYS[a].to_owned()])
                } else {
                    let keys = model
                        .states
                        .last()
                        .unwrap()
                        .keys()
                        .filter(|k| k.as_str() >= KEYS[a] && k.as_str() < KEYS[b])
                        .cloned()
                        .collect();
                    (KEYS[b].as_bytes().to_vec(), keys)
                };
                let req = DeleteRangeRequest {
                    key: KEYS[a].as_bytes().to_vec().into(),
                    range_end: end.into(),
                    prev_kv: false,
                };
                let existing = keys
                    .iter()
                    .filter(|k| model.states.last().unwrap().contains_key(*k))
                    .count() as i64;
                let applied = store.delete_range(&mut txn, &req).unwrap();
                model.write(&keys.iter().map(|k| (k.clone(), None)).collect::<Vec<_>>());
                prop_assert_eq!(applied.response.deleted, existing);
                prop_assert_eq!(applied.response.header.unwrap().revision, model.current());
            }
            Op::Txn {
                key,
                value,
                then_puts,
                then_del,
                else_puts,
            } => {
                let mut success: Vec<RequestOp> =
                    then_puts.iter().map(|&(k, v)| put_op(k, v)).collect();
                if let Some(d) = then_del {
                    success.push(RequestOp {
                        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                            key: KEYS[d].as_bytes().to_vec().into(),
                            ..Default::default()
                        })),
                    });
                }
                let req = TxnRequest {
                    compare: vec![Compare {
                        result: CompareResult::Equal as i32,
                        target: CompareTarget::Value as i32,
                        key: KEYS[key].as_bytes().to_vec().into(),
                        target_union: Some(TargetUnion::Value(vec![b'0' + value].into())),
                        range_end: Default::default(),
                    }],
                    success,
                    failure: else_puts.iter().map(|&(k, v)| put_op(k, v)).collect(),
                };
                let holds = model
                    .states
                    .last()
                    .unwrap()
                    .get(KEYS[key])
                    .is_some_and(|kv| kv.value.as_ref() == [b'0' + value]);
                let applied = store.txn(&mut txn, &req, &NoLeases).unwrap();
                let mut changes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
                let puts = if holds { &then_puts } else { &else_puts };
                for &(k, v) in puts {
                    changes.push((KEYS[k].to_owned(), Some(vec![b'0' + v])));
                }
                if holds && let Some(d) = then_del {
                    changes.push((KEYS[d].to_owned(), None));
                }
                model.write(&changes);
                prop_assert_eq!(applied.response.succeeded, holds);
                prop_assert_eq!(applied.response.header.unwrap().revision, model.current());
            }
            Op::Compact(back) => {
                let rev = model.current() - back;
                let req = CompactionRequest {
                    revision: rev,
                    physical: false,
                };
                let got = store.compact(&mut txn, &req).map(|_| ());
                let want = if rev <= model.compacted {
                    Err(Error::Compacted)
                } else if rev > model.current() {
                    Err(Error::FutureRevision)
                } else {
                    model.compacted = rev;
                    Ok(())
                };
                prop_assert_eq!(got, want);
            }
            Op::Range {
                from,
                to,
                back,
                limit,
            } => {
                let rev = if back < 0 {
                    back
                } else {
                    model.current() - back
                };
                let to_key = KEYS.get(to).copied();
                let req = RangeRequest {
                    key: KEYS[from].as_bytes().to_vec().into(),
                    range_end: to_key.map_or(vec![0], |k| k.as_bytes().to_vec()).into(),
                    revision: rev,
                    limit,
                    ..Default::default()
                };
                let got = store.range(&txn, &req).map(|r| (r.kvs, r.count, r.more));
                prop_assert_eq!(got, model.range(KEYS[from], to_key, rev, limit));
            }
            Op::Reopen => {
                txn.commit().unwrap();
                store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
                prop_assert_eq!(
                    store.current_revision(),
                    model.current().max(model.compacted)
                );
                continue;
            }
        }
        txn.commit().unwrap();
        prop_assert_eq!(store.current_revision(), model.current());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn mvcc_matches_reference_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
