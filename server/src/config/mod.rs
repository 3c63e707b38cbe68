//! The server's configuration: etcd's flags (or its YAML file, or `QRAFT_*` variables) resolved
//! into one validated [`Config`]. Validation happens here, before anything touches the disk or
//! the network, and every error names the flag at fault.

mod auth_token;
mod checks;
mod compaction;
mod duration;
mod emulated_version;
mod endpoints;
mod file;
mod file_values;
mod flags;
mod given;
mod initial_cluster;
mod keepalive;
mod limits;
mod log_flags;
mod tls;
mod unsupported;
mod url;

pub use auth_token::AuthToken;
use auth_token::parse_auth_token;
pub use file::{FileError, load as load_file, parse as parse_file};
pub use flags::Flags;
pub use initial_cluster::member_id;
use initial_cluster::{Bootstrap, cluster_id_of};
pub use keepalive::GrpcKeepalive;
pub use tls::{PeerVerify, PeerVerifyReason, TlsSettings, TlsSource};
pub use url::{Scheme, Url, UrlError, join_list, parse_list};

use checks::Checks;
#[cfg(test)]
use checks::watch_progress_notify_ms;
#[cfg(test)]
use duration::parse_duration_ms;
use emulated_version::parse_emulated_version;
use endpoints::Endpoints;
use given::{given_flags, ignored_flags};
use limits::{Limits, Timing};
use log_flags::{log_output, parse_log_level};
use tls::MemberTls;

use std::path::PathBuf;

use qraft_core::server::AutoCompaction;
use qraft_core::version::{BINARY_VERSION, Version};

use crate::logging::LogOutput;

/// etcd's defaults (see ETCD-FACTS.md).
pub const DEFAULT_NAME: &str = "default";
pub const DEFAULT_CLIENT_URL: &str = "https://127.0.0.1:2379";
pub const DEFAULT_PEER_URL: &str = "https://127.0.0.1:2380";
pub const DEFAULT_CLUSTER_TOKEN: &str = "qraft-cluster";
pub const DEFAULT_HEARTBEAT_MS: u64 = 100;
pub const DEFAULT_ELECTION_MS: u64 = 1000;
pub const MAX_ELECTION_MS: u64 = 50_000;
pub const DEFAULT_SNAPSHOT_COUNT: u64 = 10_000;
pub const DEFAULT_SNAPSHOT_CATCHUP_ENTRIES: u64 = 5_000;
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 1_572_864;
pub const DEFAULT_MAX_TXN_OPS: usize = qraft_core::mvcc::validate::MAX_TXN_OPS;
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Where the auto-generated certificates of a member live, relative to its data directory
/// (etcd's layout). qraftctl's default `--cacert` points at the client one.
pub const AUTO_TLS_CLIENT_DIR: &str = "fixtures/client";
pub const AUTO_TLS_PEER_DIR: &str = "fixtures/peer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

/// One member of `--initial-cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    pub name: String,
    pub peer_urls: Vec<Url>,
}

/// The resolved, validated configuration of one member.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_peer_urls: Vec<Url>,
    pub listen_client_urls: Vec<Url>,
    pub advertise_client_urls: Vec<Url>,
    pub initial_advertise_peer_urls: Vec<Url>,
    pub listen_metrics_urls: Vec<Url>,
    /// etcd v3 gRPC listeners (`https://` with the client certificate, or plaintext `http://`);
    /// empty = no gRPC listener.
    pub listen_grpc_urls: Vec<Url>,
    /// URLs serving HTTP/1.1 only (JSON gateway, probes); when any is given the client URLs
    /// serve gRPC only, as etcd's `--listen-client-http-urls`.
    pub listen_client_http_urls: Vec<Url>,
    /// etcd's JSON gateway (`/v3/...`) on the client URLs' HTTP/1.1 side.
    pub enable_grpc_gateway: bool,
    pub initial_cluster: Vec<InitialMember>,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_count: u64,
    pub snapshot_catchup_entries: u64,
    pub quota_backend_bytes: u64,
    pub max_request_bytes: u64,
    pub client_tls: TlsSettings,
    pub peer_tls: TlsSettings,
    /// Whether peers verify each other's certificates against the peer CA.
    pub peer_verify: PeerVerify,
    /// `--grpc-keepalive-*`: the gRPC listener's HTTP/2 ping policy.
    pub grpc_keepalive: GrpcKeepalive,
    pub log_level: tracing::Level,
    /// `--log-outputs`.
    pub log_output: LogOutput,
    /// `--max-concurrent-streams` of each gRPC connection.
    pub max_concurrent_streams: u32,
    /// `--max-txn-ops`: the most operations a txn entering this member may hold.
    pub max_txn_ops: usize,
    /// `--emulated-version`: the older minor version this binary runs as (already checked to be
    /// one it can emulate); `None` runs as the binary's own version.
    pub emulated_version: Option<Version>,
    /// `--experimental-initial-corrupt-check`.
    pub initial_corrupt_check: bool,
    /// `--experimental-corrupt-check-time` in milliseconds (0 = off).
    pub corrupt_check_ms: u64,
    /// `--watch-progress-notify-interval` (or its `--experimental-` name) in milliseconds:
    /// 10 minutes by default (also for 0), at least 100 ms, as etcd.
    pub watch_progress_notify_ms: u64,
    /// `--force-new-cluster`: an existing member restarts as a one-member cluster
    /// (`qraft_io::data_dir::force_new_cluster`); ignored for a new data dir, as in etcd.
    pub force_new_cluster: bool,
    /// `--auth-token`: simple (default) or signed (JWT) tokens.
    pub auth_token: AuthToken,
    /// `--auto-compaction-mode` and `--auto-compaction-retention`; `None` = off.
    pub auto_compaction: Option<AutoCompaction>,
    /// `--strict-reconfig-check` (etcd's default: on).
    pub strict_reconfig_check: bool,
    /// `--tls-min-version`, `--tls-max-version`, `--cipher-suites`: the TCP client listener's
    /// TLS (QUIC keeps TLS 1.3).
    pub tcp_tls: qraft_io::tls::TcpTlsPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{flag}: {source}")]
    Url {
        flag: &'static str,
        source: UrlError,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    File(#[from] FileError),
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

impl Config {
    /// Resolves command-line flags: when `--config-file` is given the file replaces every other
    /// flag and variable, as in etcd.
    pub fn from_flags(flags: Flags) -> Result<(Config, Vec<String>), ConfigError> {
        let mut notes = Vec::new();
        let settings = match &flags.config_file {
            Some(path) => {
                let ignored = ignored_flags(&flags);
                if !ignored.is_empty() {
                    notes.push(format!(
                        "--config-file is given; ignoring {} (as etcd does)",
                        ignored.join(", ")
                    ));
                }
                load_file(path)?
            }
            None => flags,
        };
        Ok((Self::resolve(settings)?, notes))
    }

    /// Applies defaults and validates, one concept at a time: fixed-behaviour flags, the
    /// member's name and data, its URLs, how it bootstraps, timing and limits, TLS, auth,
    /// logging, its background checks and auto compaction.
    pub fn resolve(s: Flags) -> Result<Config, ConfigError> {
        let given = given_flags(&s);
        unsupported::check(given.iter().map(|(f, v)| (f.as_str(), v.as_str())))?;
        let name = member_name(s.name.as_deref())?;
        let data_dir =
            (s.data_dir.clone()).unwrap_or_else(|| PathBuf::from(format!("{name}.qraft")));
        let endpoints = Endpoints::resolve(&s)?;
        let bootstrap = Bootstrap::resolve(&s, &name, &endpoints.initial_advertise_peer_urls)?;
        let timing = Timing::resolve(&s)?;
        let limits = Limits::resolve(&s)?;
        let tls = MemberTls::resolve(&s, &data_dir, &endpoints)?;
        let auth_token = parse_auth_token(s.auth_token.as_deref())?;
        let grpc_keepalive = GrpcKeepalive::resolve(
            s.grpc_keepalive_min_time.as_deref(),
            s.grpc_keepalive_interval.as_deref(),
            s.grpc_keepalive_timeout.as_deref(),
        )?;
        let log_level = parse_log_level(s.log_level.as_deref().unwrap_or("info"))?;
        let log_output = log_output(s.log_outputs.as_deref())?;
        let emulated_version = (s.emulated_version.as_deref())
            .map(|text| parse_emulated_version(text, BINARY_VERSION))
            .transpose()?;
        let checks = Checks::resolve(&s)?;
        let auto_compaction = compaction::auto_compaction(&s)?;
        let tcp_tls = qraft_io::tls::TcpTlsPolicy::from_flags(
            s.tls_min_version.as_deref().unwrap_or("TLS1.2"),
            s.tls_max_version.as_deref().unwrap_or(""),
            s.cipher_suites.as_deref().unwrap_or(""),
        )
        .map_err(|e| {
            invalid(format!(
                "--tls-min-version/--tls-max-version/--cipher-suites: {e}"
            ))
        })?;
        let strict_reconfig_check = parse_bool(
            "--strict-reconfig-check",
            s.strict_reconfig_check.as_deref(),
            true,
        )?;
        Ok(Config {
            name,
            data_dir,
            listen_peer_urls: endpoints.listen_peer_urls,
            listen_client_urls: endpoints.listen_client_urls,
            advertise_client_urls: endpoints.advertise_client_urls,
            initial_advertise_peer_urls: endpoints.initial_advertise_peer_urls,
            listen_metrics_urls: endpoints.listen_metrics_urls,
            listen_grpc_urls: endpoints.listen_grpc_urls,
            listen_client_http_urls: endpoints.listen_client_http_urls,
            enable_grpc_gateway: s.enable_grpc_gateway.unwrap_or(true),
            initial_cluster: bootstrap.initial_cluster,
            initial_cluster_state: bootstrap.initial_cluster_state,
            initial_cluster_token: bootstrap.initial_cluster_token,
            heartbeat_interval_ms: timing.heartbeat_interval_ms,
            election_timeout_ms: timing.election_timeout_ms,
            snapshot_count: limits.snapshot_count,
            snapshot_catchup_entries: limits.snapshot_catchup_entries,
            quota_backend_bytes: limits.quota_backend_bytes,
            max_request_bytes: limits.max_request_bytes,
            max_concurrent_streams: limits.max_concurrent_streams,
            max_txn_ops: limits.max_txn_ops,
            client_tls: tls.client,
            peer_tls: tls.peer,
            peer_verify: tls.peer_verify,
            grpc_keepalive,
            log_level,
            log_output,
            emulated_version,
            initial_corrupt_check: checks.initial_corrupt_check,
            corrupt_check_ms: checks.corrupt_check_ms,
            watch_progress_notify_ms: checks.watch_progress_notify_ms,
            force_new_cluster: s.force_new_cluster.unwrap_or(false),
            auth_token,
            auto_compaction,
            strict_reconfig_check,
            tcp_tls,
        })
    }

    /// Election timeout in ticks of one heartbeat interval (etcd: 1000 ms / 100 ms = 10).
    pub fn election_ticks(&self) -> u64 {
        self.election_timeout_ms / self.heartbeat_interval_ms
    }

    /// This member's ID in the initial cluster.
    pub fn member_id(&self) -> u64 {
        member_id(
            &self.initial_advertise_peer_urls,
            &self.initial_cluster_token,
        )
    }

    /// The cluster ID: a function of every initial member's ID, so all members agree on it.
    pub fn cluster_id(&self) -> u64 {
        let ids: Vec<u64> = self
            .initial_cluster
            .iter()
            .map(|m| member_id(&m.peer_urls, &self.initial_cluster_token))
            .collect();
        cluster_id_of(ids)
    }
}

/// A boolean flag held as text: Go's spellings (`strconv.ParseBool`), `default` when not given.
fn parse_bool(flag: &str, text: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match text {
        None => Ok(default),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(invalid(format!(
            "invalid boolean value {other:?} for {flag}: parse error"
        ))),
    }
}

/// `--name`: etcd's default, and a name `--initial-cluster` can hold.
fn member_name(given: Option<&str>) -> Result<String, ConfigError> {
    let name = given.unwrap_or(DEFAULT_NAME);
    if name.is_empty() || name.contains(['=', ',']) {
        return Err(invalid(format!(
            "--name {name:?} must be non-empty and contain neither '=' nor ','"
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests;
