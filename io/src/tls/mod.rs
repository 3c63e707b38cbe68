//! TLS material and rustls configurations for qraft's two QUIC protocols.
//!
//! Peers always use mutual TLS, against the peer CA (or, as etcd's `--peer-auto-tls`, accepting
//! any certificate: see `peer_trust`). Clients use TLS and, with
//! `--client-cert-auth`, must present a certificate signed by the client CA. ALPN names the
//! protocol so a client can never talk to the peer port by accident (and vice versa).

mod auto;
mod common_name;
mod config;
mod peer_trust;
mod pem;
mod tcp_policy;
mod verify;

pub use auto::{AutoTls, AutoTlsOptions, AutoTlsPaths, ensure_auto_tls, ensure_auto_tls_with};
pub use common_name::common_name;
pub use config::{
    client_dial_config, client_listener_config, crypto_provider, peer_client_config,
    peer_server_config, tcp_client_listener_config,
};
pub use peer_trust::PeerTrust;
pub use pem::{Identity, roots_from_pem, roots_from_pem_file};
pub use tcp_policy::{TcpTlsPolicy, TlsVersion};
pub use verify::{CertChecks, crls_from_file, describe_refusal};

use std::path::PathBuf;

/// ALPN of the member-to-member protocol.
pub const ALPN_PEER: &[u8] = b"qraft-peer/1";
/// ALPN of the client protocol.
pub const ALPN_CLIENT: &[u8] = b"qraft-client/1";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: no certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: invalid CA certificate: {source}")]
    BadCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("{path}: cannot issue auto-TLS certificates with this CA: {reason}")]
    UnusableCa { path: PathBuf, reason: String },
    #[error("{path}: invalid certificate revocation list: {reason}")]
    BadCrl { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
