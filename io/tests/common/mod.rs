//! Shared fixtures of the transport tests: certificates generated in a temp dir.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use qraft_io::runtime;
use qraft_io::tls::{AutoTlsPaths, Identity, ensure_auto_tls, roots_from_pem_file};
use rustls::RootCertStore;

/// A member's TLS material from an auto-TLS directory.
pub struct Certs {
    pub paths: AutoTlsPaths,
    pub identity: Identity,
    pub client_identity: Identity,
    pub roots: RootCertStore,
}

pub fn certs(dir: &Path) -> Certs {
    let (paths, _) = ensure_auto_tls(dir, &[]).unwrap();
    Certs {
        identity: Identity::from_pem_files(&paths.cert, &paths.key).unwrap(),
        client_identity: Identity::from_pem_files(&paths.client_cert, &paths.client_key).unwrap(),
        roots: roots_from_pem_file(&paths.ca_cert).unwrap(),
        paths,
    }
}

/// Certificates for a second member signed by the same CA as `dir`'s.
pub fn certs_same_ca(dir: &Path, other: &Path) -> Certs {
    std::fs::create_dir_all(other).unwrap();
    std::fs::copy(dir.join("ca.crt"), other.join("ca.crt")).unwrap();
    std::fs::copy(dir.join("ca.key"), other.join("ca.key")).unwrap();
    certs(other)
}

/// Waits until `cond` holds, polling; panics after `limit`.
pub async fn eventually<F: FnMut() -> bool>(limit: Duration, what: &str, mut cond: F) {
    let step = Duration::from_millis(10);
    let mut waited = Duration::ZERO;
    while !cond() {
        assert!(waited < limit, "timed out waiting for {what}");
        runtime::sleep(step).await;
        waited += step;
    }
}

pub fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}
