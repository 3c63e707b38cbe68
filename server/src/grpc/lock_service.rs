//! etcd's `v3lockpb.Lock` service, with the behaviour of etcd's server (a clientv3 `Mutex` on an
//! orphaned session over the caller's lease).
//!
//! Lock: one txn puts `name/<lease hex>` under the lease unless it exists (a second Lock with
//! the same lease reuses the key, so it is re-entrant per lease) and reads the oldest key under
//! `name/`. If that is not ours, wait until every key created before ours is deleted, then check
//! ours still exists (its lease may have expired meanwhile). A caller that goes away while
//! waiting has its key deleted, so it does not block the waiters behind it.

use futures::FutureExt;
use futures::future::BoxFuture;
use prost::Message;
use prost::bytes::Bytes;
use qraft_proto::etcdserverpb::{RangeRequest, TxnRequest, range_request};
use qraft_proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};

use super::inner_client::{
    InnerClient, by_create_revision, created_at, first_kv_of, get_key_op, get_op, put_op,
    recipe_prefix, session_key,
};
use super::recipes::Caller;
use super::status::{Code, Status};

pub fn lock(
    client: InnerClient,
    message: Bytes,
    caller: Caller,
) -> BoxFuture<'static, Result<Bytes, Status>> {
    async move {
        let request = decode::<LockRequest>(message)?;
        let response = acquire(&client, request, &caller).await?;
        Ok(Bytes::from(response.encode_to_vec()))
    }
    .boxed()
}

pub fn unlock(
    client: InnerClient,
    message: Bytes,
    _caller: Caller,
) -> BoxFuture<'static, Result<Bytes, Status>> {
    async move {
        let request = decode::<UnlockRequest>(message)?;
        let deleted = client.delete(request.key).await?;
        let response = UnlockResponse {
            header: deleted.header,
        };
        Ok(Bytes::from(response.encode_to_vec()))
    }
    .boxed()
}

async fn acquire(
    client: &InnerClient,
    request: LockRequest,
    caller: &Caller,
) -> Result<LockResponse, Status> {
    let lease = client.session_lease(request.lease).await?;
    let prefix = recipe_prefix(&request.name);
    let key = session_key(&prefix, lease);
    let oldest = get_op(by_create_revision(
        &prefix,
        range_request::SortOrder::Ascend,
    ));
    let txn = client
        .txn(TxnRequest {
            compare: vec![created_at(&key, 0)],
            success: vec![put_op(&key, Bytes::new(), lease), oldest.clone()],
            failure: vec![get_key_op(&key), oldest],
        })
        .await?;
    let my_revision = if txn.succeeded {
        txn.header.as_ref().map_or(0, |h| h.revision)
    } else {
        first_kv_of(&txn.responses, 0)
            .map(|kv| kv.create_revision)
            .ok_or_else(|| Status::new(Code::Internal, "lock: the existing key was not read"))?
    };
    let owner = first_kv_of(&txn.responses, 1);
    if owner.is_none_or(|kv| kv.create_revision == my_revision) {
        return Ok(LockResponse {
            header: txn.header,
            key,
        });
    }
    let waited = caller
        .unless_gone(client.wait_deletes(&prefix, my_revision - 1))
        .await
        .and_then(|waited| waited);
    if let Err(status) = waited {
        release(client, &key).await;
        return Err(status);
    }
    let mine = caller
        .unless_gone(client.range(RangeRequest {
            key: key.clone(),
            ..Default::default()
        }))
        .await
        .and_then(|read| read);
    let mine = match mine {
        Ok(mine) => mine,
        Err(status) => {
            release(client, &key).await;
            return Err(status);
        }
    };
    if mine.kvs.is_empty() {
        return Err(Status::new(Code::Unknown, "session expired"));
    }
    Ok(LockResponse {
        header: mine.header,
        key,
    })
}

/// Deletes the key of a Lock that failed while waiting, as etcd's `Mutex.Unlock` on the
/// client's own context. A failure here leaves the key to its lease, as in etcd.
async fn release(client: &InnerClient, key: &Bytes) {
    if let Err(status) = client.delete(key.clone()).await {
        tracing::debug!(
            ?status,
            "lock: could not delete the key of an abandoned Lock"
        );
    }
}

/// A recipe's request message; grpc-go's text for one that does not decode.
pub fn decode<M: Message + Default>(message: Bytes) -> Result<M, Status> {
    M::decode(message).map_err(|error| {
        Status::new(
            Code::Internal,
            format!("grpc: error unmarshalling request: {error}"),
        )
    })
}
