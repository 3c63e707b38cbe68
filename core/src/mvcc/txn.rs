//! Txn evaluation: compares, the pre-apply checks on the chosen path, and applying the ops.
//!
//! Like etcd, every compare of the request — nested txns included — is evaluated on the state
//! before the txn, producing a *path*: one bool per txn on the chosen branches, in depth-first
//! order. Checks and ops then follow that path.

use qraft_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::response_op::Response;
use qraft_proto::etcdserverpb::{
    Compare, RangeRequest, RequestOp, ResponseHeader, TxnRequest, TxnResponse,
};
use qraft_proto::mvccpb::KeyValue;

use super::key_index::KeyRange;
use super::kv::{Leases, delete_in, op_response, put_in, range_in};
use super::range;
use super::store::MvccStore;
use super::write::KvWriter;
use crate::backend::{ReadTxn, WriteTxn};
use crate::error::{Error, Result};

fn branch(req: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &req.success
    } else {
        &req.failure
    }
}

/// Evaluates all compares on the current state; see the module documentation.
pub(crate) fn compare_path<T: ReadTxn + ?Sized>(
    store: &MvccStore,
    txn: &T,
    req: &TxnRequest,
) -> Result<Vec<bool>> {
    let mut path = Vec::new();
    walk_compares(store, txn, req, &mut path)?;
    Ok(path)
}

fn walk_compares<T: ReadTxn + ?Sized>(
    store: &MvccStore,
    txn: &T,
    req: &TxnRequest,
    path: &mut Vec<bool>,
) -> Result<()> {
    let mut succeeded = true;
    for compare in &req.compare {
        if !holds(store, txn, compare)? {
            succeeded = false;
            break;
        }
    }
    path.push(succeeded);
    for op in branch(req, succeeded) {
        if let Some(Request::RequestTxn(nested)) = &op.request {
            walk_compares(store, txn, nested, path)?;
        }
    }
    Ok(())
}

/// One compare: every key in the range must satisfy it; on no key, VALUE compares are false
/// and the others compare against a zero KeyValue.
fn holds<T: ReadTxn + ?Sized>(store: &MvccStore, txn: &T, compare: &Compare) -> Result<bool> {
    let range = KeyRange::from_request(&compare.key, &compare.range_end);
    let current = store.current_revision;
    let kvs = store.range_keys(txn, range, 0, current, 0, false)?.kvs;
    if kvs.is_empty() {
        if compare.target == CompareTarget::Value as i32 {
            return Ok(false);
        }
        return Ok(compare_kv(compare, &KeyValue::default()));
    }
    Ok(kvs.iter().all(|kv| compare_kv(compare, kv)))
}

fn compare_kv(compare: &Compare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let union = compare.target_union.as_ref();
    // A target union of another kind than the target compares against zero/empty, as in etcd.
    let ordering = match CompareTarget::try_from(compare.target) {
        Ok(CompareTarget::Value) => {
            let want: &[u8] = match union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_ref().cmp(want)
        }
        Ok(CompareTarget::Version) => kv.version.cmp(match union {
            Some(TargetUnion::Version(v)) => v,
            _ => &0,
        }),
        Ok(CompareTarget::Create) => kv.create_revision.cmp(match union {
            Some(TargetUnion::CreateRevision(v)) => v,
            _ => &0,
        }),
        Ok(CompareTarget::Mod) => kv.mod_revision.cmp(match union {
            Some(TargetUnion::ModRevision(v)) => v,
            _ => &0,
        }),
        Ok(CompareTarget::Lease) => kv.lease.cmp(match union {
            Some(TargetUnion::Lease(v)) => v,
            _ => &0,
        }),
        Err(_) => Ordering::Equal,
    };
    match CompareResult::try_from(compare.result) {
        Ok(CompareResult::Equal) => ordering.is_eq(),
        Ok(CompareResult::NotEqual) => ordering.is_ne(),
        Ok(CompareResult::Greater) => ordering.is_gt(),
        Ok(CompareResult::Less) => ordering.is_lt(),
        Err(_) => true,
    }
}

/// Visits the non-txn ops of the chosen path in order.
fn for_each_on_path(
    req: &TxnRequest,
    path: &mut impl Iterator<Item = bool>,
    visit: &mut dyn FnMut(&RequestOp) -> Result<()>,
) -> Result<()> {
    let succeeded = path.next().unwrap_or(false);
    for op in branch(req, succeeded) {
        match &op.request {
            Some(Request::RequestTxn(nested)) => for_each_on_path(nested, path, visit)?,
            _ => visit(op)?,
        }
    }
    Ok(())
}

/// etcd's checks before applying: puts with ignore_value/ignore_lease need the key, leases
/// must exist; then ranges at an explicit revision must be neither future nor compacted.
pub(crate) fn check_path<T: ReadTxn + ?Sized>(
    store: &MvccStore,
    txn: &T,
    req: &TxnRequest,
    path: &[bool],
    leases: &dyn Leases,
) -> Result<()> {
    let current = store.current_revision;
    for_each_on_path(req, &mut path.iter().copied(), &mut |op| {
        if let Some(Request::RequestPut(put)) = &op.request {
            if put.ignore_value || put.ignore_lease {
                let found =
                    store.range_keys(txn, KeyRange::Single(&put.key), 0, current, 0, false)?;
                if found.kvs.is_empty() {
                    return Err(Error::KeyNotFound);
                }
            }
            if put.lease != 0 && !leases.exists(put.lease) {
                return Err(Error::LeaseNotFound);
            }
        }
        Ok(())
    })?;
    for_each_on_path(req, &mut path.iter().copied(), &mut |op| {
        if let Some(Request::RequestRange(range)) = &op.request {
            check_range_revision(store, range)?;
        }
        Ok(())
    })
}

/// etcd's check compares with the compaction point as is (-1 before any compaction), so a
/// negative revision below it is "compacted" inside a txn.
fn check_range_revision(store: &MvccStore, range: &RangeRequest) -> Result<()> {
    if range.revision == 0 {
        Ok(())
    } else if range.revision > store.current_revision {
        Err(Error::FutureRevision)
    } else if range.revision < store.compact_revision {
        Err(Error::Compacted)
    } else {
        Ok(())
    }
}

fn empty_response(succeeded: bool, capacity: usize) -> TxnResponse {
    TxnResponse {
        header: Some(ResponseHeader::default()),
        succeeded,
        responses: Vec::with_capacity(capacity),
    }
}

/// Applies the chosen path. Nested txn responses carry an empty header, as in etcd.
pub(crate) fn apply<T: WriteTxn + ?Sized>(
    writer: &mut KvWriter<'_, T>,
    req: &TxnRequest,
    path: &mut impl Iterator<Item = bool>,
) -> Result<TxnResponse> {
    let succeeded = path.next().unwrap_or(false);
    let ops = branch(req, succeeded);
    let mut response = empty_response(succeeded, ops.len());
    for op in ops {
        let result = match &op.request {
            Some(Request::RequestRange(r)) => Response::ResponseRange(range_in(writer, r)?),
            Some(Request::RequestPut(r)) => Response::ResponsePut(put_in(writer, r, true)?),
            Some(Request::RequestDeleteRange(r)) => {
                Response::ResponseDeleteRange(delete_in(writer, r)?)
            }
            Some(Request::RequestTxn(r)) => Response::ResponseTxn(apply(writer, r, path)?),
            None => return Err(Error::KeyNotFound),
        };
        response.responses.push(op_response(result));
    }
    Ok(response)
}

/// Applies a read-only txn's path at the current revision.
pub(crate) fn apply_read_only<T: ReadTxn + ?Sized>(
    store: &MvccStore,
    txn: &T,
    req: &TxnRequest,
    path: &mut impl Iterator<Item = bool>,
) -> Result<TxnResponse> {
    let succeeded = path.next().unwrap_or(false);
    let ops = branch(req, succeeded);
    let mut response = empty_response(succeeded, ops.len());
    let current = store.current_revision;
    for op in ops {
        let result = match &op.request {
            Some(Request::RequestRange(r)) => Response::ResponseRange(range::execute(
                r,
                current,
                |range, rev, limit, count_only| {
                    store.range_keys(txn, range, rev, current, limit, count_only)
                },
            )?),
            Some(Request::RequestTxn(r)) => {
                Response::ResponseTxn(apply_read_only(store, txn, r, path)?)
            }
            // Not read-only after all: refuse rather than skip a write.
            _ => return Err(Error::KeyNotFound),
        };
        response.responses.push(op_response(result));
    }
    Ok(response)
}
