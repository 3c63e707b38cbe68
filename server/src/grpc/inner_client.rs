//! The member's own KV, Lease and Watch services as a client, for etcd's lock and election
//! services: etcd builds those on clientv3's concurrency recipes talking to the server itself,
//! so here they are sequences of ordinary `ClientRequest`s through the same [`CoreHandle`] a
//! gRPC call uses. Every request carries the caller's token and connection, so auth, quotas and
//! forwarding to the leader apply exactly as if the client had sent them.
//!
//! Everything runs on the listener's tasks; waiting is a watch on one key (or one prefix), whose
//! responses are consumed as they arrive, so nothing held while waiting grows.

use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use prost::bytes::Bytes;
use qraft_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest, PutRequest, RangeRequest,
    RangeResponse, RequestOp, ResponseOp, TxnRequest, TxnResponse, WatchCreateRequest,
    WatchRequest, WatchResponse, compare, range_request, request_op, response_op, watch_request,
};
use qraft_proto::mvccpb::{KeyValue, event::EventType};
use qraft_proto::qraftpb::{ClientRequest, client_request, client_response};

use super::handler::{CallContext, CoreHandle};
use super::status::{Code, Status};

/// clientv3's session TTL, for the lease a Lock or Campaign without one is given.
pub const SESSION_TTL_SECONDS: i64 = 60;

/// Requests on behalf of one caller.
#[derive(Clone)]
pub struct InnerClient {
    core: Arc<dyn CoreHandle>,
    ctx: CallContext,
    token: String,
}

/// The answers of one watch, in order; ends when the core ends the watch.
pub type WatchResponses = BoxStream<'static, Result<WatchResponse, Status>>;

macro_rules! typed_call {
    ($self:ident, $case:ident, $request:expr) => {
        match $self.call(client_request::Request::$case($request)).await? {
            client_response::Response::$case(response) => Ok(response),
            _ => Err(wrong_kind()),
        }
    };
}

impl InnerClient {
    pub fn new(core: Arc<dyn CoreHandle>, ctx: CallContext, token: String) -> Self {
        InnerClient { core, ctx, token }
    }

    fn request(&self, request: client_request::Request) -> ClientRequest {
        ClientRequest {
            token: self.token.clone(),
            cert_common_name: String::new(),
            token_claims: None,
            request: Some(request),
        }
    }

    async fn call(
        &self,
        request: client_request::Request,
    ) -> Result<client_response::Response, Status> {
        let response = self
            .core
            .call(self.ctx.clone(), self.request(request))
            .await;
        match response.response {
            Some(client_response::Response::Error(error)) => Err(inner_error(error)),
            Some(response) => Ok(response),
            None => Err(wrong_kind()),
        }
    }

    pub async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, Status> {
        typed_call!(self, Txn, request)
    }

    pub async fn range(&self, request: RangeRequest) -> Result<RangeResponse, Status> {
        typed_call!(self, Range, request)
    }

    pub async fn delete(&self, key: Bytes) -> Result<DeleteRangeResponse, Status> {
        typed_call!(
            self,
            DeleteRange,
            DeleteRangeRequest {
                key,
                ..Default::default()
            }
        )
    }

    /// The lease a recipe's keys live under: the caller's, or (for 0, clientv3's `NoLease`) a
    /// new one with the session TTL that nobody keeps alive, as etcd's orphaned session.
    pub async fn session_lease(&self, lease: i64) -> Result<i64, Status> {
        if lease != 0 {
            return Ok(lease);
        }
        let granted = typed_call!(
            self,
            LeaseGrant,
            LeaseGrantRequest {
                ttl: SESSION_TTL_SECONDS,
                id: 0,
            }
        )?;
        Ok(granted.id)
    }

    /// Watches `key` (to `range_end`) from `start_revision`. Dropping the stream cancels it.
    pub fn watch(&self, key: Bytes, range_end: Bytes, start_revision: i64) -> WatchResponses {
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key,
                    range_end,
                    start_revision,
                    ..Default::default()
                },
            )),
        };
        let requests = stream::iter([self.request(client_request::Request::Watch(create))]);
        self.core
            .open_stream(self.ctx.clone(), requests.boxed())
            .map(|response| match response.response {
                Some(client_response::Response::Watch(watch)) => Ok(watch),
                Some(client_response::Response::Error(error)) => Err(inner_error(error)),
                _ => Err(wrong_kind()),
            })
            .boxed()
    }

    /// clientv3 concurrency's `waitDeletes`: returns once no key under `prefix` has a create
    /// revision of `max_create_revision` or lower, waiting on the newest such key's deletion
    /// each round.
    pub async fn wait_deletes(
        &self,
        prefix: &Bytes,
        max_create_revision: i64,
    ) -> Result<(), Status> {
        loop {
            let mut request = by_create_revision(prefix, range_request::SortOrder::Descend);
            request.max_create_revision = max_create_revision;
            let newest = self.range(request).await?;
            let Some(kv) = newest.kvs.first() else {
                return Ok(());
            };
            let revision = newest.header.map_or(0, |h| h.revision);
            self.wait_delete(kv.key.clone(), revision).await?;
        }
    }

    async fn wait_delete(&self, key: Bytes, revision: i64) -> Result<(), Status> {
        let mut responses = self.watch(key, Bytes::new(), revision);
        while let Some(response) = responses.next().await {
            let response = response?;
            if response.canceled {
                return Err(watch_canceled(&response));
            }
            if response
                .events
                .iter()
                .any(|e| e.r#type == EventType::Delete as i32)
            {
                return Ok(());
            }
        }
        Err(Status::new(
            Code::Unknown,
            "lost watcher waiting for delete",
        ))
    }
}

/// The status of a watch the core canceled (clientv3's `wr.Err()`).
pub fn watch_canceled(response: &WatchResponse) -> Status {
    if response.compact_revision != 0 {
        return Status::new(
            Code::OutOfRange,
            "etcdserver: mvcc: required revision has been compacted",
        );
    }
    Status::new(Code::Unknown, response.cancel_reason.clone())
}

/// An inner request's error as etcd's lock and election servers return it: clientv3 turns the
/// server's status into an error value without a gRPC code, so the caller gets UNKNOWN with
/// etcd's text (`etcdserver: requested lease not found`, ...); clientv3 on the caller's side
/// maps the text back to the error.
fn inner_error(error: qraft_proto::qraftpb::Error) -> Status {
    Status::new(Code::Unknown, error.message)
}

fn wrong_kind() -> Status {
    Status::new(
        Code::Internal,
        "qraft: the core answered with a response of another kind",
    )
}

/// The keys of a recipe named `name` live under `name/`.
pub fn recipe_prefix(name: &[u8]) -> Bytes {
    let mut prefix = name.to_vec();
    prefix.push(b'/');
    Bytes::from(prefix)
}

/// `prefix` + the lease ID in hex, as Go's `%x` prints an int64 (lower case, `-` for negatives).
pub fn session_key(prefix: &Bytes, lease: i64) -> Bytes {
    let hex = if lease < 0 {
        format!("-{:x}", lease.unsigned_abs())
    } else {
        format!("{lease:x}")
    };
    let mut key = prefix.to_vec();
    key.extend_from_slice(hex.as_bytes());
    Bytes::from(key)
}

/// The range end that makes `key` a prefix (etcd's `GetPrefixRangeEnd`).
pub fn prefix_end(key: &[u8]) -> Bytes {
    let mut end = key.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bytes::from(end);
        }
    }
    Bytes::from_static(&[0])
}

/// The one key under `prefix` first (`Ascend`) or last (`Descend`) by create revision
/// (clientv3's `WithFirstCreate` / `WithLastCreate`).
pub fn by_create_revision(prefix: &Bytes, order: range_request::SortOrder) -> RangeRequest {
    RangeRequest {
        key: prefix.clone(),
        range_end: prefix_end(prefix),
        limit: 1,
        sort_order: order as i32,
        sort_target: range_request::SortTarget::Create as i32,
        ..Default::default()
    }
}

/// `create_revision(key) == revision`.
pub fn created_at(key: &Bytes, revision: i64) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: compare::CompareTarget::Create as i32,
        key: key.clone(),
        range_end: Bytes::new(),
        target_union: Some(compare::TargetUnion::CreateRevision(revision)),
    }
}

pub fn put_op(key: &Bytes, value: Bytes, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.clone(),
            value,
            lease,
            ..Default::default()
        })),
    }
}

pub fn get_op(request: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(request)),
    }
}

pub fn get_key_op(key: &Bytes) -> RequestOp {
    get_op(RangeRequest {
        key: key.clone(),
        ..Default::default()
    })
}

pub fn delete_op(key: &Bytes) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.clone(),
                ..Default::default()
            },
        )),
    }
}

/// The first key-value of the range answer at `index` of a txn's responses.
pub fn first_kv_of(responses: &[ResponseOp], index: usize) -> Option<&KeyValue> {
    match responses.get(index)?.response.as_ref()? {
        response_op::Response::ResponseRange(range) => range.kvs.first(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_print_the_lease_as_go_does() {
        let prefix = recipe_prefix(b"lk");
        assert_eq!(
            &session_key(&prefix, 0x694d7a1b2c3d)[..],
            b"lk/694d7a1b2c3d"
        );
        assert_eq!(&session_key(&prefix, -1)[..], b"lk/-1");
    }

    #[test]
    fn prefix_ends_skip_trailing_ff() {
        assert_eq!(&prefix_end(b"a/")[..], b"a0");
        assert_eq!(&prefix_end(b"a\xff")[..], b"b");
        assert_eq!(&prefix_end(b"\xff")[..], b"\x00");
    }
}
