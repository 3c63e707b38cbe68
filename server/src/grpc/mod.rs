//! etcd's v3 gRPC API, served on every client URL (TCP, beside the QUIC listener's UDP on the
//! same port) and on any extra `--listen-grpc-urls`, so existing etcd clients (etcdctl, Go
//! clientv3, the `etcd-client` crate) work against qraft unchanged. HTTP/1.1 on the same port
//! serves etcd's JSON gateway (`/v3/...`) and the member's HTTP endpoints (`/health`, ...).
//!
//! Every RPC is translated into the same `qraftpb::ClientRequest` the QUIC client listener
//! hands to the core ([`CoreHandle`]); this module only does HTTP/2, gRPC framing and status
//! mapping. etcd's lock and election services are sequences of such requests
//! ([`recipes`]). The binary wires it as
//! `GrpcServer::bind(&urls, client_tls, core, GrpcLimits::for_max_request_bytes(..))`
//! then runs [`GrpcServer::run`] on its runtime.
//! HTTP/2 is hyper 1 on [`qraft_io::runtime`]'s sockets and tasks through
//! [`crate::http::FuturesIo`], so there is no second async runtime.

/// For the read-side wrappers of a connection (`Prefixed`, `HeaderRewrite`, `FrameWatch`):
/// each looks at or rewrites what the client sends and hands every write straight to the
/// stream in its `inner` field.
macro_rules! writes_pass_through {
    ($wrapper:ident) => {
        impl<S: futures::AsyncWrite + Unpin> futures::AsyncWrite for $wrapper<S> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_flush(cx)
            }

            fn poll_close(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.inner).poll_close(cx)
            }
        }
    };
}
pub(crate) use writes_pass_through;

mod body;
mod call;
mod codec;
mod election_observe;
mod election_service;
mod frame_watch;
mod gateway;
mod gateway_json;
mod handler;
mod header_rewrite;
mod health_check;
mod hpack;
mod http1;
mod huffman;
mod inner_client;
mod listener;
mod lock_service;
mod methods;
mod recipes;
mod sniff;
mod status;
mod stream_tasks;

pub use handler::{CallContext, CoreHandle, ResponseStream};
pub use listener::{ConnectionPolicy, GrpcListenError, GrpcServer, HANDSHAKE_TIMEOUT, Serves};
pub use methods::ETCD_COMPATIBLE_VERSION;
pub use status::{Code, Status};

/// etcd's default `--max-request-bytes` (1.5 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1_572_864;
/// etcd lets a gRPC message exceed the request limit by this much (headers, framing) so
/// that the request-too-large check, with etcd's own message, happens in the core.
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct GrpcLimits {
    /// Larger request messages end the call with RESOURCE_EXHAUSTED.
    pub max_recv_message_bytes: usize,
}

impl GrpcLimits {
    /// etcd's rule: the gRPC receive limit is `--max-request-bytes` plus the overhead, so an
    /// oversized request reaches the core and gets etcd's "request is too large" error.
    pub fn for_max_request_bytes(max_request_bytes: u64) -> Self {
        let request = usize::try_from(max_request_bytes).unwrap_or(usize::MAX);
        GrpcLimits {
            max_recv_message_bytes: request.saturating_add(GRPC_OVERHEAD_BYTES),
        }
    }
}

impl Default for GrpcLimits {
    fn default() -> Self {
        GrpcLimits {
            max_recv_message_bytes: DEFAULT_MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES,
        }
    }
}
