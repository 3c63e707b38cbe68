//! Auto-TLS: a CA and leaf certificates generated on first start and reused afterwards.
//!
//! Layout of a fixtures directory (etcd keeps `<data-dir>/fixtures/{client,peer}` the same way):
//! `ca.crt ca.key` (the CA), `server.crt server.key` (the member's certificate, usable as TLS
//! server and client, so the same pair serves both directions of the peer protocol), and in
//! the client fixtures only, `client.crt client.key` (CN=root, for `qraftctl --cacert ca.crt
//! --cert client.crt --key client.key`). The peer fixtures hold no client certificate: the
//! peer CA vouches for members, never for users.
//!
//! The CA is generated only if `ca.key` is missing. Copying `ca.crt` and `ca.key` into every
//! member's peer fixtures directory before first start therefore yields a cluster whose
//! members trust each other; each member still generates its own leaf, issued in the CA
//! certificate's own name (its subject and key identifier, whatever made it). Leaves are
//! regenerated when the requested host names change (recorded in `hosts.txt`) and when their
//! validity does not fit `--self-signed-cert-validity` (expired within a day, or longer).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};

use super::TlsError;

/// What [`ensure_auto_tls_with`] generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoTlsOptions {
    /// `--self-signed-cert-validity`: years (of 365 days, as etcd counts) from generation.
    pub validity_years: u32,
    /// Also issue `client.crt` (CN=root, client auth): the client fixtures do, the peer
    /// fixtures must not.
    pub client_cert: bool,
}

impl Default for AutoTlsOptions {
    fn default() -> Self {
        Self {
            validity_years: 1,
            client_cert: true,
        }
    }
}

/// Where [`ensure_auto_tls`] put the material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoTlsPaths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl AutoTlsPaths {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        }
    }
}

/// What a fresh generation produced (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoTls {
    pub generated_ca: bool,
    pub generated_leaves: bool,
}

/// Makes sure `dir` holds a CA, a member certificate valid for 127.0.0.1, ::1, localhost and
/// `hosts` (host names or IP literals from the advertise URLs), and a client certificate, each
/// valid for one year.
pub fn ensure_auto_tls(dir: &Path, hosts: &[String]) -> Result<(AutoTlsPaths, AutoTls), TlsError> {
    ensure_auto_tls_with(dir, hosts, &AutoTlsOptions::default())
}

/// [`ensure_auto_tls`] with the validity and the client certificate chosen by `options`.
pub fn ensure_auto_tls_with(
    dir: &Path,
    hosts: &[String],
    options: &AutoTlsOptions,
) -> Result<(AutoTlsPaths, AutoTls), TlsError> {
    let paths = AutoTlsPaths::in_dir(dir);
    let (not_before, not_after) = validity(options.validity_years);
    crate::storage::create_private_dir_all(dir).map_err(|source| io_error(dir, source))?;

    let generated_ca = !paths.ca_key.exists() || !paths.ca_cert.exists();
    let ca_key = if generated_ca {
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        (params.not_before, params.not_after) = (not_before, not_after);
        let ca = CertifiedIssuer::self_signed(params, &key)?;
        write_file(&paths.ca_cert, ca.pem().as_bytes(), false)?;
        write_file(&paths.ca_key, key.serialize_pem().as_bytes(), true)?;
        key
    } else {
        let pem =
            fs::read_to_string(&paths.ca_key).map_err(|source| io_error(&paths.ca_key, source))?;
        KeyPair::from_pem(&pem)?
    };
    // The CA as given: leaves name its subject as their issuer and its key identifier as
    // their authority key identifier, so they chain to it whoever made it.
    let ca_der = CertificateDer::from_pem_file(&paths.ca_cert).map_err(|source| TlsError::Pem {
        path: paths.ca_cert.clone(),
        source,
    })?;
    let bad_ca = |reason: String| TlsError::UnusableCa {
        path: paths.ca_cert.clone(),
        reason,
    };
    let ca_subject = reproducible_subject(&ca_der).map_err(bad_ca)?;
    let issuer = Issuer::from_ca_cert_der(&ca_der, &ca_key)
        .map_err(|e| bad_ca(format!("cannot issue certificates in its name: {e}")))?;

    let sans = subject_alt_names(hosts);
    let hosts_file = dir.join("hosts.txt");
    let recorded = fs::read_to_string(&hosts_file).unwrap_or_default();
    let wanted = sans.join("\n");
    let mut leaves = vec![&paths.cert, &paths.key];
    if options.client_cert {
        leaves.extend([&paths.client_cert, &paths.client_key]);
    } else {
        // Left by an older version: a client certificate signed by the peer CA.
        for stale in [&paths.client_cert, &paths.client_key] {
            match fs::remove_file(stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error(stale, source)),
            }
        }
    }
    let leaves_present = leaves.iter().all(|p| p.exists());
    let generated_leaves = generated_ca
        || !leaves_present
        || recorded != wanted
        || !validity_fits(&paths.cert, not_after);
    if generated_leaves {
        let mut server = CertificateParams::new(sans.clone())?;
        server
            .distinguished_name
            .push(DnType::CommonName, "qraft member");
        server.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        (server.not_before, server.not_after) = (not_before, not_after);
        write_leaf(&server, &issuer, &ca_subject, &paths.cert, &paths.key)?;

        if options.client_cert {
            let mut client = CertificateParams::new(Vec::<String>::new())?;
            client.distinguished_name.push(DnType::CommonName, "root");
            client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            (client.not_before, client.not_after) = (not_before, not_after);
            write_leaf(
                &client,
                &issuer,
                &ca_subject,
                &paths.client_cert,
                &paths.client_key,
            )?;
        }

        write_file(&hosts_file, wanted.as_bytes(), false)?;
    }
    Ok((
        paths,
        AutoTls {
            generated_ca,
            generated_leaves,
        },
    ))
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "qraft auto-TLS CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn subject_alt_names(hosts: &[String]) -> Vec<String> {
    let mut sans: Vec<String> = ["127.0.0.1", "::1", "localhost"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for host in hosts {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !host.is_empty() && !sans.iter().any(|s| s == host) {
            sans.push(host.to_string());
        }
    }
    sans
}

/// From now for `years` of 365 days (etcd's arithmetic).
fn validity(years: u32) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now, now + Duration::days(365 * i64::from(years.max(1))))
}

/// Whether the leaf at `path` is still good for a day and ends no later than a leaf made now
/// would (a lowered `--self-signed-cert-validity`, or a leaf of an older version, is re-issued).
fn validity_fits(path: &Path, not_after: OffsetDateTime) -> bool {
    let Ok(der) = CertificateDer::from_pem_file(path) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    let Ok(ends) = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
    else {
        return false;
    };
    let now = OffsetDateTime::now_utc();
    ends > now + Duration::days(1) && ends <= not_after + Duration::days(1)
}

/// The CA certificate's subject as DER, if the generator can name it exactly as the issuer of
/// a leaf: one attribute per RDN and no attribute type twice (rcgen keeps one value per type).
fn reproducible_subject(ca: &CertificateDer<'_>) -> Result<Vec<u8>, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(ca).map_err(|e| format!("not a certificate: {e}"))?;
    let subject = cert.subject();
    let mut seen = Vec::new();
    for rdn in subject.iter() {
        let mut attributes = rdn.iter();
        let (Some(attribute), None) = (attributes.next(), attributes.next()) else {
            return Err("its subject has an RDN with other than one attribute".into());
        };
        let oid = attribute.attr_type().to_id_string();
        if seen.contains(&oid) {
            return Err(format!("its subject names attribute {oid} twice"));
        }
        seen.push(oid);
    }
    Ok(subject.as_raw().to_vec())
}

fn write_leaf(
    params: &CertificateParams,
    issuer: &Issuer<'_, &KeyPair>,
    ca_subject: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), TlsError> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    // The chain is only as good as the issuer name matching the CA's subject byte for byte.
    let issuer_name = x509_parser::parse_x509_certificate(cert.der())
        .map(|(_, leaf)| leaf.issuer().as_raw().to_vec())
        .unwrap_or_default();
    if issuer_name != ca_subject {
        return Err(TlsError::UnusableCa {
            path: cert_path.with_file_name("ca.crt"),
            reason: "its subject cannot be reproduced exactly as the issuer of a leaf".into(),
        });
    }
    write_file(cert_path, cert.pem().as_bytes(), false)?;
    write_file(key_path, key.serialize_pem().as_bytes(), true)
}

/// Writes via a temporary file and a rename so a crash never leaves half a certificate.
fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(&tmp)
        .map_err(|source| io_error(&tmp, source))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error(&tmp, source))?;
    fs::rename(&tmp, path).map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: std::io::Error) -> TlsError {
    TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}
