//! Seeded random KV operations for the differential tests (and anything else that wants a
//! realistic mix): puts with flags, ranges with every option, deletes, txns with compares and
//! nested txns, compactions. Keys come from a small set with shared prefixes so ranges,
//! overwrites, deletes and duplicate-key conflicts happen often.

use qraft_proto::etcdserverpb::compare::TargetUnion;
use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// At most this many keys, so sorted results stay within the size where etcd's (unstable)
/// sort is an insertion sort and therefore stable, like ours.
pub const KEYS: [&str; 10] = ["a", "ab", "abc", "b", "ba", "c", "k1", "k2", "k3", "z"];

/// Lease ids the differential test grants on both sides before running operations.
pub const LEASES: [i64; 2] = [100, 101];

#[derive(Debug, Clone, PartialEq)]
pub enum KvOp {
    Range(RangeRequest),
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(CompactionRequest),
}

/// Generates operations; it tracks the revision it believes current (for plausible
/// revision arguments), which the caller updates from real answers.
pub struct KvGen {
    rng: SmallRng,
    pub current_revision: i64,
    pub compact_revision: i64,
}

impl KvGen {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            current_revision: 1,
            compact_revision: 0,
        }
    }

    fn key(&mut self) -> Vec<u8> {
        KEYS[self.rng.random_range(0..KEYS.len())]
            .as_bytes()
            .to_vec()
    }

    /// A request key: rarely empty, to provoke "key is not provided".
    fn request_key(&mut self) -> Vec<u8> {
        if self.rng.random_bool(0.01) {
            Vec::new()
        } else {
            self.key()
        }
    }

    fn value(&mut self) -> Vec<u8> {
        let n = self.rng.random_range(0..4);
        (0..n)
            .map(|_| b"xyz01"[self.rng.random_range(0..5)])
            .collect()
    }

    /// A key and range end: single key, [key, other), prefix, or "\0" (all from key).
    fn key_range(&mut self) -> (Vec<u8>, Vec<u8>) {
        let key = self.request_key();
        let end = match self.rng.random_range(0..10) {
            0..=3 => Vec::new(),
            4..=5 => self.key(),
            6..=7 => {
                let mut end = key.clone();
                if let Some(last) = end.last_mut() {
                    *last += 1;
                }
                end
            }
            _ => vec![0],
        };
        (key, end)
    }

    fn revision(&mut self) -> i64 {
        match self.rng.random_range(0..10) {
            0..=5 => 0,
            6 => -self.rng.random_range(1..3),
            7 => self.current_revision + self.rng.random_range(0..3),
            _ => {
                let low = (self.compact_revision - 1).max(1);
                self.rng.random_range(low..=self.current_revision.max(low))
            }
        }
    }

    fn small_revision_filter(&mut self) -> i64 {
        if self.rng.random_bool(0.8) {
            0
        } else {
            self.rng.random_range(1..=self.current_revision.max(1))
        }
    }

    pub fn range(&mut self) -> RangeRequest {
        let (key, range_end) = self.key_range();
        RangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            limit: if self.rng.random_bool(0.3) {
                self.rng.random_range(-1..4)
            } else {
                0
            },
            revision: self.revision(),
            sort_order: if self.rng.random_bool(0.4) {
                // No invalid sort orders: etcd 3.4 ignores them, 3.5+ (and qraft) answer
                // "invalid sort option" (covered by the transcripts).
                self.rng.random_range(0..3)
            } else {
                0
            },
            sort_target: if self.rng.random_bool(0.4) {
                self.rng.random_range(0..5)
            } else {
                0
            },
            serializable: false,
            keys_only: self.rng.random_bool(0.1),
            count_only: self.rng.random_bool(0.1),
            min_mod_revision: self.small_revision_filter(),
            max_mod_revision: self.small_revision_filter(),
            min_create_revision: self.small_revision_filter(),
            max_create_revision: self.small_revision_filter(),
        }
    }

    /// A lease id: mostly none, else one of [`LEASES`], rarely one that does not exist.
    fn lease(&mut self) -> i64 {
        match self.rng.random_range(0..20) {
            0..=13 => 0,
            14..=18 => LEASES[self.rng.random_range(0..LEASES.len())],
            _ => 999,
        }
    }

    pub fn put(&mut self) -> PutRequest {
        let ignore_value = self.rng.random_bool(0.1);
        let ignore_lease = self.rng.random_bool(0.1);
        let lease = if ignore_lease && self.rng.random_bool(0.8) {
            0
        } else {
            self.lease()
        };
        PutRequest {
            key: self.request_key().into(),
            value: if ignore_value && self.rng.random_bool(0.85) {
                Vec::new().into()
            } else {
                self.value().into()
            },
            lease,
            prev_kv: self.rng.random_bool(0.4),
            ignore_value,
            ignore_lease,
        }
    }

    pub fn delete(&mut self) -> DeleteRangeRequest {
        self.delete_with(true)
    }

    /// Inside txns no `"\0"` range end: etcd's duplicate check misses such a delete, and a
    /// later `ignore_value` put of a key it removed makes etcd panic.
    fn delete_with(&mut self, allow_from: bool) -> DeleteRangeRequest {
        let (key, mut range_end) = self.key_range();
        if !allow_from && range_end == [0] {
            range_end = Vec::new();
        }
        DeleteRangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            prev_kv: self.rng.random_bool(0.5),
        }
    }

    fn compare(&mut self) -> Compare {
        let (key, range_end) = if self.rng.random_bool(0.8) {
            (self.key(), Vec::new())
        } else {
            self.key_range()
        };
        let target = self.rng.random_range(0..5);
        let number = self.rng.random_range(0..=self.current_revision.max(1));
        let union = match target {
            0 => TargetUnion::Version(self.rng.random_range(0..4)),
            1 => TargetUnion::CreateRevision(number),
            2 => TargetUnion::ModRevision(number),
            3 => TargetUnion::Value(self.value().into()),
            _ => TargetUnion::Lease(self.lease()),
        };
        Compare {
            result: self.rng.random_range(0..4),
            target,
            key: key.into(),
            target_union: Some(union),
            range_end: range_end.into(),
        }
    }

    fn op(&mut self, depth: u32) -> RequestOp {
        let request = match self.rng.random_range(0..10) {
            0..=3 => Request::RequestPut(self.put()),
            4..=5 => Request::RequestRange(self.range()),
            6..=7 => Request::RequestDeleteRange(self.delete_with(false)),
            _ if depth < 2 => Request::RequestTxn(self.txn_at(depth + 1)),
            _ => Request::RequestPut(self.put()),
        };
        RequestOp {
            request: Some(request),
        }
    }

    fn txn_at(&mut self, depth: u32) -> TxnRequest {
        let compares = self.rng.random_range(0..3);
        let success = self.rng.random_range(0..4);
        let failure = self.rng.random_range(0..3);
        TxnRequest {
            compare: (0..compares).map(|_| self.compare()).collect(),
            success: (0..success).map(|_| self.op(depth)).collect(),
            failure: (0..failure).map(|_| self.op(depth)).collect(),
        }
    }

    pub fn txn(&mut self) -> TxnRequest {
        self.txn_at(0)
    }

    pub fn compact(&mut self) -> CompactionRequest {
        let low = self.compact_revision - 1;
        let high = self.current_revision + 1;
        CompactionRequest {
            revision: self.rng.random_range(low..=high),
            physical: false,
        }
    }

    /// A txn of 128 or 129 ops (the limit is 128): deletes of keys that never exist, so the
    /// key space stays small (more than 12 sorted results would meet etcd's unstable sort).
    fn big_txn(&mut self) -> TxnRequest {
        let n = self.rng.random_range(128..=129);
        TxnRequest {
            success: (0..n)
                .map(|i| RequestOp {
                    request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                        key: format!("big{i:03}").into_bytes().into(),
                        ..Default::default()
                    })),
                })
                .collect(),
            ..Default::default()
        }
    }

    pub fn next_op(&mut self) -> KvOp {
        if self.rng.random_bool(0.005) {
            return KvOp::Txn(self.big_txn());
        }
        match self.rng.random_range(0..100) {
            0..=34 => KvOp::Put(self.put()),
            35..=59 => KvOp::Range(self.range()),
            60..=71 => KvOp::Delete(self.delete()),
            72..=96 => KvOp::Txn(self.txn()),
            _ => KvOp::Compact(self.compact()),
        }
    }
}
