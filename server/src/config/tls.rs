//! TLS for the client and peer listeners: where certificates come from, and how members
//! check each other's (etcd's flags, with QUIC's rule that there is no plaintext).

use std::path::{Path, PathBuf};

use super::endpoints::Endpoints;
use super::{AUTO_TLS_CLIENT_DIR, AUTO_TLS_PEER_DIR, ConfigError, Flags, Scheme, Url, invalid};

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
fn peer_verify(
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

struct TlsFlags {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    trusted_ca: Option<PathBuf>,
    client_cert_auth: bool,
    auto: Option<bool>,
    crl_file: Option<PathBuf>,
    allowed_cn: Option<String>,
    allowed_hostname: Option<String>,
}

fn tls_settings(
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

/// The client and peer TLS settings of a member and how peers verify each other.
#[derive(Debug)]
pub(super) struct MemberTls {
    pub client: TlsSettings,
    pub peer: TlsSettings,
    pub peer_verify: PeerVerify,
}

impl MemberTls {
    /// Auto-generated certificates live under `data_dir`; `endpoints` decide the peer
    /// verification (see [`PeerVerify`]) and must not serve plaintext next to
    /// `--client-cert-auth`.
    pub(super) fn resolve(
        s: &Flags,
        data_dir: &Path,
        endpoints: &Endpoints,
    ) -> Result<Self, ConfigError> {
        let peer_verify = peer_verify(
            &endpoints.listen_peer_urls,
            &endpoints.initial_advertise_peer_urls,
            s.peer_auto_tls,
            s.peer_cert_file.is_some(),
        )?;
        let validity_years = s.self_signed_cert_validity.unwrap_or(1);
        if validity_years == 0 {
            return Err(invalid(
                "--self-signed-cert-validity must be at least 1 year",
            ));
        }
        let client = tls_settings(
            "",
            TlsFlags {
                cert: s.cert_file.clone(),
                key: s.key_file.clone(),
                trusted_ca: s.trusted_ca_file.clone(),
                client_cert_auth: s.client_cert_auth.unwrap_or(false),
                auto: s.auto_tls,
                crl_file: s.client_crl_file.clone(),
                allowed_cn: None,
                allowed_hostname: None,
            },
            data_dir.join(AUTO_TLS_CLIENT_DIR),
            validity_years,
        )?;
        if s.peer_client_cert_auth == Some(false) {
            return Err(invalid(
                "--peer-client-cert-auth=false is not supported: qraft peers always authenticate each other",
            ));
        }
        let peer = tls_settings(
            "peer-",
            TlsFlags {
                cert: s.peer_cert_file.clone(),
                key: s.peer_key_file.clone(),
                trusted_ca: s.peer_trusted_ca_file.clone(),
                client_cert_auth: true,
                // `http://` peer URLs need no TLS flags: auto-TLS is implied.
                auto: match peer_verify {
                    PeerVerify::AnyCertificate(PeerVerifyReason::HttpUrls) => None,
                    _ => s.peer_auto_tls,
                },
                crl_file: s.peer_crl_file.clone(),
                allowed_cn: s.peer_cert_allowed_cn.clone(),
                allowed_hostname: s.peer_cert_allowed_hostname.clone(),
            },
            data_dir.join(AUTO_TLS_PEER_DIR),
            validity_years,
        )?;
        // A plaintext listener has no client certificate to check: serving it next to
        // `--client-cert-auth` would let anyone in without one.
        for (flag, list) in endpoints.client_listeners() {
            if client.client_cert_auth
                && let Some(u) = list.iter().find(|u| u.scheme == Scheme::Http)
            {
                return Err(invalid(format!(
                    "{flag}: {u} is plaintext, so --client-cert-auth could not be \
                     enforced on it; use an https:// URL or drop --client-cert-auth"
                )));
            }
        }
        Ok(Self {
            client,
            peer,
            peer_verify,
        })
    }
}
