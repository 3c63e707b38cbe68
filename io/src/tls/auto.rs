//! Auto-TLS: a CA and leaf certificates generated on first start and reused afterwards.
//!
//! Layout of a fixtures directory (etcd keeps `<data-dir>/fixtures/{client,peer}` the same way):
//! `ca.crt ca.key` (the CA), `server.crt server.key` (the member's certificate, usable as TLS
//! server and client, so the same pair serves both directions of the peer protocol),
//! `client.crt client.key` (for `qraftctl --cacert ca.crt --cert client.crt --key client.key`).
//!
//! The CA is generated only if `ca.key` is missing. Copying `ca.crt` and `ca.key` into every
//! member's peer fixtures directory before first start therefore yields a cluster whose
//! members trust each other; each member still generates its own leaf. Leaves are regenerated
//! when the requested host names change (recorded in `hosts.txt`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::TlsError;

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
/// `hosts` (host names or IP literals from the advertise URLs), and a client certificate.
pub fn ensure_auto_tls(dir: &Path, hosts: &[String]) -> Result<(AutoTlsPaths, AutoTls), TlsError> {
    let paths = AutoTlsPaths::in_dir(dir);
    fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;

    let generated_ca = !paths.ca_key.exists() || !paths.ca_cert.exists();
    let ca_key = if generated_ca {
        let key = KeyPair::generate()?;
        let ca = CertifiedIssuer::self_signed(ca_params(), &key)?;
        write_file(&paths.ca_cert, ca.pem().as_bytes(), false)?;
        write_file(&paths.ca_key, key.serialize_pem().as_bytes(), true)?;
        key
    } else {
        let pem =
            fs::read_to_string(&paths.ca_key).map_err(|source| io_error(&paths.ca_key, source))?;
        KeyPair::from_pem(&pem)?
    };
    // The issuer is rebuilt from the same fixed parameters the CA was created with, so its
    // subject and key identifier match the stored CA certificate.
    let issuer = Issuer::new(ca_params(), &ca_key);

    let sans = subject_alt_names(hosts);
    let hosts_file = dir.join("hosts.txt");
    let recorded = fs::read_to_string(&hosts_file).unwrap_or_default();
    let wanted = sans.join("\n");
    let leaves_present = [
        &paths.cert,
        &paths.key,
        &paths.client_cert,
        &paths.client_key,
    ]
    .iter()
    .all(|p| p.exists());
    let generated_leaves = generated_ca || !leaves_present || recorded != wanted;
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
        write_leaf(&server, &issuer, &paths.cert, &paths.key)?;

        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name.push(DnType::CommonName, "root");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        write_leaf(&client, &issuer, &paths.client_cert, &paths.client_key)?;

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

fn write_leaf(
    params: &CertificateParams,
    issuer: &Issuer<'_, &KeyPair>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), TlsError> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
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
