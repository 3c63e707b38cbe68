//! What a member trusts in its peers' certificates.
//!
//! Normally a peer certificate must chain to the peer CA ([`PeerTrust::Ca`]). etcd also runs
//! peers with `--peer-auto-tls` (each member a self-signed certificate, nobody verified) and
//! over plaintext `http://` peer URLs. QUIC has no plaintext mode, so qraft runs both as
//! [`PeerTrust::AnyCertificate`]: the traffic is still encrypted and each handshake still
//! proves possession of the presented certificate's key (the signatures are checked), but any
//! certificate is accepted — never weaker than etcd's plaintext, and no stronger than etcd's
//! `--peer-auto-tls` either. The name checks (`--peer-cert-allowed-cn/-hostname`) still apply.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};

use super::verify::CertChecks;
use super::{TlsError, crypto_provider};

/// How a member checks the certificates its peers present (on both sides of a connection).
#[derive(Debug, Clone)]
pub enum PeerTrust {
    /// The certificate must chain to one of these CAs (and pass the [`CertChecks`]).
    Ca(RootCertStore),
    /// Any certificate is accepted (etcd's `--peer-auto-tls`, and `http://` peer URLs).
    AnyCertificate,
}

impl From<RootCertStore> for PeerTrust {
    fn from(roots: RootCertStore) -> Self {
        PeerTrust::Ca(roots)
    }
}

/// Accepts any certificate that passes the name checks, after checking the handshake's
/// signatures with it.
#[derive(Debug)]
pub(super) struct AnyCertificate {
    checks: CertChecks,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyCertificate {
    pub(super) fn new(checks: &CertChecks) -> Arc<Self> {
        Arc::new(Self {
            checks: checks.clone(),
            algorithms: crypto_provider().signature_verification_algorithms,
        })
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), Error> {
        self.checks.check_names(end_entity)
    }
}

impl ClientCertVerifier for AnyCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The verifier of a dialing peer's certificate under `trust`.
pub(super) fn peer_client_verifier(
    trust: &PeerTrust,
    checks: &CertChecks,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    match trust {
        PeerTrust::Ca(roots) => super::verify::client_verifier(roots, checks, "peer"),
        PeerTrust::AnyCertificate => Ok(AnyCertificate::new(checks)),
    }
}

/// The verifier of the accepting peer's certificate under `trust`.
pub(super) fn peer_server_verifier(
    trust: &PeerTrust,
    checks: &CertChecks,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    match trust {
        PeerTrust::Ca(roots) => super::verify::server_verifier(roots, checks),
        PeerTrust::AnyCertificate => Ok(AnyCertificate::new(checks)),
    }
}
