//! `--config-file`: etcd's YAML configuration format (top-level keys named like the flags,
//! TLS settings under `client-transport-security` / `peer-transport-security`). Unknown keys are
//! errors so that a typo does not silently fall back to a default.

use super::flags::Flags;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct TransportSecurity {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    trusted_ca_file: Option<PathBuf>,
    client_cert_auth: Option<bool>,
    auto_tls: Option<bool>,
    allowed_cn: Option<String>,
    allowed_hostname: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileSettings {
    name: Option<String>,
    data_dir: Option<PathBuf>,
    listen_peer_urls: Option<String>,
    listen_client_urls: Option<String>,
    advertise_client_urls: Option<String>,
    initial_advertise_peer_urls: Option<String>,
    listen_metrics_urls: Option<String>,
    listen_grpc_urls: Option<String>,
    listen_client_http_urls: Option<String>,
    enable_grpc_gateway: Option<bool>,
    initial_cluster: Option<String>,
    initial_cluster_state: Option<String>,
    initial_cluster_token: Option<String>,
    heartbeat_interval: Option<u64>,
    election_timeout: Option<u64>,
    snapshot_count: Option<u64>,
    snapshot_catchup_entries: Option<u64>,
    quota_backend_bytes: Option<u64>,
    max_request_bytes: Option<u64>,
    self_signed_cert_validity: Option<u32>,
    log_level: Option<String>,
    emulated_version: Option<String>,
    experimental_initial_corrupt_check: Option<bool>,
    experimental_corrupt_check_time: Option<String>,
    watch_progress_notify_interval: Option<String>,
    experimental_watch_progress_notify_interval: Option<String>,
    force_new_cluster: Option<bool>,
    client_transport_security: Option<TransportSecurity>,
    peer_transport_security: Option<TransportSecurity>,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_norway::Error,
    },
}

/// Reads the file into the same shape the flags have.
pub fn load(path: &Path) -> Result<Flags, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|source| FileError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

pub fn parse(text: &str) -> Result<Flags, serde_norway::Error> {
    let f: FileSettings = if text.trim().is_empty() {
        FileSettings::default()
    } else {
        serde_norway::from_str(text)?
    };
    let client = f.client_transport_security.unwrap_or_default();
    if client.allowed_cn.is_some() || client.allowed_hostname.is_some() {
        return Err(serde::de::Error::custom(
            "client-transport-security: allowed-cn and allowed-hostname apply to peers only",
        ));
    }
    let peer = f.peer_transport_security.unwrap_or_default();
    Ok(Flags {
        config_file: None,
        name: f.name,
        data_dir: f.data_dir,
        listen_peer_urls: f.listen_peer_urls,
        listen_client_urls: f.listen_client_urls,
        advertise_client_urls: f.advertise_client_urls,
        initial_advertise_peer_urls: f.initial_advertise_peer_urls,
        listen_metrics_urls: f.listen_metrics_urls,
        listen_grpc_urls: f.listen_grpc_urls,
        listen_client_http_urls: f.listen_client_http_urls,
        enable_grpc_gateway: f.enable_grpc_gateway,
        initial_cluster: f.initial_cluster,
        initial_cluster_state: f.initial_cluster_state,
        initial_cluster_token: f.initial_cluster_token,
        heartbeat_interval: f.heartbeat_interval,
        election_timeout: f.election_timeout,
        snapshot_count: f.snapshot_count,
        snapshot_catchup_entries: f.snapshot_catchup_entries,
        quota_backend_bytes: f.quota_backend_bytes,
        max_request_bytes: f.max_request_bytes,
        cert_file: client.cert_file,
        key_file: client.key_file,
        trusted_ca_file: client.trusted_ca_file,
        client_cert_auth: client.client_cert_auth,
        auto_tls: client.auto_tls,
        peer_cert_file: peer.cert_file,
        peer_key_file: peer.key_file,
        peer_trusted_ca_file: peer.trusted_ca_file,
        peer_client_cert_auth: peer.client_cert_auth,
        peer_auto_tls: peer.auto_tls,
        client_crl_file: None,
        peer_crl_file: None,
        peer_cert_allowed_cn: peer.allowed_cn,
        peer_cert_allowed_hostname: peer.allowed_hostname,
        grpc_keepalive_min_time: None,
        grpc_keepalive_interval: None,
        grpc_keepalive_timeout: None,
        self_signed_cert_validity: f.self_signed_cert_validity,
        log_level: f.log_level,
        emulated_version: f.emulated_version,
        experimental_initial_corrupt_check: f.experimental_initial_corrupt_check,
        experimental_corrupt_check_time: f.experimental_corrupt_check_time,
        watch_progress_notify_interval: f.watch_progress_notify_interval,
        experimental_watch_progress_notify_interval: f.experimental_watch_progress_notify_interval,
        force_new_cluster: f.force_new_cluster,
        ..Flags::default()
    })
}
