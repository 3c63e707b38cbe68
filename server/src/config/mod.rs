//! The server's configuration: etcd's flags (or its YAML file, or `QRAFT_*` variables) resolved
//! into one validated [`Config`]. Validation happens here, before anything touches the disk or
//! the network, and every error names the flag at fault.

mod auth_token;
mod duration;
mod file;
mod flags;
mod initial_cluster;
mod keepalive;
mod tls;
mod unsupported;
mod url;

pub use auth_token::AuthToken;
use auth_token::parse_auth_token;
pub use file::{FileError, load as load_file, parse as parse_file};
pub use flags::Flags;
pub use initial_cluster::member_id;
use initial_cluster::{check_initial_cluster, cluster_id_of, parse_initial_cluster};
pub use keepalive::GrpcKeepalive;
pub use tls::{PeerVerify, PeerVerifyReason, TlsSettings, TlsSource};
use tls::{TlsFlags, peer_verify, tls_settings};
pub use url::{Scheme, Url, UrlError, join_list, parse_list};

use std::path::PathBuf;

use qraft_core::version::{BINARY_VERSION, LocalVersion, Version};

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
    /// (`qraft_io::driver::force_new_cluster`); ignored for a new data dir, as in etcd.
    pub force_new_cluster: bool,
    /// `--auth-token`: simple (default) or signed (JWT) tokens.
    pub auth_token: AuthToken,
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

    /// Applies defaults and validates.
    pub fn resolve(s: Flags) -> Result<Config, ConfigError> {
        let given = given_flags(&s);
        unsupported::check(given.iter().map(|(f, v)| (f.as_str(), v.as_str())))?;
        let log_output = log_output(s.log_outputs.as_deref())?;
        let auth_token = parse_auth_token(s.auth_token.as_deref())?;
        let max_concurrent_streams = match s.max_concurrent_streams.as_deref() {
            None => u32::MAX,
            Some(text) => text.parse().map_err(|_| {
                invalid(format!(
                    "--max-concurrent-streams {text:?}: expected a number of streams (1 to 4294967295)"
                ))
            })?,
        };
        let name = s.name.unwrap_or_else(|| DEFAULT_NAME.to_string());
        if name.is_empty() || name.contains(['=', ',']) {
            return Err(invalid(format!(
                "--name {name:?} must be non-empty and contain neither '=' nor ','"
            )));
        }
        let data_dir = s
            .data_dir
            .unwrap_or_else(|| PathBuf::from(format!("{name}.qraft")));

        let urls = |flag: &'static str, v: Option<String>, default: &str| {
            let text = v.unwrap_or_else(|| default.to_string());
            let list = parse_list(&text).map_err(|source| ConfigError::Url { flag, source })?;
            if list.is_empty() {
                return Err(invalid(format!("{flag} must name at least one URL")));
            }
            Ok(list)
        };
        let listen_peer_urls = urls("--listen-peer-urls", s.listen_peer_urls, DEFAULT_PEER_URL)?;
        let listen_client_urls = urls(
            "--listen-client-urls",
            s.listen_client_urls,
            DEFAULT_CLIENT_URL,
        )?;
        let advertise_client_urls = match s.advertise_client_urls {
            Some(v) => urls("--advertise-client-urls", Some(v), "")?,
            None => listen_client_urls.clone(),
        };
        let initial_advertise_peer_urls = match s.initial_advertise_peer_urls {
            Some(v) => urls("--initial-advertise-peer-urls", Some(v), "")?,
            None => listen_peer_urls.clone(),
        };
        // None by default, as etcd.
        let listen_metrics_urls = match s.listen_metrics_urls {
            Some(v) => urls("--listen-metrics-urls", Some(v), "")?,
            None => Vec::new(),
        };
        // Off unless asked for; `http://` entries are the explicit request for plaintext.
        let listen_grpc_urls = match s.listen_grpc_urls {
            Some(v) => parse_list(&v).map_err(|source| ConfigError::Url {
                flag: "--listen-grpc-urls",
                source,
            })?,
            None => Vec::new(),
        };

        for (flag, list) in [
            ("--listen-peer-urls", &listen_peer_urls),
            ("--listen-client-urls", &listen_client_urls),
            ("--listen-metrics-urls", &listen_metrics_urls),
            ("--listen-grpc-urls", &listen_grpc_urls),
        ] {
            for u in list {
                u.bind_addr()
                    .map_err(|source| ConfigError::Url { flag, source })?;
            }
        }
        // Client URLs may be `http://` as in etcd: such a URL serves plaintext gRPC only (QUIC
        // always runs TLS). Peer URLs too: see `PeerVerify`.
        let peer_verify = peer_verify(
            &listen_peer_urls,
            &initial_advertise_peer_urls,
            s.peer_auto_tls,
            s.peer_cert_file.is_some(),
        )?;
        if let Some(u) = listen_metrics_urls
            .iter()
            .find(|u| u.scheme != Scheme::Http)
        {
            return Err(invalid(format!(
                "--listen-metrics-urls: {u} must be http:// (TLS on the metrics listener is not supported yet)"
            )));
        }

        let initial_cluster = match s.initial_cluster {
            Some(v) => parse_initial_cluster(&v)?,
            None => vec![InitialMember {
                name: name.clone(),
                peer_urls: initial_advertise_peer_urls.clone(),
            }],
        };
        check_initial_cluster(&name, &initial_cluster, &initial_advertise_peer_urls)?;
        let initial_cluster_state = match s.initial_cluster_state.as_deref().unwrap_or("new") {
            "new" => ClusterState::New,
            "existing" => ClusterState::Existing,
            other => {
                return Err(invalid(format!(
                    "unexpected --initial-cluster-state {other:?}: must be \"new\" or \"existing\""
                )));
            }
        };
        let initial_cluster_token = s
            .initial_cluster_token
            .unwrap_or_else(|| DEFAULT_CLUSTER_TOKEN.to_string());

        let heartbeat_interval_ms = s.heartbeat_interval.unwrap_or(DEFAULT_HEARTBEAT_MS);
        let election_timeout_ms = s.election_timeout.unwrap_or(DEFAULT_ELECTION_MS);
        if heartbeat_interval_ms == 0 {
            return Err(invalid("--heartbeat-interval must be greater than 0"));
        }
        if election_timeout_ms < 5 * heartbeat_interval_ms {
            return Err(invalid(format!(
                "--election-timeout[{election_timeout_ms}ms] should be at least as 5 times as \
                 --heartbeat-interval[{heartbeat_interval_ms}ms]"
            )));
        }
        if election_timeout_ms > MAX_ELECTION_MS {
            return Err(invalid(format!(
                "--election-timeout[{election_timeout_ms}ms] is too long, and should be set less \
                 than {MAX_ELECTION_MS}ms"
            )));
        }
        let snapshot_count = s.snapshot_count.unwrap_or(DEFAULT_SNAPSHOT_COUNT);
        if snapshot_count == 0 {
            return Err(invalid("--snapshot-count must be greater than 0"));
        }
        let snapshot_catchup_entries = match (
            s.snapshot_catchup_entries,
            s.experimental_snapshot_catchup_entries.as_deref(),
        ) {
            (Some(n), _) => n,
            // etcd 3.5's name of the flag.
            (None, Some(text)) => text.parse().map_err(|_| {
                invalid(format!(
                    "--experimental-snapshot-catchup-entries {text:?}: expected a number"
                ))
            })?,
            (None, None) => DEFAULT_SNAPSHOT_CATCHUP_ENTRIES,
        };
        let quota_backend_bytes = match s.quota_backend_bytes.unwrap_or(0) {
            0 => DEFAULT_QUOTA_BYTES,
            q => q,
        };
        let max_request_bytes = s.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if max_request_bytes == 0 {
            return Err(invalid("--max-request-bytes must be greater than 0"));
        }

        let validity_years = s.self_signed_cert_validity.unwrap_or(1);
        if validity_years == 0 {
            return Err(invalid(
                "--self-signed-cert-validity must be at least 1 year",
            ));
        }
        let client_tls = tls_settings(
            "",
            TlsFlags {
                cert: s.cert_file,
                key: s.key_file,
                trusted_ca: s.trusted_ca_file,
                client_cert_auth: s.client_cert_auth.unwrap_or(false),
                auto: s.auto_tls,
                crl_file: s.client_crl_file,
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
        let peer_tls = tls_settings(
            "peer-",
            TlsFlags {
                cert: s.peer_cert_file,
                key: s.peer_key_file,
                trusted_ca: s.peer_trusted_ca_file,
                client_cert_auth: true,
                // `http://` peer URLs need no TLS flags: auto-TLS is implied.
                auto: match peer_verify {
                    PeerVerify::AnyCertificate(PeerVerifyReason::HttpUrls) => None,
                    _ => s.peer_auto_tls,
                },
                crl_file: s.peer_crl_file,
                allowed_cn: s.peer_cert_allowed_cn,
                allowed_hostname: s.peer_cert_allowed_hostname,
            },
            data_dir.join(AUTO_TLS_PEER_DIR),
            validity_years,
        )?;
        // A plaintext listener has no client certificate to check: serving it next to
        // `--client-cert-auth` would let anyone in without one.
        for (flag, list) in [
            ("--listen-client-urls", &listen_client_urls),
            ("--listen-grpc-urls", &listen_grpc_urls),
        ] {
            if client_tls.client_cert_auth
                && let Some(u) = list.iter().find(|u| u.scheme == Scheme::Http)
            {
                return Err(invalid(format!(
                    "{flag}: {u} is plaintext, so --client-cert-auth could not be \
                     enforced on it; use an https:// URL or drop --client-cert-auth"
                )));
            }
        }
        let grpc_keepalive = GrpcKeepalive::resolve(
            s.grpc_keepalive_min_time.as_deref(),
            s.grpc_keepalive_interval.as_deref(),
            s.grpc_keepalive_timeout.as_deref(),
        )?;

        let log_level = parse_log_level(s.log_level.as_deref().unwrap_or("info"))?;
        let emulated_version = s
            .emulated_version
            .as_deref()
            .map(|text| parse_emulated_version(text, BINARY_VERSION))
            .transpose()?;
        // etcd 3.6's name first, then 3.4/3.5's.
        let corrupt_check = (s.corrupt_check_time.as_deref())
            .map(|t| ("--corrupt-check-time", t))
            .or(s
                .experimental_corrupt_check_time
                .as_deref()
                .map(|t| ("--experimental-corrupt-check-time", t)));
        let corrupt_check_ms = match corrupt_check {
            None => 0,
            Some((flag, text)) => parse_duration_ms(text)
                .ok_or_else(|| invalid(format!("invalid {flag} {text:?} (e.g. 5m, 30s, 500ms)")))?,
        };

        let watch_progress_notify_ms = watch_progress_notify_ms(
            s.watch_progress_notify_interval.as_deref(),
            s.experimental_watch_progress_notify_interval.as_deref(),
        )?;

        Ok(Config {
            name,
            data_dir,
            listen_peer_urls,
            listen_client_urls,
            advertise_client_urls,
            initial_advertise_peer_urls,
            listen_metrics_urls,
            listen_grpc_urls,
            initial_cluster,
            initial_cluster_state,
            initial_cluster_token,
            heartbeat_interval_ms,
            election_timeout_ms,
            snapshot_count,
            snapshot_catchup_entries,
            quota_backend_bytes,
            max_request_bytes,
            client_tls,
            peer_tls,
            peer_verify,
            grpc_keepalive,
            log_level,
            log_output,
            max_concurrent_streams,
            emulated_version,
            initial_corrupt_check: s.experimental_initial_corrupt_check.unwrap_or(false),
            corrupt_check_ms,
            watch_progress_notify_ms,
            force_new_cluster: s.force_new_cluster.unwrap_or(false),
            auth_token,
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

/// `--log-outputs`: etcd's `default` and `stderr`, or `stdout`; log files are not supported.
fn log_output(text: Option<&str>) -> Result<LogOutput, ConfigError> {
    match text.unwrap_or("default") {
        "default" | "stderr" => Ok(LogOutput::Stderr),
        "stdout" => Ok(LogOutput::Stdout),
        other => Err(invalid(format!(
            "--log-outputs {other:?} is not supported: qraft logs to stderr (default) or stdout"
        ))),
    }
}

fn parse_log_level(s: &str) -> Result<tracing::Level, ConfigError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" => tracing::Level::WARN,
        "error" | "dpanic" | "panic" | "fatal" => tracing::Level::ERROR,
        "trace" => tracing::Level::TRACE,
        _ => {
            return Err(invalid(format!(
                "--log-level {s:?}: expected one of debug, info, warn, error, panic, fatal"
            )));
        }
    })
}

/// `--emulated-version`: `major.minor` (a leading `v` and a patch are tolerated, the patch is
/// ignored), and only a version `binary` can run as: its own minor or the one before.
/// A duration as etcd's flags write them, one unit: `0`, `500ms`, `30s`, `5m`, `1h`.
pub(crate) fn parse_duration_ms(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

fn parse_emulated_version(s: &str, binary: Version) -> Result<Version, ConfigError> {
    let bad = || {
        invalid(format!(
            "--emulated-version {s:?}: expected major.minor, e.g. 0.1"
        ))
    };
    let mut parts = s.trim_start_matches('v').split('.');
    let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    match parts.next() {
        None => {}
        Some(p) if p.parse::<u32>().is_ok() && parts.next().is_none() => {}
        Some(_) => return Err(bad()),
    }
    let emulated = Version::new(major, minor, 0);
    LocalVersion::new(binary, Some(emulated)).map_err(|e| invalid(e.to_string()))?;
    Ok(emulated)
}

/// etcd's default progress-notify interval and the smallest it accepts (a smaller one is raised
/// to it, where etcd also logs a warning; 0 keeps the default).
const DEFAULT_WATCH_PROGRESS_NOTIFY_MS: u64 = 10 * 60 * 1000;
const MIN_WATCH_PROGRESS_NOTIFY_MS: u64 = 100;

/// The progress-notify interval from etcd 3.6's flag, else 3.4/3.5's `--experimental-` one.
fn watch_progress_notify_ms(
    current: Option<&str>,
    experimental: Option<&str>,
) -> Result<u64, ConfigError> {
    let (flag, text) = match (current, experimental) {
        (Some(text), _) => ("--watch-progress-notify-interval", text),
        (None, Some(text)) => ("--experimental-watch-progress-notify-interval", text),
        (None, None) => return Ok(DEFAULT_WATCH_PROGRESS_NOTIFY_MS),
    };
    let ms = parse_duration_ms(text)
        .ok_or_else(|| invalid(format!("invalid {flag} {text:?} (e.g. 10m, 30s, 500ms)")))?;
    Ok(match ms {
        0 => DEFAULT_WATCH_PROGRESS_NOTIFY_MS,
        ms => ms.max(MIN_WATCH_PROGRESS_NOTIFY_MS),
    })
}

/// Every flag given (set on the command line or by a `QRAFT_*` variable), kebab-case without
/// the dashes, with its value as text. Derived from the flag definitions (`Flags` serializes
/// under the flags' own names), so a new flag needs no list kept by hand.
fn given_flags(flags: &Flags) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(flags) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(name, value)| {
            let text = match value {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some((name, text))
        })
        .collect()
}

/// The flags `--config-file` makes etcd (and qraft) ignore: every other one given.
fn ignored_flags(flags: &Flags) -> Vec<String> {
    given_flags(flags)
        .into_iter()
        .filter(|(name, _)| name != "config-file")
        .map(|(name, _)| format!("--{name}"))
        .collect()
}

#[cfg(test)]
mod tests;
