//! TLS for the client and peer listeners: where certificates come from, and how members
//! check each other's (etcd's flags, with QUIC's rule that there is no plaintext).

use std::path::PathBuf;

use super::{ConfigError, Scheme, Url, invalid};

/// Where a listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files given by flags. `trusted_ca` verifies the other side's certificate.
    Files {
        cert: PathBuf,
        key: PathBuf,
        trusted_ca: Option<PathBuf>,
    },
    /// Certificates generated (once, then reused) in `dir`, for the listed host names/IPs.
    Auto { dir: PathBuf, validity_years: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub source: TlsSource,
    /// Require and verify a client certificate against the trusted CA.
    pub client_cert_auth: bool,
    /// `--client-crl-file` / `--peer-crl-file`: certificates it revokes are refused.
    pub crl_file: Option<PathBuf>,
    /// `--peer-cert-allowed-cn`: the only subject CN a peer certificate may carry.
    pub allowed_cn: Option<String>,
    /// `--peer-cert-allowed-hostname`: a DNS or IP SAN every peer certificate must carry.
    pub allowed_hostname: Option<String>,
}

/// How members check each other's certificates. QUIC always runs TLS, so etcd's plaintext
/// `http://` peer URLs and its `--peer-auto-tls` (self-signed certificates nobody verifies)
/// both become encrypted connections that accept any peer certificate: never weaker than
/// etcd's plaintext, and as strong as etcd's `--peer-auto-tls`. The member logs a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerVerify {
    /// The peer certificate must chain to the peer CA (certificate files, or auto-TLS with a
    /// CA the members share: qraft's default).
    Ca,
    /// Any peer certificate is accepted.
    AnyCertificate(PeerVerifyReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerVerifyReason {
    /// The peer URLs are `http://` (plaintext in etcd).
    HttpUrls,
    /// `--peer-auto-tls` without peer certificate files.
    PeerAutoTls,
}

impl std::fmt::Display for PeerVerifyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeerVerifyReason::HttpUrls => "the peer URLs are http:// (plaintext in etcd)",
            PeerVerifyReason::PeerAutoTls => "--peer-auto-tls (as etcd, peers are not verified)",
        })
    }
}

/// The peer URLs' scheme decides: all `http://` accept any certificate, all `https://` verify
/// against the peer CA unless `--peer-auto-tls` is given without certificate files (etcd's
/// meaning of that flag). A mix is refused: a member has one peer identity policy.
pub(super) fn peer_verify(
    listen: &[Url],
    advertise: &[Url],
    auto_tls: Option<bool>,
    has_cert_file: bool,
) -> Result<PeerVerify, ConfigError> {
    let all = || listen.iter().chain(advertise);
    if all().all(|u| u.scheme == Scheme::Http) {
        return Ok(PeerVerify::AnyCertificate(PeerVerifyReason::HttpUrls));
    }
    if let Some(u) = all().find(|u| u.scheme == Scheme::Http) {
        return Err(invalid(format!(
            "--listen-peer-urls and --initial-advertise-peer-urls: {u} is http:// while others \
             are https://; use one scheme for all peer URLs"
        )));
    }
    Ok(match (auto_tls, has_cert_file) {
        (Some(true), false) => PeerVerify::AnyCertificate(PeerVerifyReason::PeerAutoTls),
        _ => PeerVerify::Ca,
    })
}

pub(super) struct TlsFlags {
    pub(super) cert: Option<PathBuf>,
    pub(super) key: Option<PathBuf>,
    pub(super) trusted_ca: Option<PathBuf>,
    pub(super) client_cert_auth: bool,
    pub(super) auto: Option<bool>,
    pub(super) crl_file: Option<PathBuf>,
    pub(super) allowed_cn: Option<String>,
    pub(super) allowed_hostname: Option<String>,
}

pub(super) fn tls_settings(
    prefix: &str,
    f: TlsFlags,
    auto_dir: PathBuf,
    validity_years: u32,
) -> Result<TlsSettings, ConfigError> {
    let source = match (f.cert, f.key) {
        (Some(cert), Some(key)) => TlsSource::Files {
            cert,
            key,
            trusted_ca: f.trusted_ca,
        },
        (None, None) => {
            // QUIC has no plaintext mode, so without certificates auto-TLS is the only choice;
            // `--auto-tls=false` without certificates is therefore an error, not a silent change.
            if f.auto == Some(false) {
                return Err(invalid(format!(
                    "--{prefix}auto-tls=false needs --{prefix}cert-file and --{prefix}key-file \
                     (qraft always uses TLS)"
                )));
            }
            if f.trusted_ca.is_some() {
                return Err(invalid(format!(
                    "--{prefix}trusted-ca-file needs --{prefix}cert-file and --{prefix}key-file"
                )));
            }
            TlsSource::Auto {
                dir: auto_dir,
                validity_years,
            }
        }
        _ => {
            return Err(invalid(format!(
                "--{prefix}cert-file and --{prefix}key-file must be given together"
            )));
        }
    };
    if prefix.is_empty()
        && f.client_cert_auth
        && matches!(
            source,
            TlsSource::Files {
                trusted_ca: None,
                ..
            }
        )
    {
        return Err(invalid(
            "--client-cert-auth needs --trusted-ca-file to verify client certificates",
        ));
    }
    if prefix.is_empty() && f.crl_file.is_some() && !f.client_cert_auth {
        return Err(invalid(
            "--client-crl-file needs --client-cert-auth (only client certificates are checked against it)",
        ));
    }
    Ok(TlsSettings {
        source,
        client_cert_auth: f.client_cert_auth,
        crl_file: f.crl_file,
        allowed_cn: f.allowed_cn,
        allowed_hostname: f.allowed_hostname,
    })
}
