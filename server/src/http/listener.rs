//! The socket side: a TCP listener of the runtime (`qraft_io::runtime`) whose connections hyper
//! serves over HTTP/1.1. The only module of the HTTP endpoints that touches the runtime.

use super::futures_io::FuturesIo;
use super::routes::{Endpoints, Reply};
use super::source::HealthSource;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use qraft_io::metrics::Metrics;
use qraft_io::runtime::{self, Task, TcpListener};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::timer::RuntimeTimer;
use crate::limits::{ConnectionLimit, MAX_HTTP_CONNECTIONS};

/// A client that has not sent a complete request head this long after connecting, or after its
/// previous response, is disconnected: idle and half-sent requests cannot hold descriptors.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one log line per this long about connections refused over the cap.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

/// A running HTTP endpoint (the `--listen-metrics-urls` listener, or a client listener's HTTP
/// side). Dropping it leaves it running; call [`HttpServer::shutdown`] to stop accepting.
pub struct HttpServer {
    local_addr: SocketAddr,
    accept_loop: Task<()>,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving in the background, at most
    /// [`MAX_HTTP_CONNECTIONS`] connections at once.
    pub async fn start<S: HealthSource>(
        addr: SocketAddr,
        source: Arc<S>,
        metrics: Arc<Metrics>,
    ) -> io::Result<Self> {
        Self::start_with_limit(addr, source, metrics, MAX_HTTP_CONNECTIONS).await
    }

    /// [`HttpServer::start`] serving at most `max_connections` connections at once; one more
    /// is closed as soon as it is accepted.
    pub async fn start_with_limit<S: HealthSource>(
        addr: SocketAddr,
        source: Arc<S>,
        metrics: Arc<Metrics>,
        max_connections: usize,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let endpoints = Arc::new(Endpoints::new(source, metrics));
        let limit = ConnectionLimit::new(max_connections);
        let accept_loop = runtime::spawn(accept(listener, endpoints, limit));
        Ok(HttpServer {
            local_addr,
            accept_loop,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections. Requests already in progress finish on their own tasks.
    pub async fn shutdown(self) {
        self.accept_loop.cancel().await;
    }
}

async fn accept<S: HealthSource>(
    listener: TcpListener,
    endpoints: Arc<Endpoints<S>>,
    limit: ConnectionLimit,
) {
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let (stream, slot) = match listener.accept().await {
            Ok((stream, peer)) => match limit.try_acquire() {
                Some(slot) => (stream, slot),
                None => {
                    drop(stream);
                    if last_refusal_log.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_PERIOD) {
                        last_refusal_log = Some(Instant::now());
                        tracing::warn!(
                            %peer,
                            max = limit.max(),
                            "http connection refused: too many open connections"
                        );
                    }
                    continue;
                }
            },
            Err(e) => {
                // Typically EMFILE: back off briefly instead of spinning.
                tracing::warn!(error = %e, "http accept failed");
                runtime::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoints = endpoints.clone();
        // Detached: a connection ends when its client closes it.
        drop(runtime::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| {
                let endpoints = endpoints.clone();
                async move { Ok::<_, Infallible>(handle(&endpoints, request).await) }
            });
            if let Err(e) = http1::Builder::new()
                .timer(RuntimeTimer)
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(FuturesIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        }));
    }
}

async fn handle<S: HealthSource>(
    endpoints: &Endpoints<S>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let uri = request.uri();
    let reply = endpoints
        .respond(request.method().as_str(), uri.path(), uri.query())
        .await;
    into_response(reply, Full::new)
}

/// The reply as hyper's response, its body made by `body` (each listener has its body type).
pub fn into_response<B>(reply: Reply, body: impl FnOnce(Bytes) -> B) -> Response<B> {
    let mut response = Response::new(body(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    if reply.nosniff {
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
    }
    if reply.allow_get {
        headers.insert(ALLOW, HeaderValue::from_static("GET"));
    }
    response
}
