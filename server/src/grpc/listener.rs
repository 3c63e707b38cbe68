//! The etcd-compatible gRPC listener: TCP (plaintext only for `http://` URLs), TLS with ALPN
//! `h2` for `https://`, HTTP/2 by hyper. Sockets, tasks and timers come from
//! [`qraft_io::runtime`], so the runtime stays replaceable in one place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use hyper::service::service_fn;
use qraft_io::metrics::Metrics;
use qraft_io::runtime::{self, TcpListener, TcpStream};
use qraft_io::transport::ConnectionRoom;

use super::GrpcLimits;
use super::call::serve_call;
use super::frame_watch::FrameWatch;
use super::handler::{CallContext, CoreHandle};
use super::header_rewrite::HeaderRewrite;
use super::http1::serve_http1;
use super::sniff::{Protocol, sniff};
use super::stream_tasks::in_task;
use crate::config::{GrpcKeepalive, Scheme, Url};
use crate::http::{FuturesIo, Responder, RuntimeTimer};
use crate::limits::ConnectionLimit;

/// A client that has not finished its TLS handshake and sent the HTTP/2 preface by then is
/// dropped, so idle and half-open connections cannot pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often a connection's watchdog looks at what its client sent.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(250);
/// At most one log line per this long about connections refused over the cap.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

/// How the listener treats connections: a cap on open ones, the time a new one has to start
/// speaking HTTP/2, and etcd's `--grpc-keepalive-*` ping policy.
#[derive(Debug, Clone)]
pub struct ConnectionPolicy {
    /// Open connections of all the server's listeners together; one more is closed at accept.
    pub limit: ConnectionLimit,
    /// For the TLS handshake and the HTTP/2 preface together.
    pub handshake_timeout: Duration,
    pub keepalive: GrpcKeepalive,
    /// `--max-concurrent-streams`: the HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
}

impl Default for ConnectionPolicy {
    fn default() -> Self {
        Self {
            limit: ConnectionLimit::new(usize::MAX),
            handshake_timeout: HANDSHAKE_TIMEOUT,
            keepalive: GrpcKeepalive::default(),
            max_concurrent_streams: u32::MAX,
        }
    }
}

/// What one listener serves on its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// gRPC (HTTP/2) and HTTP/1.1 (the JSON gateway, the probes), told apart per connection as
    /// etcd's connection multiplexer does: every client URL by default.
    Both,
    /// gRPC only: the client URLs when `--listen-client-http-urls` is given.
    Grpc,
    /// HTTP/1.1 only: `--listen-client-http-urls`.
    Http,
}

impl Serves {
    /// The TLS protocols offered (ALPN).
    fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Serves::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Serves::Grpc => vec![b"h2".to_vec()],
            Serves::Http => vec![b"http/1.1".to_vec()],
        }
    }

    fn admits(self, protocol: Protocol) -> bool {
        match self {
            Serves::Both => true,
            Serves::Grpc => protocol == Protocol::Http2,
            Serves::Http => protocol == Protocol::Http1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GrpcListenError {
    #[error(
        "gRPC URL {url} is https but no server certificate is configured (--cert-file/--key-file or --auto-tls)"
    )]
    NoCertificate { url: Url },
    #[error("gRPC URL {url}: {source}")]
    BadUrl {
        url: Url,
        #[source]
        source: crate::config::UrlError,
    },
    #[error("cannot listen on {url}: {source}")]
    Bind {
        url: Url,
        #[source]
        source: std::io::Error,
    },
}

/// Bound gRPC listeners, ready to serve.
pub struct GrpcServer {
    listeners: Vec<(TcpListener, Option<TlsAcceptor>, Serves)>,
    core: Arc<dyn CoreHandle>,
    limits: GrpcLimits,
    metrics: Arc<Metrics>,
    policy: ConnectionPolicy,
    http: Option<Arc<dyn Responder>>,
    gateway: bool,
}

impl GrpcServer {
    /// Binds every URL to serve both gRPC and HTTP/1.1 (see [`GrpcServer::bind_serving`]).
    pub async fn bind(
        urls: &[Url],
        tls: Option<Arc<rustls::ServerConfig>>,
        core: Arc<dyn CoreHandle>,
        limits: GrpcLimits,
    ) -> Result<Self, GrpcListenError> {
        let urls: Vec<(Url, Serves)> = urls.iter().map(|u| (u.clone(), Serves::Both)).collect();
        Self::bind_serving(&urls, tls, core, limits).await
    }

    /// Binds every URL to serve what its [`Serves`] says. `tls` is the client listener's
    /// server configuration; its ALPN is replaced by `h2` (which gRPC clients require) and/or
    /// `http/1.1` (the JSON gateway, the probes).
    pub async fn bind_serving(
        urls: &[(Url, Serves)],
        tls: Option<Arc<rustls::ServerConfig>>,
        core: Arc<dyn CoreHandle>,
        limits: GrpcLimits,
    ) -> Result<Self, GrpcListenError> {
        let acceptor = |serves: Serves| {
            tls.as_ref().map(|config| {
                let mut config = (**config).clone();
                config.alpn_protocols = serves.alpn();
                TlsAcceptor::from(Arc::new(config))
            })
        };
        let mut listeners = Vec::new();
        for (url, serves) in urls {
            let tls = match (url.scheme, acceptor(*serves)) {
                (Scheme::Https, Some(acceptor)) => Some(acceptor),
                (Scheme::Https, None) => {
                    return Err(GrpcListenError::NoCertificate { url: url.clone() });
                }
                (Scheme::Http, _) => None,
            };
            let addr = url.bind_addr().map_err(|source| GrpcListenError::BadUrl {
                url: url.clone(),
                source,
            })?;
            let listener =
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| GrpcListenError::Bind {
                        url: url.clone(),
                        source,
                    })?;
            listeners.push((listener, tls, *serves));
        }
        Ok(GrpcServer {
            listeners,
            core,
            limits,
            metrics: Arc::new(Metrics::new()),
            policy: ConnectionPolicy::default(),
            http: None,
            gateway: true,
        })
    }

    /// etcd's `--enable-grpc-gateway`: without it `/v3/...` answers 404 over HTTP/1.1 (the
    /// probes stay). On by default.
    pub fn with_gateway(mut self, enabled: bool) -> Self {
        self.gateway = enabled;
        self
    }

    /// Caps, timeouts and the keep-alive policy (by default: no cap, etcd's keep-alive).
    pub fn with_policy(mut self, policy: ConnectionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Records client requests and bytes in the member's `metrics` (by default they go to a
    /// registry of their own that nobody renders).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The member's HTTP endpoints (`/health`, `/metrics`, ...), served to HTTP/1.1 clients
    /// beside the JSON gateway; without them those paths answer 404.
    pub fn with_http(mut self, endpoints: Arc<dyn Responder>) -> Self {
        self.http = Some(endpoints);
        self
    }

    /// Where the listeners are bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(listener, _, _)| listener.local_addr().ok())
            .collect()
    }

    /// Accepts connections until the future is dropped.
    pub async fn run(self) {
        for (listener, _, serves) in &self.listeners {
            let Ok(addr) = listener.local_addr() else {
                continue;
            };
            let what = match serves {
                Serves::Both => "serving etcd v3 gRPC and HTTP/1.1 (JSON gateway, probes)",
                Serves::Grpc => "serving etcd v3 gRPC",
                Serves::Http => "serving client HTTP/1.1 only (JSON gateway, probes)",
            };
            tracing::info!(
                %addr,
                qraft_version = env!("CARGO_PKG_VERSION"),
                etcd_api = super::methods::ETCD_COMPATIBLE_VERSION,
                "{what}"
            );
        }
        let serving = Serving {
            core: self.core,
            limits: self.limits,
            metrics: self.metrics,
            policy: Arc::new(self.policy),
            http: self.http,
            gateway: self.gateway,
        };
        join_all(
            self.listeners
                .into_iter()
                .map(|(listener, tls, serves)| accept_loop(listener, tls, serves, serving.clone())),
        )
        .await;
    }
}

/// What every connection of a running server shares.
#[derive(Clone)]
pub(super) struct Serving {
    pub core: Arc<dyn CoreHandle>,
    pub limits: GrpcLimits,
    pub metrics: Arc<Metrics>,
    pub policy: Arc<ConnectionPolicy>,
    pub http: Option<Arc<dyn Responder>>,
    /// `/v3/...` over HTTP/1.1 goes to the JSON gateway.
    pub gateway: bool,
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    serves: Serves,
    serving: Serving,
) {
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(slot) = serving.policy.limit.try_acquire() else {
                    // Closed at once: a descriptor held for a connection that cannot be served
                    // is one the member may need for its own files.
                    drop(stream);
                    if last_refusal_log.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_PERIOD) {
                        last_refusal_log = Some(Instant::now());
                        tracing::warn!(
                            %peer,
                            max = serving.policy.limit.max(),
                            "gRPC connection refused: too many open connections"
                        );
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let tls = tls.clone();
                let serving = serving.clone();
                // Detached: the connection lives as long as the client keeps it.
                drop(runtime::spawn(async move {
                    let _slot = slot;
                    if let Err(error) = serve_connection(stream, peer, tls, serves, serving).await {
                        tracing::debug!(%peer, %error, "gRPC connection ended");
                    }
                }));
            }
            Err(error) => {
                tracing::warn!(%error, "gRPC accept failed");
                runtime::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    tls: Option<TlsAcceptor>,
    serves: Serves,
    serving: Serving,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let started = Instant::now();
    match tls {
        None => {
            let ctx = CallContext {
                remote,
                peer_certificates: None,
                room: ConnectionRoom::default(),
            };
            serve_protocol(stream, ctx, serving, serves, started).await
        }
        Some(acceptor) => {
            let handshake =
                runtime::timeout(serving.policy.handshake_timeout, acceptor.accept(stream))
                    .await
                    .map_err(|_| "TLS handshake timed out")?;
            let stream = handshake?;
            let ctx = CallContext {
                remote,
                peer_certificates: stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|chain| Arc::new(chain.to_vec())),
                room: ConnectionRoom::default(),
            };
            serve_protocol(stream, ctx, serving, serves, started).await
        }
    }
}

/// HTTP/2 (gRPC) or HTTP/1.1 (JSON gateway, probes), told apart by the HTTP/2 preface as
/// etcd's connection multiplexer does.
async fn serve_protocol<S>(
    stream: S,
    ctx: CallContext,
    serving: Serving,
    serves: Serves,
    started: Instant,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let left = serving
        .policy
        .handshake_timeout
        .saturating_sub(started.elapsed());
    let (stream, protocol) = runtime::timeout(left, sniff(stream))
        .await
        .map_err(|_| "no request in time")??;
    if !serves.admits(protocol) {
        // etcd's split listeners do the same: the other protocol is served on the other port.
        return Err(match protocol {
            Protocol::Http1 => "HTTP/1.1 on a gRPC-only client URL (see --listen-client-http-urls)",
            Protocol::Http2 => "HTTP/2 on an HTTP/1.1-only URL (--listen-client-http-urls)",
        }
        .into());
    }
    match protocol {
        Protocol::Http2 => serve_http2(stream, ctx, serving, started).await,
        Protocol::Http1 => serve_http1(stream, ctx, serving).await,
    }
}

async fn serve_http2<S>(
    stream: S,
    ctx: CallContext,
    serving: Serving,
    started: Instant,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let policy = serving.policy.clone();
    // etcdctl 3.4's `:authority` = `http://host:port` is fixed before h2 sees it.
    let (stream, observed) = FrameWatch::new(HeaderRewrite::new(stream), policy.keepalive.min_time);
    let service = service_fn(move |request| {
        let serving = serving.clone();
        let ctx = ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(serve_call(serving, ctx, request).await) }
    });
    // Stream futures run in the connection's task (see `stream_tasks`).
    let connection = in_task(|spawner| {
        let mut builder = hyper::server::conn::http2::Builder::new(spawner);
        builder
            .timer(RuntimeTimer)
            // grpc-go sends no `date` either; it would cost a header on every answer.
            .auto_date_header(false)
            .max_concurrent_streams(policy.max_concurrent_streams)
            .keep_alive_interval(policy.keepalive.interval)
            // hyper has no "never": an unanswered ping may then wait a century.
            .keep_alive_timeout(
                policy
                    .keepalive
                    .timeout
                    .unwrap_or(Duration::from_secs(100 * 365 * 86_400)),
            );
        builder.serve_connection(FuturesIo::new(stream), service)
    });
    // What hyper does not enforce: the preface in time, and the client's ping rate.
    let watchdog = async {
        loop {
            runtime::sleep(WATCHDOG_PERIOD).await;
            if observed.too_many_pings.load(Ordering::Acquire) {
                return "too_many_pings: the client pinged more often than --grpc-keepalive-min-time";
            }
            if !observed.started.load(Ordering::Acquire)
                && started.elapsed() >= policy.handshake_timeout
            {
                return "no HTTP/2 preface in time";
            }
        }
    };
    futures::pin_mut!(connection, watchdog);
    match futures::future::select(connection, watchdog).await {
        futures::future::Either::Left((served, _)) => Ok(served?),
        futures::future::Either::Right((reason, _)) => Err(reason.into()),
    }
}
