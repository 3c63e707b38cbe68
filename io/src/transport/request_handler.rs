//! The interface between the client listener and the server: the server implements
//! [`RequestHandler`]; the listener owns the streams and the framing.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use qraft_proto::qraftpb::{ClientRequest, ClientResponse};
use rustls::pki_types::CertificateDer;

use super::{FrameError, TransportError, encode_frame, read_sized_frame};
use crate::error_responses::{Code, error_response};
use crate::metrics::Metrics;

/// Who is asking: the client's address and, with client-certificate auth, its verified
/// certificate chain (leaf first) — the server may derive a user name from it as etcd does
/// with the certificate's common name.
#[derive(Debug, Clone)]
pub struct ClientContext {
    pub remote: SocketAddr,
    pub peer_certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// The connection's share of pushed responses waiting to be written.
    pub room: super::ConnectionRoom,
}

impl ClientContext {
    /// The common name of the verified client certificate (etcd's user name for
    /// certificate-authenticated requests without a token).
    pub fn common_name(&self) -> Option<String> {
        let leaf = self.peer_certificates.as_ref()?.first()?;
        crate::tls::common_name(leaf)
    }

    /// Writes who is asking into `request`: the verified certificate's common name, or nothing
    /// (replacing whatever the client put there, so no client can name a user it has no
    /// certificate for). The state machine takes it as the user of a request without a token.
    pub fn stamp(&self, request: &mut ClientRequest) {
        request.cert_common_name = self.common_name().unwrap_or_default();
    }
}

/// Requests that keep their stream open, as the core classifies them
/// ([`qraft_core::server::StreamCall`]): watch and lease keep-alive take several requests and
/// answer each with one or more responses; snapshot answers one request with many chunks.
pub fn is_streaming(req: &ClientRequest) -> bool {
    qraft_core::server::StreamCall::of(req).is_some()
}

/// Serves client requests. The listener calls [`RequestHandler::handle`] for every unary
/// request (one stream, one request, one response) and [`RequestHandler::stream`] for the
/// requests [`is_streaming`] names. Both run on their own task per stream, so a slow request
/// never blocks another.
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers one request. Errors are responses carrying `qraftpb::Error`.
    fn handle(
        &self,
        ctx: ClientContext,
        req: ClientRequest,
    ) -> impl Future<Output = ClientResponse> + Send;

    /// Serves a long-lived stream that began with `first`. Further requests arrive on
    /// `requests` (it yields `None` when the client closes its side); responses go to
    /// `responses`. The stream ends when this future returns.
    fn stream(
        &self,
        ctx: ClientContext,
        first: ClientRequest,
        requests: RequestStream,
        responses: ResponseSink,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, first, requests);
        async move {
            let mut responses = responses;
            let reply = error_response(Code::Unimplemented, "qraft: streaming call not supported");
            let _ = responses.send(&reply).await;
        }
    }
}

/// The client's further requests on a long-lived stream.
pub struct RequestStream {
    recv: quinn::RecvStream,
    limit: usize,
    metrics: Arc<Metrics>,
}

impl RequestStream {
    pub(super) fn new(recv: quinn::RecvStream, limit: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            recv,
            limit,
            metrics,
        }
    }

    /// The next request; `None` once the client finished its side of the stream.
    pub async fn next(&mut self) -> Option<Result<ClientRequest, FrameError>> {
        let frame = read_sized_frame::<ClientRequest, _>(&mut self.recv, self.limit).await;
        match frame.transpose()? {
            Ok((request, bytes)) => {
                self.metrics
                    .client
                    .received(request.request.as_ref(), bytes);
                Some(Ok(request))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// Where a stream handler writes its responses.
pub struct ResponseSink {
    send: quinn::SendStream,
    buf: Vec<u8>,
    metrics: Arc<Metrics>,
}

impl ResponseSink {
    pub(super) fn new(send: quinn::SendStream, metrics: Arc<Metrics>) -> Self {
        Self {
            send,
            buf: Vec::new(),
            metrics,
        }
    }

    /// Sends one response. Fails once the client has gone away.
    pub async fn send(&mut self, resp: &ClientResponse) -> Result<(), TransportError> {
        self.send_all(std::slice::from_ref(resp)).await
    }

    /// Sends several responses in one write (e.g. watch events batched by the server).
    pub async fn send_all(&mut self, resps: &[ClientResponse]) -> Result<(), TransportError> {
        self.buf.clear();
        for resp in resps {
            encode_frame(resp, &mut self.buf)?;
        }
        self.send.write_all(&self.buf).await?;
        self.metrics.client.sent(self.buf.len());
        Ok(())
    }

    /// Resolves when the client stops reading (it cancelled or went away).
    pub async fn stopped(&mut self) {
        let _ = self.send.stopped().await;
    }

    /// Ends the stream cleanly after everything sent so far.
    pub fn finish(mut self) {
        let _ = self.send.finish();
    }
}
