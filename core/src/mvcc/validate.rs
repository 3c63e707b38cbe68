//! Request checks etcd makes before a request is proposed (its gRPC layer): they depend only
//! on the request, so the state machine can run them before proposing and the store runs them
//! again when applying (deterministically) for safety.

use std::collections::BTreeSet;

use qraft_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

use crate::error::{Error, Result};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;
/// The op budget of a txn the store applies: `--max-txn-ops` is each member's admission rule
/// (checked where a request enters, as etcd's gRPC layer does, with that member's setting), not
/// part of the replicated state machine — members may be configured differently, and every
/// member must apply a committed txn alike.
pub const UNLIMITED_TXN_OPS: usize = usize::MAX;
/// etcd's default `--max-request-bytes` (1.5 MiB): a proposal larger than this is refused.
pub const MAX_REQUEST_BYTES: usize = 1_572_864;

/// Refuses an encoded request larger than `max_bytes` ([`Error::RequestTooLarge`]).
pub fn check_request_size(encoded_len: usize, max_bytes: usize) -> Result<()> {
    if encoded_len > max_bytes {
        return Err(Error::RequestTooLarge);
    }
    Ok(())
}

pub fn check_range(req: &RangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if SortOrder::try_from(req.sort_order).is_err()
        || SortTarget::try_from(req.sort_target).is_err()
    {
        return Err(Error::InvalidSortOption);
    }
    Ok(())
}

pub fn check_put(req: &PutRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(Error::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(Error::LeaseProvided);
    }
    Ok(())
}

pub fn check_delete_range(req: &DeleteRangeRequest) -> Result<()> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    Ok(())
}

/// Checks a txn: op count (the largest of compares/success/failure; nested txns get what is
/// left of the budget, as etcd does), empty keys, every op, then duplicate keys per branch.
pub fn check_txn(req: &TxnRequest, max_ops: usize) -> Result<()> {
    check_txn_ops(req, i64::try_from(max_ops).unwrap_or(i64::MAX))?;
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

fn check_txn_ops(req: &TxnRequest, max_ops: i64) -> Result<()> {
    let ops = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len()) as i64;
    if ops > max_ops {
        return Err(Error::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        check_op(op, max_ops - ops)?;
    }
    Ok(())
}

fn check_op(op: &RequestOp, max_ops: i64) -> Result<()> {
    match &op.request {
        Some(Request::RequestRange(r)) => check_range(r),
        Some(Request::RequestPut(r)) => check_put(r),
        Some(Request::RequestDeleteRange(r)) => check_delete_range(r),
        Some(Request::RequestTxn(r)) => check_txn_ops(r, max_ops),
        // etcd answers an empty op like this.
        None => Err(Error::KeyNotFound),
    }
}

/// A key interval `[begin, end)`; `end = None` is unbounded. A point is `[k, k\0)`. Bounds
/// are compared bytewise exactly as etcd's interval tree does, so a delete whose range end
/// is `"\0"` forms an empty interval and conflicts with nothing (etcd's behaviour).
struct Interval {
    begin: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    fn point(key: &[u8]) -> Self {
        let mut end = key.to_vec();
        end.push(0);
        Self {
            begin: key.to_vec(),
            end: Some(end),
        }
    }

    fn overlaps(&self, other: &Interval) -> bool {
        let before_end = |begin: &[u8], end: &Option<Vec<u8>>| match end {
            None => true,
            Some(end) => begin < end.as_slice(),
        };
        before_end(&self.begin, &other.end) && before_end(&other.begin, &self.end)
    }
}

fn hits(dels: &[Interval], key: &[u8]) -> bool {
    let point = Interval::point(key);
    dels.iter().any(|d| d.overlaps(&point))
}

/// etcd's duplicate-key rule for one branch: a key may be put at most once, and not inside
/// a deleted range, counting nested txns (whose two branches may put the same key).
/// Returns the branch's puts and deletes for the enclosing level.
fn check_intervals(ops: &[RequestOp]) -> Result<(BTreeSet<Vec<u8>>, Vec<Interval>)> {
    let mut dels: Vec<Interval> = Vec::new();
    for op in ops {
        if let Some(Request::RequestDeleteRange(d)) = &op.request {
            dels.push(if d.range_end.is_empty() {
                Interval::point(&d.key)
            } else {
                Interval {
                    begin: d.key.to_vec(),
                    end: Some(d.range_end.to_vec()),
                }
            });
        }
    }
    let mut puts: BTreeSet<Vec<u8>> = BTreeSet::new();
    for op in ops {
        let Some(Request::RequestTxn(txn)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&txn.success)?;
        let (puts_else, dels_else) = check_intervals(&txn.failure)?;
        for key in &puts_then {
            if puts.contains(key) || hits(&dels, key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        for key in &puts_else {
            // The two branches are exclusive, so a key put by both is fine.
            if (puts.contains(key) && !puts_then.contains(key)) || hits(&dels, key) {
                return Err(Error::DuplicateKey);
            }
            puts.insert(key.clone());
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(p.key.as_ref()) || hits(&dels, &p.key) {
            return Err(Error::DuplicateKey);
        }
        puts.insert(p.key.to_vec());
    }
    Ok((puts, dels))
}
