//! What the gRPC listener needs from the rest of the server: the same request path into the
//! core that the QUIC client listener uses. Every etcd RPC is translated into a
//! `qraftpb::ClientRequest` and answered by a `qraftpb::ClientResponse`, so no KV, watch, lease,
//! cluster, maintenance or auth logic lives in the gRPC layer.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use qraft_io::transport::ConnectionRoom;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};
use rustls::pki_types::CertificateDer;

/// Responses of a long-lived exchange, in the order the core produces them.
pub type ResponseStream = BoxStream<'static, ClientResponse>;

/// Who is calling: the client's address and, over TLS with client-certificate auth, its
/// verified chain (leaf first), from which the server may take a user name as etcd does.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub remote: SocketAddr,
    pub peer_certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// The connection's share of pushed responses waiting to be written (one per HTTP/2
    /// connection, shared by its calls).
    pub room: ConnectionRoom,
}

/// The core as seen by a client listener.
pub trait CoreHandle: Send + Sync + 'static {
    /// One request, one response: every unary etcd RPC.
    fn call(&self, ctx: CallContext, request: ClientRequest) -> BoxFuture<'static, ClientResponse>;

    /// A long-lived exchange (Watch, LeaseKeepAlive, Snapshot): requests arrive as the client
    /// sends them; responses flow until the core ends the stream or the caller drops it.
    /// The request stream ending means the client half-closed, not that the exchange is over
    /// (etcd keeps delivering watch events after a client's CloseSend).
    fn open_stream(
        &self,
        ctx: CallContext,
        requests: BoxStream<'static, ClientRequest>,
    ) -> ResponseStream;
}
