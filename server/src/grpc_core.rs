//! The gRPC listener's [`CoreHandle`] on top of the driver: unary calls take the same path as
//! the QUIC client listener's; watch and lease keep-alive streams are bridged through channels;
//! snapshots are pulled straight from storage ([`crate::grpc_snapshot`]).

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream;
use futures::stream::BoxStream;
use futures::{FutureExt, SinkExt, StreamExt};
use qraft_io::driver::DriverHandle;
use qraft_io::error_responses::{Code, error_response};
use qraft_io::runtime;
use qraft_io::transport::{ClientContext, ConnectionRoom, RequestHandler};
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

use crate::grpc::{CallContext, CoreHandle, ResponseStream};
use crate::grpc_snapshot::snapshot_responses;

pub struct GrpcCore {
    pub handle: DriverHandle,
}

impl CoreHandle for GrpcCore {
    fn call(&self, ctx: CallContext, request: ClientRequest) -> BoxFuture<'static, ClientResponse> {
        let handle = self.handle.clone();
        let ctx = ClientContext {
            remote: ctx.remote,
            peer_certificates: ctx.peer_certificates,
            room: ctx.room,
        };
        async move { handle.handle(ctx, request).await }.boxed()
    }

    fn open_stream(
        &self,
        ctx: CallContext,
        requests: BoxStream<'static, ClientRequest>,
    ) -> ResponseStream {
        let handle = self.handle.clone();
        let who = ClientContext {
            remote: ctx.remote,
            peer_certificates: ctx.peer_certificates.clone(),
            room: ctx.room.clone(),
        };
        // Every request of the stream runs as the client certificate's user, as unary calls.
        let requests = requests
            .map(move |mut request| {
                who.stamp(&mut request);
                request
            })
            .boxed();
        requests
            .into_future()
            .then(move |(first, rest)| async move {
                // Whether a stream may go on is the state machine's to say, as on the QUIC
                // listener: a learner refuses every stream but the snapshot, as etcd's, and
                // the snapshot's caller must hold the root role.
                let refusal = match &first {
                    Some(first) => handle.admit(first).await,
                    None => None,
                };
                (handle, first, rest, refusal)
            })
            .map(move |(handle, first, rest, refusal)| match first {
                _ if let Some(refusal) = refusal => stream::iter([refusal]).boxed(),
                // Pulled by the HTTP/2 body, so a slow reader holds the export back instead
                // of the whole snapshot piling up in memory.
                Some(ClientRequest {
                    request: Some(In::Snapshot(_)),
                    ..
                }) => snapshot_responses(&handle),
                Some(first) => {
                    // Bounded: the bridge waits for the HTTP/2 body to take a response before
                    // it takes the next one from the loop, so a client that does not read
                    // leaves the loop's watch queue full (its watchers then catch up from
                    // the store's history later) instead of piling responses up here.
                    let (out, rx) = mpsc::channel(BRIDGE_RESPONSES);
                    // Detached: it ends when the client's requests end (keep-alive) or when
                    // the caller drops the response stream (watch).
                    drop(runtime::spawn(bridge(
                        handle,
                        ctx.room.clone(),
                        first,
                        rest,
                        out,
                    )));
                    rx.boxed()
                }
                None => stream::empty().boxed(),
            })
            .flatten_stream()
            .boxed()
    }
}

/// Responses a bridge may have waiting for the HTTP/2 body.
const BRIDGE_RESPONSES: usize = 4;

async fn bridge(
    handle: DriverHandle,
    room: ConnectionRoom,
    first: ClientRequest,
    mut requests: BoxStream<'static, ClientRequest>,
    mut out: mpsc::Sender<ClientResponse>,
) {
    match first.request {
        Some(In::Watch(w)) => {
            let Ok((stream, mut rx)) = handle.open_watch(room).await else {
                return;
            };
            // Every message carries the stream's token (from its metadata); the loop checks it.
            let caller = (first.token, first.cert_common_name);
            handle.watch(stream, caller, w).await;
            let feeder_handle = handle.clone();
            let feeder = runtime::spawn(async move {
                while let Some(req) = requests.next().await {
                    if let Some(In::Watch(w)) = req.request
                        && !feeder_handle
                            .watch(stream, (req.token, req.cert_common_name), w)
                            .await
                    {
                        break;
                    }
                }
            });
            'writing: while let Some(batch) = rx.next().await {
                for w in batch {
                    let resp = ClientResponse {
                        response: Some(Out::Watch(w)),
                    };
                    if out.send(resp).await.is_err() {
                        break 'writing;
                    }
                }
            }
            handle.close_watch(stream);
            drop(feeder);
        }
        Some(In::LeaseKeepAlive(_)) => {
            let mut next = Some(first);
            while let Some(req) = next.take() {
                if out.send(handle.request(req).await).await.is_err() {
                    return;
                }
                next = requests.next().await;
            }
        }
        _ => {
            let _ = out
                .send(error_response(
                    Code::Unimplemented,
                    "qraft: this streaming call is not served over gRPC yet",
                ))
                .await;
        }
    }
}
