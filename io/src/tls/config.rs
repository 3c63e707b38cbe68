//! rustls configurations for the peer and client sides. The QUIC ones are TLS 1.3 only (QUIC
//! requires it); the TCP client listener's follows `--tls-min-version`, `--tls-max-version`
//! and `--cipher-suites` (`tcp_policy`). All on the ring provider, with the protocol's ALPN set.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::peer_trust::{PeerTrust, peer_client_verifier, peer_server_verifier};
use super::verify::{CertChecks, client_verifier};
use super::{ALPN_CLIENT, ALPN_PEER, Identity, TlsError};

/// The crypto provider every qraft TLS configuration uses.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The accepting side of the peer protocol: the dialing member must present a certificate
/// that `trust` accepts and that passes `checks` (`--peer-crl-file`, `--peer-cert-allowed-*`).
pub fn peer_server_config(
    identity: &Identity,
    trust: &PeerTrust,
    checks: &CertChecks,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(peer_client_verifier(trust, checks)?)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN_PEER.to_vec()];
    Ok(config)
}

/// The dialing side of the peer protocol: checks the accepting member under `trust` and
/// `checks`, and presents our own peer certificate.
pub fn peer_client_config(
    identity: &Identity,
    trust: &PeerTrust,
    checks: &CertChecks,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        // The WebPKI verifier, wrapped for the name checks (see `verify`), or any certificate.
        .dangerous()
        .with_custom_certificate_verifier(peer_server_verifier(trust, checks)?);
    let mut config =
        builder.with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN_PEER.to_vec()];
    Ok(config)
}

/// The client listener. With `client_ca` set (`--client-cert-auth`), clients must present a
/// certificate signed by it and not revoked by `checks.crls` (`--client-crl-file`); without,
/// no client certificate is requested.
pub fn client_listener_config(
    identity: &Identity,
    client_ca: Option<&RootCertStore>,
    checks: &CertChecks,
) -> Result<ServerConfig, TlsError> {
    server_config(
        identity,
        client_ca.map(|ca| (ca, checks)),
        ALPN_CLIENT,
        "client",
    )
}

/// The client listener over TCP (gRPC, HTTP/1.1): as [`client_listener_config`], with the
/// versions and TLS 1.2 suites of `policy`. The caller sets the ALPN.
pub fn tcp_client_listener_config(
    identity: &Identity,
    client_ca: Option<&RootCertStore>,
    checks: &CertChecks,
    policy: &super::TcpTlsPolicy,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(policy.provider())
        .with_protocol_versions(&policy.versions())?;
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, checks, "client")?),
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_single_cert(identity.chain.clone(), identity.key.clone_key())?)
}

/// A client (qraftctl, the client library) dialing the client listener.
pub fn client_dial_config(
    server_ca: &RootCertStore,
    identity: Option<&Identity>,
) -> Result<ClientConfig, TlsError> {
    client_config(server_ca, identity, ALPN_CLIENT)
}

fn server_config(
    identity: &Identity,
    client_ca: Option<(&RootCertStore, &CertChecks)>,
    alpn: &[u8],
    role: &'static str,
) -> Result<ServerConfig, TlsError> {
    let provider = crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match client_ca {
        Some((ca, checks)) => builder.with_client_cert_verifier(client_verifier(ca, checks, role)?),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

fn client_config(
    server_ca: &RootCertStore,
    identity: Option<&Identity>,
    alpn: &[u8],
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(server_ca.clone());
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}
