//! Building quinn endpoints from rustls configurations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{EndpointConfig, MtuDiscoveryConfig, TransportConfig, VarInt};
use quinn_proto::HashedConnectionIdGenerator;
use ring::hmac;

use super::TransportError;
use crate::runtime;
use crate::tls::Identity;

/// QUIC settings shared by both protocols: keep-alives well inside the idle timeout so a live
/// but quiet connection is never dropped, while a dead peer is noticed within `idle_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct QuicSettings {
    pub idle_timeout: Duration,
    pub keep_alive: Duration,
    /// Concurrent streams the remote may open towards us (client requests are one stream each).
    pub max_concurrent_streams: u32,
    /// The round-trip time assumed before one is measured: it paces the retransmission of a
    /// dial's first packets (the first after three times this), so a dial that started while
    /// the path was down completes soon after it comes back.
    pub initial_rtt: Duration,
    /// Bytes one stream may have in flight before the receiver reads them (QUIC flow control):
    /// a bulk stream (a snapshot) moves at most this much per round trip of the receiver's
    /// credit, so it bounds throughput; it also bounds what a slow reader buffers per stream.
    pub stream_window: u32,
    /// The largest UDP payload MTU discovery tries (it settles on what the path carries and
    /// falls back on loss, so a high bound is safe): fewer, larger datagrams per byte where
    /// the path allows them (loopback, jumbo frames).
    pub mtu_upper_bound: u16,
}

impl Default for QuicSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            max_concurrent_streams: 1024,
            // quinn's defaults.
            initial_rtt: Duration::from_millis(333),
            stream_window: 1_250_000,
            mtu_upper_bound: 1452,
        }
    }
}

fn transport_config(settings: &QuicSettings) -> Result<Arc<TransportConfig>, TransportError> {
    let mut config = TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(settings.idle_timeout)
        .map_err(|_| TransportError::Config("idle timeout too large".into()))?;
    config
        .max_idle_timeout(Some(idle))
        .initial_rtt(settings.initial_rtt)
        .keep_alive_interval(Some(settings.keep_alive))
        .max_concurrent_bidi_streams(VarInt::from_u32(settings.max_concurrent_streams))
        .max_concurrent_uni_streams(VarInt::from_u32(settings.max_concurrent_streams))
        .stream_receive_window(VarInt::from_u32(settings.stream_window))
        // Several bulk streams at once still share a bounded buffer and send budget.
        .receive_window(VarInt::from_u32(settings.stream_window.saturating_mul(2)))
        .send_window(u64::from(settings.stream_window) * 2);
    let mut mtu = MtuDiscoveryConfig::default();
    mtu.upper_bound(settings.mtu_upper_bound);
    config.mtu_discovery_config(Some(mtu));
    Ok(Arc::new(config))
}

pub(crate) fn server_config(
    tls: rustls::ServerConfig,
    settings: &QuicSettings,
) -> Result<quinn::ServerConfig, TransportError> {
    let crypto = QuicServerConfig::try_from(tls)
        .map_err(|e| TransportError::Config(format!("TLS config unusable for QUIC: {e}")))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config(settings)?);
    Ok(config)
}

pub(crate) fn client_config(
    tls: rustls::ClientConfig,
    settings: &QuicSettings,
) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = QuicClientConfig::try_from(tls)
        .map_err(|e| TransportError::Config(format!("TLS config unusable for QUIC: {e}")))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config(settings)?);
    Ok(config)
}

/// Binds a UDP socket on `addr` and runs a QUIC endpoint on it; `server` makes it accept.
pub(crate) fn bind(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
    client: Option<quinn::ClientConfig>,
) -> Result<quinn::Endpoint, TransportError> {
    bind_with(addr, EndpointConfig::default(), server, client)
}

/// [`bind`] for a member's long-lived listener, with [`restartable_config`].
pub(crate) fn bind_restartable(
    addr: SocketAddr,
    identity: &Identity,
    role: &str,
    server: quinn::ServerConfig,
    client: Option<quinn::ClientConfig>,
) -> Result<quinn::Endpoint, TransportError> {
    bind_with(
        addr,
        restartable_config(identity, role),
        Some(server),
        client,
    )
}

/// An endpoint configuration that lets a restarted member end, at once, the connections its
/// previous process held. After a crash the other side keeps sending on the old connection;
/// the new process answers those packets with a QUIC stateless reset, which the other side
/// accepts only if it carries the token the old process issued. Both the reset key and the
/// connection-ID key are therefore derived from the member's TLS private key (secret, and the
/// same across restarts) instead of being random per process; without this the old
/// connection lingers until its idle timeout (seconds during which raft's messages to the
/// restarted member are lost). `role` keeps the keys of the member's listeners apart.
fn restartable_config(identity: &Identity, role: &str) -> EndpointConfig {
    let secret = hmac::Key::new(hmac::HMAC_SHA256, identity.key.secret_der());
    let derive = |label: &str| hmac::sign(&secret, format!("qraft quic {role} {label}").as_bytes());
    let reset_key = hmac::Key::new(hmac::HMAC_SHA256, derive("stateless reset").as_ref());
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&derive("connection id").as_ref()[..8]);
    let cid_key = u64::from_le_bytes(cid_key);
    let mut config = EndpointConfig::new(Arc::new(reset_key));
    config.cid_generator(move || Box::new(HashedConnectionIdGenerator::from_key(cid_key)));
    config
}

fn bind_with(
    addr: SocketAddr,
    config: EndpointConfig,
    server: Option<quinn::ServerConfig>,
    client: Option<quinn::ClientConfig>,
) -> Result<quinn::Endpoint, TransportError> {
    let socket =
        std::net::UdpSocket::bind(addr).map_err(|source| TransportError::Bind { addr, source })?;
    let mut endpoint = quinn::Endpoint::new(config, server, socket, runtime::quic_runtime())
        .map_err(|source| TransportError::Bind { addr, source })?;
    if let Some(client) = client {
        endpoint.set_default_client_config(client);
    }
    Ok(endpoint)
}

/// Parses `scheme://host:port` (or `host:port`) into host and port. etcd-style URLs use
/// `http`/`https`; qraft always speaks QUIC+TLS, so the scheme is only checked for sanity.
pub fn parse_url(url: &str) -> Result<(String, u16), TransportError> {
    let bad = || TransportError::BadUrl(url.to_string());
    let rest = match url.split_once("://") {
        Some(("http" | "https" | "quic", rest)) => rest,
        Some(_) => return Err(bad()),
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Resolves a URL to the address to dial and the name to verify in the server's certificate.
pub async fn resolve_url(url: &str) -> Result<(SocketAddr, String), TransportError> {
    let (host, port) = parse_url(url)?;
    let addrs = runtime::resolve(&host, port)
        .await
        .map_err(|e| TransportError::Resolve(format!("{url}: {e}")))?;
    let addr = addrs
        .into_iter()
        .next()
        .ok_or_else(|| TransportError::Resolve(format!("{url}: no address")))?;
    Ok((addr, host))
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls_parse_into_host_and_port() {
        assert_eq!(
            parse_url("https://127.0.0.1:2380").unwrap(),
            ("127.0.0.1".into(), 2380)
        );
        assert_eq!(
            parse_url("http://[::1]:2379/").unwrap(),
            ("::1".into(), 2379)
        );
        assert_eq!(
            parse_url("node1.example:2379").unwrap(),
            ("node1.example".into(), 2379)
        );
        assert!(parse_url("ftp://x:1").is_err());
        assert!(parse_url("https://x").is_err());
        assert!(parse_url("https://:1").is_err());
        assert!(parse_url("https://x:99999").is_err());
    }
}
