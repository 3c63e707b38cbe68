//! etcd's `v3electionpb.Election` service, with the behaviour of etcd's server (a clientv3
//! `Election` on an orphaned session over the caller's lease).
//!
//! A candidate is the key `name/<lease hex>`; the leader is the oldest key under `name/` (lowest
//! create revision). A `LeaderKey` names a leadership by key and create revision, so Proclaim
//! and Resign act only while that very key still exists (a key re-created under the same lease
//! is another leadership). Observe lives in [`super::election_observe`].

use futures::FutureExt;
use futures::future::BoxFuture;
use prost::Message;
use prost::bytes::Bytes;
use qraft_proto::etcdserverpb::{ResponseHeader, TxnRequest, range_request};
use qraft_proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};

use super::inner_client::{
    InnerClient, by_create_revision, created_at, delete_op, first_kv_of, get_key_op, put_op,
    recipe_prefix, session_key,
};
use super::lock_service::decode;
use super::recipes::Caller;
use super::status::{Code, Status};

pub use super::election_observe::observe;

/// etcd's `ErrElectionNotLeader`.
const NOT_LEADER: &str = "election: not leader";
/// etcd's `ErrElectionNoLeader`.
const NO_LEADER: &str = "election: no leader";
/// etcd's `ErrMissingLeaderKey`.
const MISSING_LEADER_KEY: &str = "\"leader\" field must be provided";

fn encoded(message: impl Message) -> Bytes {
    Bytes::from(message.encode_to_vec())
}

pub fn campaign(
    client: InnerClient,
    message: Bytes,
    caller: Caller,
) -> BoxFuture<'static, Result<Bytes, Status>> {
    async move {
        let request = decode::<CampaignRequest>(message)?;
        run_campaign(&client, request, &caller).await.map(encoded)
    }
    .boxed()
}

async fn run_campaign(
    client: &InnerClient,
    request: CampaignRequest,
    caller: &Caller,
) -> Result<CampaignResponse, Status> {
    let lease = client.session_lease(request.lease).await?;
    let prefix = recipe_prefix(&request.name);
    let key = session_key(&prefix, lease);
    let txn = client
        .txn(TxnRequest {
            compare: vec![created_at(&key, 0)],
            success: vec![put_op(&key, request.value.clone(), lease)],
            failure: vec![get_key_op(&key)],
        })
        .await?;
    let mut leadership = LeaderKey {
        name: request.name.clone(),
        key: key.clone(),
        rev: txn.header.as_ref().map_or(0, |h| h.revision),
        lease,
    };
    if !txn.succeeded {
        // This lease already campaigns: keep its key, with the new value.
        let existing = first_kv_of(&txn.responses, 0).ok_or_else(|| {
            Status::new(Code::Internal, "election: the existing key was not read")
        })?;
        leadership.rev = existing.create_revision;
        if existing.value != request.value
            && let Err(status) = proclaim_value(client, &leadership, request.value.clone()).await
        {
            // Best effort, as etcd's Resign after a failed Proclaim.
            let _ = resign_leadership(client, &leadership).await;
            return Err(status);
        }
    }
    match caller
        .unless_gone(client.wait_deletes(&prefix, leadership.rev - 1))
        .await
    {
        Ok(Ok(())) => Ok(CampaignResponse {
            header: txn.header,
            leader: Some(leadership),
        }),
        Ok(Err(status)) => Err(status),
        Err(gone) => {
            // The caller left while waiting: withdraw, so the candidates behind are not held up.
            let _ = resign_leadership(client, &leadership).await;
            Err(gone)
        }
    }
}

pub fn proclaim(
    client: InnerClient,
    message: Bytes,
    _caller: Caller,
) -> BoxFuture<'static, Result<Bytes, Status>> {
    async move {
        let request = decode::<ProclaimRequest>(message)?;
        let mut leadership = request
            .leader
            .ok_or_else(|| Status::new(Code::Unknown, MISSING_LEADER_KEY))?;
        leadership.lease = client.session_lease(leadership.lease).await?;
        let header = proclaim_value(&client, &leadership, request.value).await?;
        Ok(encoded(ProclaimResponse { header }))
    }
    .boxed()
}

/// Puts `value` on the leader key if it still exists with the leadership's create revision.
async fn proclaim_value(
    client: &InnerClient,
    leadership: &LeaderKey,
    value: Bytes,
) -> Result<Option<ResponseHeader>, Status> {
    let txn = client
        .txn(TxnRequest {
            compare: vec![created_at(&leadership.key, leadership.rev)],
            success: vec![put_op(&leadership.key, value, leadership.lease)],
            failure: vec![],
        })
        .await?;
    if !txn.succeeded {
        return Err(Status::new(Code::Unknown, NOT_LEADER));
    }
    Ok(txn.header)
}

pub fn leader(
    client: InnerClient,
    message: Bytes,
    _caller: Caller,
) -> BoxFuture<'static, Result<Bytes, Status>> {
    async move {
        let request = decode::<LeaderRequest>(message)?;
        let prefix = recipe_prefix(&request.name);
        let mut oldest = client
            .range(by_create_revision(
                &prefix,
                range_request::SortOrder::Ascend,
            ))
            .await?;
        if oldest.kvs.is_empty() {
            return Err(Status::new(Code::Unknown, NO_LEADER));
        }
        Ok(encoded(LeaderResponse {
            header: oldest.header,
            kv: Some(oldest.kvs.swap_remove(0)),
        }))
    }
    .boxed()
}

pub fn resign(
    client: InnerClient,
    message: Bytes,
    _caller: Caller,
) -> BoxFuture<'static, Result<Bytes, Status>> {
    async move {
        let request = decode::<ResignRequest>(message)?;
        let mut leadership = request
            .leader
            .ok_or_else(|| Status::new(Code::Unknown, MISSING_LEADER_KEY))?;
        leadership.lease = client.session_lease(leadership.lease).await?;
        let header = resign_leadership(&client, &leadership).await?;
        Ok(encoded(ResignResponse { header }))
    }
    .boxed()
}

/// Deletes the leader key if it still is this leadership's; nothing otherwise (not an error,
/// as in etcd: resigning a leadership already lost is done).
async fn resign_leadership(
    client: &InnerClient,
    leadership: &LeaderKey,
) -> Result<Option<ResponseHeader>, Status> {
    let txn = client
        .txn(TxnRequest {
            compare: vec![created_at(&leadership.key, leadership.rev)],
            success: vec![delete_op(&leadership.key)],
            failure: vec![],
        })
        .await?;
    Ok(txn.header)
}
