//! The etcd-compatible gRPC listener: TCP (plaintext only for `http://` URLs), TLS with ALPN
//! `h2` for `https://`, HTTP/2 by hyper. Sockets, tasks and timers come from
//! [`qraft_io::runtime`], so the runtime stays replaceable in one place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use futures::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use hyper::service::service_fn;
use qraft_io::metrics::Metrics;
use qraft_io::runtime::{self, TcpListener, TcpStream};
use qraft_io::transport::ConnectionRoom;

use super::GrpcLimits;
use super::call::serve_call;
use super::handler::{CallContext, CoreHandle};
use crate::config::{Scheme, Url};
use crate::http::FuturesIo;

/// A client that has not finished its TLS handshake by then is dropped, so half-open
/// connections cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum GrpcListenError {
    #[error(
        "--listen-grpc-urls {url} is https but no server certificate is configured (--cert-file/--key-file or --auto-tls)"
    )]
    NoCertificate { url: Url },
    #[error("--listen-grpc-urls {url}: {source}")]
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
    listeners: Vec<(TcpListener, Option<TlsAcceptor>)>,
    core: Arc<dyn CoreHandle>,
    limits: GrpcLimits,
    metrics: Arc<Metrics>,
}

impl GrpcServer {
    /// Binds every URL. `tls` is the client listener's server configuration; its ALPN is
    /// replaced by `h2`, which gRPC clients require.
    pub async fn bind(
        urls: &[Url],
        tls: Option<Arc<rustls::ServerConfig>>,
        core: Arc<dyn CoreHandle>,
        limits: GrpcLimits,
    ) -> Result<Self, GrpcListenError> {
        let acceptor = tls.map(|config| {
            let mut config = (*config).clone();
            config.alpn_protocols = vec![b"h2".to_vec()];
            TlsAcceptor::from(Arc::new(config))
        });
        let mut listeners = Vec::new();
        for url in urls {
            let tls = match (url.scheme, &acceptor) {
                (Scheme::Https, Some(acceptor)) => Some(acceptor.clone()),
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
            listeners.push((listener, tls));
        }
        Ok(GrpcServer {
            listeners,
            core,
            limits,
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Records client requests and bytes in the member's `metrics` (by default they go to a
    /// registry of their own that nobody renders).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Where the listeners are bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(listener, _)| listener.local_addr().ok())
            .collect()
    }

    /// Accepts connections until the future is dropped.
    pub async fn run(self) {
        for addr in self.local_addrs() {
            tracing::info!(
                %addr,
                qraft_version = env!("CARGO_PKG_VERSION"),
                etcd_api = super::methods::ETCD_COMPATIBLE_VERSION,
                "serving etcd v3 gRPC"
            );
        }
        let serving = Serving {
            core: self.core,
            limits: self.limits,
            metrics: self.metrics,
        };
        join_all(
            self.listeners
                .into_iter()
                .map(|(listener, tls)| accept_loop(listener, tls, serving.clone())),
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
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, serving: Serving) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let tls = tls.clone();
                let serving = serving.clone();
                // Detached: the connection lives as long as the client keeps it.
                drop(runtime::spawn(async move {
                    if let Err(error) = serve_connection(stream, peer, tls, serving).await {
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
    serving: Serving,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match tls {
        None => {
            let ctx = CallContext {
                remote,
                peer_certificates: None,
                room: ConnectionRoom::default(),
            };
            serve_http2(stream, ctx, serving).await
        }
        Some(acceptor) => {
            let stream = runtime::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| "TLS handshake timed out")??;
            let ctx = CallContext {
                remote,
                peer_certificates: stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|chain| Arc::new(chain.to_vec())),
                room: ConnectionRoom::default(),
            };
            serve_http2(stream, ctx, serving).await
        }
    }
}

async fn serve_http2<S>(
    stream: S,
    ctx: CallContext,
    serving: Serving,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let serving = serving.clone();
        let ctx = ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(serve_call(serving, ctx, request).await) }
    });
    hyper::server::conn::http2::Builder::new(SpawnExecutor)
        .serve_connection(FuturesIo::new(stream), service)
        .await?;
    Ok(())
}

/// Runs hyper's per-stream tasks on the server's runtime.
#[derive(Clone, Copy)]
struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        drop(runtime::spawn(future));
    }
}
