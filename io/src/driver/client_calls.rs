//! The client listener's [`RequestHandler`] on top of the driver: every unary request is the
//! state machine's to answer (through the loop: a learner's refusal, forwarding to the leader,
//! maintenance calls included); watch, lease keep-alive and snapshot streams are served here,
//! each once the state machine admitted its first request ([`DriverHandle::admit`]: it refuses
//! what a learner refuses and checks the token and permission as for any other call).

use std::future::Future;

use qraft_core::server::{NextOnStream, StreamCall};
use qraft_proto::etcdserverpb::SnapshotResponse;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

use super::handle::DriverHandle;
use super::storage_contract::{DriverStorage, SnapshotChunks};
use super::watch;
use crate::error_responses::{Code, core_error_response, error_response};
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
        async move { handle.request(req).await }
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
            match StreamCall::of(&first) {
                Some(StreamCall::Watch) => {
                    watch::serve(handle, ctx.room, first, requests, responses).await
                }
                Some(StreamCall::LeaseKeepAlive) => {
                    keep_alive(handle, ctx, first, requests, responses).await
                }
                Some(StreamCall::Snapshot) => snapshot(handle, responses).await,
                None => {
                    let mut responses = responses;
                    let reply = error_response(Code::Unimplemented, "qraft: not a streaming call");
                    let _ = responses.send(&reply).await;
                }
            }
        }
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
        let Some(Ok(mut req)) = requests.next().await else {
            break;
        };
        match StreamCall::LeaseKeepAlive.next_request(&req) {
            NextOnStream::Serve => {
                ctx.stamp(&mut req);
                next = Some(req);
            }
            NextOnStream::EndWith(refusal) => {
                let _ = responses.send(&core_error_response(&refusal)).await;
            }
            NextOnStream::End => {}
        }
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
    let header = info.header();
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
