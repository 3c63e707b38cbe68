//! The client listener: accepts `qraft-client/1` connections and serves one request per
//! bidirectional stream through a [`RequestHandler`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prost::Message as _;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use super::request_handler::{RequestStream, ResponseSink};
use super::{
    ClientContext, FrameError, QuicSettings, RequestHandler, TransportError, codes, encode_frame,
    is_streaming, read_sized_frame,
};
use crate::error_responses::{Code, core_error_response, error_response};
use crate::metrics::Metrics;
use crate::runtime::{self, Task};
use crate::tls::{self, Identity};
use qraft_core::error::Error;

/// etcd's default `--max-request-bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1_572_864;
/// Client connections served at once by default. QUIC connections share the listener's one
/// UDP socket, so they cost memory, not file descriptors; idle ones end after the QUIC idle
/// timeout ([`QuicSettings::idle_timeout`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

#[derive(Debug, Clone)]
pub struct ClientListenerConfig {
    pub listen: SocketAddr,
    pub identity: Identity,
    /// `Some` = `--client-cert-auth`: clients must present a certificate signed by this CA.
    pub client_ca: Option<RootCertStore>,
    /// `--client-crl-file`: client certificates it revokes are refused.
    pub client_checks: tls::CertChecks,
    pub quic: QuicSettings,
    /// Requests whose encoding is larger get etcd's "request is too large" error.
    pub max_request_bytes: usize,
    /// Connections (and handshakes in progress) beyond this are refused.
    pub max_connections: usize,
    /// Where client requests and bytes are recorded.
    pub metrics: Arc<Metrics>,
}

impl ClientListenerConfig {
    pub fn new(listen: SocketAddr, identity: Identity, client_ca: Option<RootCertStore>) -> Self {
        Self {
            listen,
            identity,
            client_ca,
            client_checks: tls::CertChecks::default(),
            quic: QuicSettings::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// The frame limit: the request limit plus etcd's 512 KiB framing allowance, so a request
    /// slightly over the limit is still read and answered with a proper error.
    fn frame_limit(&self) -> usize {
        self.max_request_bytes + 512 * 1024
    }
}

pub struct ClientListener {
    endpoint: quinn::Endpoint,
    accept_task: std::sync::Mutex<Option<Task<()>>>,
}

impl ClientListener {
    /// Binds the client listener and serves requests with `handler` until [`Self::shutdown`].
    pub fn start<H: RequestHandler>(
        config: ClientListenerConfig,
        handler: Arc<H>,
    ) -> Result<Self, TransportError> {
        let tls = tls::client_listener_config(
            &config.identity,
            config.client_ca.as_ref(),
            &config.client_checks,
        )?;
        let server = super::server_config(tls, &config.quic)?;
        let endpoint =
            super::bind_restartable(config.listen, &config.identity, "client", server, None)?;
        let task = runtime::spawn(accept_loop(endpoint.clone(), Arc::new(config), handler));
        Ok(Self {
            endpoint,
            accept_task: std::sync::Mutex::new(Some(task)),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint
            .local_addr()
            .map_err(|source| TransportError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })
    }

    /// Stops accepting, closes every client connection and waits (bounded) for the socket.
    pub async fn shutdown(&self) {
        self.endpoint
            .close(codes::SHUTDOWN, b"server shutting down");
        let task = super::peer::lock(&self.accept_task).take();
        if let Some(task) = task {
            task.cancel().await;
        }
        let _ = runtime::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

async fn accept_loop<H: RequestHandler>(
    endpoint: quinn::Endpoint,
    config: Arc<ClientListenerConfig>,
    handler: Arc<H>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    while let Some(incoming) = endpoint.accept().await {
        let taken = open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < config.max_connections).then_some(n + 1)
        });
        if taken.is_err() {
            tracing::debug!(remote = %incoming.remote_address(), "client connection refused: too many open connections");
            incoming.refuse();
            continue;
        }
        let config = config.clone();
        let handler = handler.clone();
        let open = open.clone();
        runtime::spawn(async move {
            match incoming.await {
                Ok(conn) => serve_connection(conn, config, handler).await,
                Err(e) => tracing::info!(error = %e, "client handshake failed"),
            }
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

async fn serve_connection<H: RequestHandler>(
    conn: quinn::Connection,
    config: Arc<ClientListenerConfig>,
    handler: Arc<H>,
) {
    let ctx = ClientContext {
        remote: conn.remote_address(),
        peer_certificates: conn
            .peer_identity()
            .and_then(|id| id.downcast::<Vec<CertificateDer<'static>>>().ok())
            .map(|certs| Arc::new(*certs)),
        room: super::ConnectionRoom::default(),
    };
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                runtime::spawn(serve_stream(
                    ctx.clone(),
                    send,
                    recv,
                    config.clone(),
                    handler.clone(),
                ));
            }
            Err(e) => {
                tracing::debug!(remote = %ctx.remote, error = %e, "client connection ended");
                return;
            }
        }
    }
}

async fn serve_stream<H: RequestHandler>(
    ctx: ClientContext,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    config: Arc<ClientListenerConfig>,
    handler: Arc<H>,
) {
    let limit = config.frame_limit();
    let metrics = &config.metrics;
    let first = read_sized_frame::<ClientRequest, _>(&mut recv, limit).await;
    if let Ok(Some((req, bytes))) = &first {
        metrics.client.received(req.request.as_ref(), *bytes);
    }
    let rejection = match first.map(|frame| frame.map(|(req, _)| req)) {
        Ok(Some(req)) if req.encoded_len() > config.max_request_bytes => {
            core_error_response(&Error::RequestTooLarge)
        }
        Ok(Some(req)) if is_streaming(&req) => {
            let requests = RequestStream::new(recv, limit, metrics.clone());
            let sink = ResponseSink::new(send, metrics.clone());
            handler.stream(ctx, req, requests, sink).await;
            return;
        }
        Ok(Some(req)) => {
            let resp = handler.handle(ctx, req).await;
            let _ = recv.stop(codes::SHUTDOWN);
            respond(&mut send, &resp, metrics).await;
            return;
        }
        Ok(None) => {
            let _ = send.finish();
            return;
        }
        Err(FrameError::TooLarge { .. }) => core_error_response(&Error::RequestTooLarge),
        Err(FrameError::Decode(e)) => error_response(
            Code::InvalidArgument,
            format!("qraft: malformed request: {e}"),
        ),
        Err(e) => {
            tracing::debug!(remote = %ctx.remote, error = %e, "client stream failed");
            let _ = send.reset(codes::BAD_FRAME);
            return;
        }
    };
    // The rest of a rejected stream is not read: stop it so the client learns at once.
    let _ = recv.stop(codes::BAD_FRAME);
    respond(&mut send, &rejection, metrics).await;
}

async fn respond(send: &mut quinn::SendStream, resp: &ClientResponse, metrics: &Metrics) {
    let mut buf = Vec::new();
    if let Err(e) = encode_frame(resp, &mut buf) {
        tracing::warn!(error = %e, "response not encodable");
        let _ = send.reset(codes::BAD_FRAME);
        return;
    }
    if send.write_all(&buf).await.is_ok() {
        metrics.client.sent(buf.len());
        let _ = send.finish();
    }
}
