//! QUIC transport: framing, the peer transport (raft messages and snapshots between members,
//! and requests from one member to another) and the client listener (one stream per request,
//! long-lived streams for watch/keep-alive).

mod backoff;
mod client_listener;
mod connection_room;
mod endpoint;
mod frame;
mod members;
mod peer;
mod peer_keeper;
mod peer_recv;
mod peer_request;
mod peer_send;
mod peer_snapshot;
mod request_handler;

pub use backoff::Backoff;
pub use client_listener::{ClientListener, ClientListenerConfig};
pub use connection_room::{CONNECTION_ROOM_BYTES, ConnectionRoom};
pub use endpoint::{QuicSettings, parse_url, resolve_url};
pub use frame::{
    CLIENT_REQUEST_FRAME_LIMIT, CLIENT_RESPONSE_FRAME_LIMIT, FrameError, FrameReader,
    PEER_FRAME_LIMIT, encode_frame, read_frame, read_sized_frame,
};
pub use members::fetch_members;
pub use peer::{
    PEER_IDLE_TIMEOUT, PeerAddr, PeerEvent, PeerTransport, PeerTransportConfig, QuicPeerTransport,
};
pub use peer_request::PeerRequestHandler;
pub use request_handler::{
    ClientContext, RequestHandler, RequestStream, ResponseSink, is_streaming,
};

pub(crate) use endpoint::{bind, bind_restartable, client_config, server_config};

use std::net::SocketAddr;

/// QUIC application error codes used to close streams and connections.
pub mod codes {
    use quinn::VarInt;
    /// Orderly shutdown.
    pub const SHUTDOWN: VarInt = VarInt::from_u32(0);
    /// A frame was too large or did not decode.
    pub const BAD_FRAME: VarInt = VarInt::from_u32(1);
    /// The peer hello named another cluster.
    pub const WRONG_CLUSTER: VarInt = VarInt::from_u32(2);
    /// The stream did not start with a hello, or spoke the wrong protocol.
    pub const PROTOCOL: VarInt = VarInt::from_u32(3);
    /// The connecting member was removed from the cluster.
    pub const REMOVED: VarInt = VarInt::from_u32(4);
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid URL {0:?} (want https://host:port)")]
    BadUrl(String),
    #[error("resolving {0}")]
    Resolve(String),
    #[error("transport configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("connecting: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("stream write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream closed: {0}")]
    ClosedStream(#[from] quinn::ClosedStream),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("peer stopped the stream: {0}")]
    Stopped(String),
    #[error("timed out")]
    Timeout,
    #[error("peer request: {0}")]
    PeerRequest(String),
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error("member {0:x} is not a known peer")]
    UnknownPeer(u64),
    #[error("this member has been removed from the cluster")]
    Removed,
}
