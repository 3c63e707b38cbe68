//! Certificate checks beyond the chain: revocation lists (`--client-crl-file`,
//! `--peer-crl-file`) and etcd's `--peer-cert-allowed-cn` / `--peer-cert-allowed-hostname`.
//!
//! Revocation follows etcd: only the presented (end-entity) certificate is looked up, and a
//! certificate no list speaks for is not revoked. The name checks wrap rustls' WebPKI
//! verifiers, so a peer failing them is refused in the handshake, on both sides of a peer
//! connection (the dialing member checks the accepting one too, as etcd's TLS config does).

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, ServerName, TrustAnchor, UnixTime,
};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{Error, SignatureScheme};

use super::{TlsError, crypto_provider};

/// What a certificate must satisfy besides chaining to the trusted CA.
#[derive(Debug, Clone, Default)]
pub struct CertChecks {
    /// Certificates these lists revoke are refused.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// The subject common name the certificate must carry (peers only).
    pub allowed_cn: Option<String>,
    /// A DNS name or IP address the certificate must be valid for (peers only).
    pub allowed_hostname: Option<String>,
}

impl CertChecks {
    fn names_restricted(&self) -> bool {
        self.allowed_cn.is_some() || self.allowed_hostname.is_some()
    }

    /// etcd's rule: the certificate passes if its CN is the allowed one, or if it is valid for
    /// the allowed host name.
    pub(super) fn check_names(&self, end_entity: &CertificateDer<'_>) -> Result<(), Error> {
        if !self.names_restricted() {
            return Ok(());
        }
        if let Some(cn) = &self.allowed_cn
            && super::common_name(end_entity).as_deref() == Some(cn.as_str())
        {
            return Ok(());
        }
        if let Some(host) = &self.allowed_hostname
            && let Ok(name) = ServerName::try_from(host.as_str())
            && let Ok(cert) = webpki::EndEntityCert::try_from(end_entity)
            && cert.verify_is_valid_for_subject_name(&name).is_ok()
        {
            return Ok(());
        }
        Err(Error::InvalidCertificate(CertificateError::Other(
            rustls::OtherError(Arc::new(NameRefused {
                allowed_cn: self.allowed_cn.clone(),
                allowed_hostname: self.allowed_hostname.clone(),
            })),
        )))
    }
}

/// The handshake refusal of a peer certificate whose names are not allowed.
#[derive(Debug)]
struct NameRefused {
    allowed_cn: Option<String>,
    allowed_hostname: Option<String>,
}

impl std::fmt::Display for NameRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "peer certificate is neither for the allowed CN {:?} nor the allowed host name {:?}",
            self.allowed_cn.as_deref().unwrap_or(""),
            self.allowed_hostname.as_deref().unwrap_or("")
        )
    }
}

impl std::error::Error for NameRefused {}

fn log_refusal(role: &str, end_entity: &CertificateDer<'_>, error: &Error) {
    tracing::warn!(
        subject_cn = super::common_name(end_entity).unwrap_or_default(),
        reason = %describe_refusal(error),
        "{role} certificate refused"
    );
}

/// Why a certificate was refused, in words an operator can act on.
pub fn describe_refusal(error: &Error) -> String {
    if is_ca_used_as_end_entity(error) {
        return "it is a CA certificate (basic constraints CA:TRUE) that is not itself a trusted \
                CA (or it has expired, or does not allow client authentication); qraft accepts \
                end-entity certificates issued by the trusted CA, and a trusted CA's own \
                certificate as etcd does (see docs/security.md)"
            .into();
    }
    let Error::InvalidCertificate(error) = error else {
        return error.to_string();
    };
    match error {
        CertificateError::Revoked => {
            "it is revoked by the certificate revocation list (--client-crl-file / --peer-crl-file)"
                .into()
        }
        CertificateError::UnknownIssuer => "it is not issued by the trusted CA".into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".into()
        }
        CertificateError::Other(other) => other.to_string(),
        other => format!("{other:?}"),
    }
}

/// Reads a CRL file: PEM (`X509 CRL` blocks) or a single DER list, as etcd accepts.
pub fn crls_from_file(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let pem: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    let crls = if pem.is_empty() {
        vec![CertificateRevocationListDer::from(bytes)]
    } else {
        pem
    };
    // Parsed now so a bad file fails the start, not every handshake.
    for crl in &crls {
        webpki::OwnedCertRevocationList::from_der(crl.as_ref()).map_err(|e| TlsError::BadCrl {
            path: path.to_path_buf(),
            reason: format!("{e:?}"),
        })?;
    }
    Ok(crls)
}

/// The verifier of client certificates (the client listeners with `--client-cert-auth`, the
/// accepting side of the peer protocol).
/// `role` names the port in the log line of a refusal ("client" or "peer").
pub(super) fn client_verifier(
    roots: &RootCertStore,
    checks: &CertChecks,
    role: &'static str,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let inner =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), crypto_provider())
            .with_crls(checks.crls.iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status()
            .build()?;
    Ok(Arc::new(CheckedClientVerifier {
        inner,
        anchors: roots.roots.clone(),
        checks: checks.clone(),
        role,
    }))
}

/// The verifier of the accepting member's certificate on the dialing side of the peer protocol.
pub(super) fn server_verifier(
    roots: &RootCertStore,
    checks: &CertChecks,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots.clone()), crypto_provider())
            .with_crls(checks.crls.iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status()
            .build()?;
    Ok(Arc::new(CheckedServerVerifier {
        inner,
        checks: checks.clone(),
    }))
}

/// The WebPKI verifier, then the name checks; a refusal is logged with its reason, since the
/// other side only sees a TLS alert.
#[derive(Debug)]
struct CheckedClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    /// The trusted CAs, for [`is_a_trusted_ca_itself`].
    anchors: Vec<TrustAnchor<'static>>,
    checks: CertChecks,
    role: &'static str,
}

impl ClientCertVerifier for CheckedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
            .or_else(|error| {
                if is_ca_used_as_end_entity(&error)
                    && is_a_trusted_ca_itself(&self.anchors, end_entity, now)
                {
                    Ok(ClientCertVerified::assertion())
                } else {
                    Err(error)
                }
            })
            .and_then(|verified| self.checks.check_names(end_entity).map(|()| verified));
        if let Err(error) = &verified {
            log_refusal(self.role, end_entity, error);
        }
        verified
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn is_ca_used_as_end_entity(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidCertificate(CertificateError::Other(other))
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            )
    )
}

/// etcd's (Go's) rule, which WebPKI lacks: a certificate that is itself one of the trusted CAs
/// (a self-signed certificate given as `--trusted-ca-file` and presented as the client
/// certificate) is accepted, if it is valid now and allows client authentication. This is no
/// weaker than the chain rule: the handshake's signature proves the client holds that CA's
/// private key, with which it could issue itself any leaf certificate anyway. A CA certificate
/// that is not itself trusted (an intermediate, another self-signed CA) stays refused.
fn is_a_trusted_ca_itself(
    anchors: &[TrustAnchor<'static>],
    end_entity: &CertificateDer<'_>,
    now: UnixTime,
) -> bool {
    let Ok(candidate) = webpki::anchor_from_trusted_cert(end_entity) else {
        return false;
    };
    let trusted = anchors.iter().any(|anchor| {
        anchor.subject == candidate.subject
            && anchor.subject_public_key_info == candidate.subject_public_key_info
    });
    if !trusted {
        return false;
    }
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity) else {
        return false;
    };
    let valid_now = i64::try_from(now.as_secs())
        .ok()
        .and_then(|secs| x509_parser::time::ASN1Time::from_timestamp(secs).ok())
        .is_some_and(|at| cert.validity().is_valid_at(at));
    // Go checks the extended key usage of a client certificate: none given allows any.
    let client_auth = match cert.extended_key_usage() {
        Ok(Some(usage)) => usage.value.client_auth || usage.value.any,
        Ok(None) => true,
        Err(_) => false,
    };
    valid_now && client_auth
}

#[derive(Debug)]
struct CheckedServerVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    checks: CertChecks,
}

impl ServerCertVerifier for CheckedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .and_then(|verified| self.checks.check_names(end_entity).map(|()| verified));
        if let Err(error) = &verified {
            log_refusal("peer", end_entity, error);
        }
        verified
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
