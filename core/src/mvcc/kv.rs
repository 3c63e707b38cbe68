//! The client requests of the KV service, applied to an [`MvccStore`]: Range, Put,
//! DeleteRange, Txn and Compact, with etcd's checks, errors and response shapes.
//!
//! Responses carry only the revision in their header; the state machine fills in cluster id,
//! member id and raft term. Nested responses (ops inside a txn) carry etcd's inner headers.

use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::response_op::Response;
use qraft_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use qraft_proto::mvccpb::Event;

use super::key_index::KeyRange;
use super::range;
use super::store::MvccStore;
use super::txn;
use super::validate;
use super::write::KvWriter;
use crate::backend::{ReadTxn, WriteTxn};
use crate::error::{Error, Result};

/// Tells the store which lease ids exist (the lessor lives outside MVCC). Attaching and
/// detaching keys is the lessor's business: it learns every key's old and new lease from the
/// returned events (`kv.lease` and `prev_kv.lease`).
pub trait Leases {
    fn exists(&self, lease: i64) -> bool;
}

impl<F: Fn(i64) -> bool> Leases for F {
    fn exists(&self, lease: i64) -> bool {
        self(lease)
    }
}

/// For stores used without leases: every lease id is unknown.
pub struct NoLeases;

impl Leases for NoLeases {
    fn exists(&self, _: i64) -> bool {
        false
    }
}

/// The outcome of a write request: the response and the changes it made, in order, as watch
/// events (all with the same revision; empty if nothing changed).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<R> {
    pub response: R,
    pub events: Vec<Event>,
}

pub(crate) fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..ResponseHeader::default()
    })
}

impl MvccStore {
    /// Range at the current revision (or `req.revision`).
    pub fn range<T: ReadTxn + ?Sized>(&self, txn: &T, req: &RangeRequest) -> Result<RangeResponse> {
        validate::check_range(req)?;
        let current = self.current_revision;
        range::execute(req, current, |range, rev, limit, count_only| {
            self.range_keys(txn, range, rev, current, limit, count_only)
        })
    }

    /// Put, with `prev_kv`, `ignore_value` and `ignore_lease` (both need the key to exist:
    /// [`Error::KeyNotFound`]); an unknown lease is [`Error::LeaseNotFound`].
    pub fn put<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        req: &PutRequest,
        leases: &dyn Leases,
    ) -> Result<Applied<PutResponse>> {
        validate::check_put(req)?;
        if req.lease != 0 && !leases.exists(req.lease) {
            return Err(Error::LeaseNotFound);
        }
        let mut writer = KvWriter::new(self, txn);
        let response = put_in(&mut writer, req, false)?;
        Ok(Applied {
            response,
            events: writer.finish(),
        })
    }

    /// DeleteRange, with `prev_kv`. Deleting nothing leaves the revision unchanged.
    pub fn delete_range<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        req: &DeleteRangeRequest,
    ) -> Result<Applied<DeleteRangeResponse>> {
        validate::check_delete_range(req)?;
        let mut writer = KvWriter::new(self, txn);
        let response = delete_in(&mut writer, req)?;
        Ok(Applied {
            response,
            events: writer.finish(),
        })
    }

    /// Txn: compares (nested ones too) are evaluated on the state before the txn, checks on
    /// the chosen path run before any change, then the ops apply under one revision.
    pub fn txn<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        req: &TxnRequest,
        leases: &dyn Leases,
    ) -> Result<Applied<TxnResponse>> {
        validate::check_txn(req, validate::UNLIMITED_TXN_OPS)?;
        let path = txn::compare_path(self, &*txn, req)?;
        txn::check_path(self, &*txn, req, &path, leases)?;
        let mut writer = KvWriter::new(self, txn);
        let mut response = txn::apply(&mut writer, req, &mut path.iter().copied())?;
        response.header = header(writer.read_revision());
        Ok(Applied {
            response,
            events: writer.finish(),
        })
    }

    /// Read-only txn (every op, nested ones included, is a Range) at the current revision,
    /// served without a write transaction. Fails with [`Error::Backend`]-free semantics
    /// identical to [`MvccStore::txn`] for such requests.
    pub fn txn_read_only<T: ReadTxn + ?Sized>(
        &self,
        txn: &T,
        req: &TxnRequest,
    ) -> Result<TxnResponse> {
        validate::check_txn(req, validate::UNLIMITED_TXN_OPS)?;
        let path = txn::compare_path(self, txn, req)?;
        txn::check_path(self, txn, req, &path, &NoLeases)?;
        let mut response = txn::apply_read_only(self, txn, req, &mut path.iter().copied())?;
        response.header = header(self.current_revision);
        Ok(response)
    }

    /// Compaction at `req.revision` (see [`MvccStore::compact_to`]).
    pub fn compact<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        req: &CompactionRequest,
    ) -> Result<CompactionResponse> {
        self.compact_to(txn, req.revision)?;
        Ok(CompactionResponse {
            header: header(self.current_revision),
        })
    }
}

/// Whether a txn request only reads (then it needs no write transaction and no revision).
pub fn is_read_only(req: &TxnRequest) -> bool {
    req.success
        .iter()
        .chain(&req.failure)
        .all(|op| match &op.request {
            Some(Request::RequestRange(_)) => true,
            Some(Request::RequestTxn(t)) => is_read_only(t),
            _ => false,
        })
}

pub(crate) fn range_in<T: WriteTxn + ?Sized>(
    writer: &KvWriter<'_, T>,
    req: &RangeRequest,
) -> Result<RangeResponse> {
    range::execute(
        req,
        writer.read_revision(),
        |range, rev, limit, count_only| writer.range_keys(range, rev, limit, count_only),
    )
}

/// Put inside a write. Inside a txn the key-existence check already ran on the pre-txn state;
/// if a delete earlier in the same txn removed the key (only possible through a `"\0"` range
/// end, which etcd's duplicate check misses and on which etcd panics), the put writes the
/// given value and lease.
pub(crate) fn put_in<T: WriteTxn + ?Sized>(
    writer: &mut KvWriter<'_, T>,
    req: &PutRequest,
    in_txn: bool,
) -> Result<PutResponse> {
    let mut value = req.value.as_ref();
    let mut lease = req.lease;
    let mut prev_kv = None;
    if req.ignore_value || req.ignore_lease || req.prev_kv {
        prev_kv = writer.get(&req.key)?;
    }
    if (req.ignore_value || req.ignore_lease) && prev_kv.is_none() && !in_txn {
        return Err(Error::KeyNotFound);
    }
    if let Some(prev) = &prev_kv {
        if req.ignore_value {
            value = prev.value.as_ref();
        }
        if req.ignore_lease {
            lease = prev.lease;
        }
    }
    let revision = writer.put(&req.key, value, lease)?;
    Ok(PutResponse {
        header: header(revision),
        prev_kv: if req.prev_kv { prev_kv } else { None },
    })
}

pub(crate) fn delete_in<T: WriteTxn + ?Sized>(
    writer: &mut KvWriter<'_, T>,
    req: &DeleteRangeRequest,
) -> Result<DeleteRangeResponse> {
    let range = KeyRange::from_request(&req.key, &req.range_end);
    let mut prev_kvs = Vec::new();
    if req.prev_kv {
        prev_kvs = writer.range_keys(range, 0, 0, false)?.kvs;
    }
    let (deleted, revision) = writer.delete_range(range)?;
    Ok(DeleteRangeResponse {
        header: header(revision),
        deleted,
        prev_kvs,
    })
}

pub(crate) fn op_response(response: Response) -> ResponseOp {
    ResponseOp {
        response: Some(response),
    }
}
