//! Client settings.

use std::path::Path;
use std::time::Duration;

use rustls::RootCertStore;

use crate::tls::{Identity, TlsError, roots_from_pem_file};
use crate::transport::{CLIENT_RESPONSE_FRAME_LIMIT, QuicSettings};

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Client URLs such as `https://127.0.0.1:2379`, tried in order.
    pub endpoints: Vec<String>,
    /// CA that signed the servers' certificates (`--cacert`).
    pub ca: RootCertStore,
    /// Client certificate and key (`--cert`/`--key`), needed with `--client-cert-auth`.
    pub identity: Option<Identity>,
    pub dial_timeout: Duration,
    /// Deadline of one call including its retries (`--command-timeout`).
    pub request_timeout: Duration,
    /// Extra attempts after the first.
    pub max_retries: u32,
    pub retry_backoff: Duration,
    pub max_response_bytes: usize,
    pub quic: QuicSettings,
}

impl ClientConfig {
    pub fn new(endpoints: Vec<String>, ca: RootCertStore) -> Self {
        Self {
            endpoints,
            ca,
            identity: None,
            dial_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_retries: 5,
            retry_backoff: Duration::from_millis(25),
            max_response_bytes: CLIENT_RESPONSE_FRAME_LIMIT,
            quic: QuicSettings::default(),
        }
    }

    /// From etcdctl-style flags: `--cacert` and optionally `--cert` + `--key`.
    pub fn from_files(
        endpoints: Vec<String>,
        cacert: &Path,
        cert_key: Option<(&Path, &Path)>,
    ) -> Result<Self, TlsError> {
        let mut config = Self::new(endpoints, roots_from_pem_file(cacert)?);
        if let Some((cert, key)) = cert_key {
            config.identity = Some(Identity::from_pem_files(cert, key)?);
        }
        Ok(config)
    }
}
