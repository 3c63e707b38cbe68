//! The client listener's [`RequestHandler`] on top of the driver: unary requests go through
//! the loop (or, for `Status` and `MoveLeader`, are answered from the member's own view);
//! watch, lease keep-alive and snapshot streams are served here. Calls served here and streams
//! are first shown to the state machine ([`DriverHandle::admit`]), which refuses what a learner
//! refuses and checks their token and permission as for any other call; every other call is the
//! state machine's to decide on (a learner's refusal, forwarding to the leader included).

use std::future::Future;

use qraft_proto::etcdserverpb::{DefragmentResponse, MoveLeaderResponse, SnapshotResponse};
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

use super::handle::DriverHandle;
use super::storage_contract::{DriverStorage, SnapshotChunks};
use super::{endpoint_status, watch};
use crate::error_responses::{Code, error_response};
use crate::transport::{ClientContext, RequestHandler, RequestStream, ResponseSink};

/// Bytes of key space per snapshot chunk sent to `qraftctl snapshot save`.
const SNAPSHOT_CHUNK: usize = 256 * 1024;

impl<S: DriverStorage> RequestHandler for DriverHandle<S> {
    fn handle(
        &self,
        ctx: ClientContext,
        mut req: ClientRequest,
    ) -> impl Future<Output = ClientResponse> + Send {
        let handle = self.clone();
        ctx.stamp(&mut req);
        async move {
            if served_here(&req)
                && let Some(refusal) = handle.admit(&req).await
            {
                return refusal;
            }
            match &req.request {
                Some(In::Status(_)) => endpoint_status::status(&handle),
                Some(In::MoveLeader(r)) => move_leader(&handle, r.target_id).await,
                Some(In::Defragment(_)) => defragment(&handle).await,
                _ => handle.request(req).await,
            }
        }
    }

    fn stream(
        &self,
        ctx: ClientContext,
        mut first: ClientRequest,
        requests: RequestStream,
        responses: ResponseSink,
    ) -> impl Future<Output = ()> + Send {
        let handle = self.clone();
        ctx.stamp(&mut first);
        async move {
            if let Some(refusal) = handle.admit(&first).await {
                let mut responses = responses;
                let _ = responses.send(&refusal).await;
                responses.finish();
                return;
            }
            match first.request {
                Some(In::Watch(_)) => {
                    watch::serve(handle, ctx.room, first, requests, responses).await
                }
                Some(In::LeaseKeepAlive(_)) => {
                    keep_alive(handle, ctx, first, requests, responses).await
                }
                Some(In::Snapshot(_)) => snapshot(handle, responses).await,
                _ => {
                    let mut responses = responses;
                    let reply = error_response(Code::Unimplemented, "qraft: not a streaming call");
                    let _ = responses.send(&reply).await;
                }
            }
        }
    }
}

/// Calls this shell answers without the state machine doing the work (what the shell can
/// serve, not a policy: whether it may, and what must happen first, is the state machine's
/// answer to [`DriverHandle::admit`] — for a snapshot, the held batch committed).
fn served_here(request: &ClientRequest) -> bool {
    matches!(
        request.request,
        Some(In::Status(_) | In::MoveLeader(_) | In::Defragment(_) | In::Snapshot(_))
    )
}

async fn move_leader(handle: &DriverHandle<impl DriverStorage>, target: u64) -> ClientResponse {
    match handle.transfer_leader(target).await {
        Ok(()) => ClientResponse {
            response: Some(Out::MoveLeader(MoveLeaderResponse {
                header: Some(endpoint_status::header(&handle.info())),
            })),
        },
        Err(message) => error_response(Code::FailedPrecondition, message),
    }
}

/// etcd's online defrag: the member's file is rewritten without its free pages while it keeps
/// serving; writes wait until the copy is in place, raft does not (see `super::defrag`).
async fn defragment(handle: &DriverHandle<impl DriverStorage>) -> ClientResponse {
    match handle.defragment().await {
        Ok(_sizes) => ClientResponse {
            response: Some(Out::Defragment(DefragmentResponse {
                header: Some(endpoint_status::header(&handle.info())),
            })),
        },
        Err(err @ crate::storage::StorageError::Busy(_)) => {
            error_response(Code::Unavailable, err.to_string())
        }
        Err(err) => error_response(Code::Internal, err.to_string()),
    }
}

/// Each keep-alive request is answered in order on the same stream, as etcd's LeaseKeepAlive.
async fn keep_alive(
    handle: DriverHandle<impl DriverStorage>,
    ctx: ClientContext,
    first: ClientRequest,
    mut requests: RequestStream,
    mut responses: ResponseSink,
) {
    let mut next = Some(first);
    while let Some(request) = next.take() {
        let reply = handle.request(request).await;
        if responses.send(&reply).await.is_err() {
            return;
        }
        next = match requests.next().await {
            Some(Ok(mut req)) if matches!(req.request, Some(In::LeaseKeepAlive(_))) => {
                ctx.stamp(&mut req);
                Some(req)
            }
            Some(Ok(_)) => {
                let reply = error_response(
                    Code::InvalidArgument,
                    "qraft: only keep-alive requests on a keep-alive stream",
                );
                let _ = responses.send(&reply).await;
                None
            }
            _ => None,
        };
    }
    responses.finish();
}

/// Streams the key space as etcd's Snapshot does: chunks of the member's consistent state,
/// from LMDB's last commit, which holds everything applied before the call (the state machine
/// had the loop commit its held batch before admitting it: `Backend::commit_batched`).
async fn snapshot(handle: DriverHandle<impl DriverStorage>, mut responses: ResponseSink) {
    let info = handle.info();
    let mut exporter = match handle.storage().export_snapshot() {
        Ok(e) => e,
        Err(err) => {
            let _ = responses
                .send(&error_response(Code::Internal, err.to_string()))
                .await;
            return;
        }
    };
    let header = endpoint_status::header(&info);
    let mut pending: Option<Vec<u8>> = None;
    loop {
        let next = match exporter.next_chunk(SNAPSHOT_CHUNK) {
            Ok(next) => next,
            Err(err) => {
                let _ = responses
                    .send(&error_response(Code::Internal, err.to_string()))
                    .await;
                return;
            }
        };
        if let Some(blob) = pending.take() {
            let last = next.is_none();
            let resp = ClientResponse {
                response: Some(Out::Snapshot(SnapshotResponse {
                    header: Some(header),
                    remaining_bytes: if last { 0 } else { 1 },
                    blob: blob.into(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                })),
            };
            if responses.send(&resp).await.is_err() {
                return;
            }
        }
        match next {
            Some(chunk) => pending = Some(chunk),
            None => break,
        }
    }
    responses.finish();
}
