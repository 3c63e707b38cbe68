//! The etcd gRPC listener over real loopback HTTP/2, against a scripted core: the real
//! `etcd-client` crate (tonic) for the etcd-facing behaviour, a raw hyper HTTP/2 client for
//! the framing and error paths a well-behaved client never takes.

mod etcd_client_calls;
mod etcdctl;
mod raw_http2;
mod scripted_core;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use qraft_server::grpc::{GrpcLimits, GrpcServer};
use scripted_core::ScriptedCore;

/// Starts a plaintext listener on an ephemeral port; it lives until the test process ends.
pub fn start(core: ScriptedCore, limits: GrpcLimits) -> SocketAddr {
    let server = async_std::task::block_on(GrpcServer::bind(
        &["http://127.0.0.1:0".parse().expect("a valid URL")],
        None,
        Arc::new(core),
        limits,
    ))
    .expect("bind the gRPC listener on loopback");
    let addr = server.local_addrs()[0];
    async_std::task::spawn(server.run());
    addr
}
