//! Loading PEM certificates, keys and CA bundles.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// A certificate chain (leaf first) and its private key: what a side presents in a handshake.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// Reads `cert_file` (one or more CERTIFICATE blocks, leaf first) and `key_file` (PKCS#8,
    /// PKCS#1 or SEC1 private key).
    pub fn from_pem_files(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_file_iter(cert_file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|source| pem_error(cert_file, source))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert_file.to_path_buf(),
            });
        }
        let key =
            PrivateKeyDer::from_pem_file(key_file).map_err(|source| pem_error(key_file, source))?;
        Ok(Self { chain, key })
    }

    /// Parses an identity from PEM text held in memory.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let mem = PathBuf::from("<memory>");
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| pem_error(&mem, source))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: mem });
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| pem_error(&mem, source))?;
        Ok(Self { chain, key })
    }
}

/// Reads a CA bundle (one or more CERTIFICATE blocks) into a root store.
pub fn roots_from_pem_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| pem_error(path, source))?;
    roots_from_certs(path, certs)
}

/// Parses a CA bundle held in memory.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mem = Path::new("<memory>");
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| pem_error(mem, source))?;
    roots_from_certs(mem, certs)
}

fn roots_from_certs(
    path: &Path,
    certs: Vec<CertificateDer<'static>>,
) -> Result<RootCertStore, TlsError> {
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}

fn pem_error(path: &Path, source: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        source,
    }
}
