//! `qraft`'s command line: etcd's flag names, each also read from a `QRAFT_*` variable
//! (`--data-dir` ↔ `QRAFT_DATA_DIR`). Every setting is optional here so that the resolver can
//! tell "not given" from "given as the default" and apply the config file's rules.
//! Boolean flags accept etcd's spellings: `--client-cert-auth`, `--client-cert-auth=false`,
//! `QRAFT_CLIENT_CERT_AUTH=true`.

use clap::{ArgAction, Parser};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "qraft",
    version,
    about = "qraft: a replicated, strongly consistent key-value store in the spirit of etcd",
    long_about = "qraft: a replicated, strongly consistent key-value store in the spirit of etcd.\n\n\
        With no flags it runs a single-node member on 127.0.0.1 (clients on https://127.0.0.1:2379, \
        peers on https://127.0.0.1:2380, no metrics listener) with auto-generated \
        certificates in ./default.qraft. Every flag can also be given as a QRAFT_* environment \
        variable, or all of them in a YAML --config-file (etcd's format)."
)]
pub struct Flags {
    /// YAML configuration file in etcd's format; when given, other flags and QRAFT_* variables
    /// are ignored (as etcd does).
    #[arg(long, env = "QRAFT_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Human-readable name for this member [default: default].
    #[arg(long, env = "QRAFT_NAME")]
    pub name: Option<String>,
    /// Path to the data directory [default: ./<name>.qraft].
    #[arg(long, env = "QRAFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// URLs to listen on for peer traffic [default: https://127.0.0.1:2380].
    #[arg(long, env = "QRAFT_LISTEN_PEER_URLS")]
    pub listen_peer_urls: Option<String>,
    /// URLs to listen on for client traffic [default: https://127.0.0.1:2379].
    #[arg(long, env = "QRAFT_LISTEN_CLIENT_URLS")]
    pub listen_client_urls: Option<String>,
    /// Client URLs advertised to the rest of the cluster [default: the listen client URLs].
    #[arg(long, env = "QRAFT_ADVERTISE_CLIENT_URLS")]
    pub advertise_client_urls: Option<String>,
    /// Peer URLs advertised to the rest of the cluster [default: the listen peer URLs].
    #[arg(long, env = "QRAFT_INITIAL_ADVERTISE_PEER_URLS")]
    pub initial_advertise_peer_urls: Option<String>,
    /// URLs serving /metrics, /health, /livez, /readyz and /version [default: none, as etcd],
    /// e.g. http://127.0.0.1:2381.
    #[arg(long, env = "QRAFT_LISTEN_METRICS_URLS")]
    pub listen_metrics_urls: Option<String>,
    /// URLs serving etcd's v3 gRPC API for existing etcd clients [default: none]. `https://`
    /// uses the client certificate; `http://` serves plaintext.
    #[arg(long, env = "QRAFT_LISTEN_GRPC_URLS")]
    pub listen_grpc_urls: Option<String>,

    /// Initial cluster configuration for bootstrapping, `name=peer-url,...`
    /// [default: <name>=<initial advertise peer URLs>].
    #[arg(long, env = "QRAFT_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,
    /// Initial cluster state: `new` or `existing` [default: new].
    #[arg(long, env = "QRAFT_INITIAL_CLUSTER_STATE")]
    pub initial_cluster_state: Option<String>,
    /// Initial cluster token, mixed into member and cluster IDs [default: qraft-cluster].
    #[arg(long, env = "QRAFT_INITIAL_CLUSTER_TOKEN")]
    pub initial_cluster_token: Option<String>,

    /// Time (in milliseconds) of a heartbeat interval [default: 100].
    #[arg(long, env = "QRAFT_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<u64>,
    /// Time (in milliseconds) for an election to timeout [default: 1000].
    #[arg(long, env = "QRAFT_ELECTION_TIMEOUT")]
    pub election_timeout: Option<u64>,
    /// Number of committed transactions to trigger a snapshot [default: 10000].
    #[arg(long, env = "QRAFT_SNAPSHOT_COUNT")]
    pub snapshot_count: Option<u64>,
    /// Number of entries kept behind a snapshot for slow followers to catch up with
    /// [default: 5000].
    #[arg(long, env = "QRAFT_SNAPSHOT_CATCHUP_ENTRIES")]
    pub snapshot_catchup_entries: Option<u64>,
    /// Raise alarms when backend size exceeds the given quota (0 = 2 GiB) [default: 0].
    #[arg(long, env = "QRAFT_QUOTA_BACKEND_BYTES")]
    pub quota_backend_bytes: Option<u64>,
    /// Maximum client request size in bytes the server will accept [default: 1572864].
    #[arg(long, env = "QRAFT_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<u64>,

    /// Path to the client server TLS cert file.
    #[arg(long, env = "QRAFT_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Path to the client server TLS key file.
    #[arg(long, env = "QRAFT_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Path to the client server TLS trusted CA cert file.
    #[arg(long, env = "QRAFT_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Path to the client certificate revocation list file (PEM or DER); a revoked client
    /// certificate is refused in the TLS handshake.
    #[arg(long, env = "QRAFT_CLIENT_CRL_FILE")]
    pub client_crl_file: Option<PathBuf>,
    /// Enable client cert authentication [default: false].
    #[arg(long, env = "QRAFT_CLIENT_CERT_AUTH", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub client_cert_auth: Option<bool>,
    /// Client TLS using generated certificates [default: on when no --cert-file is given].
    #[arg(long, env = "QRAFT_AUTO_TLS", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub auto_tls: Option<bool>,

    /// Path to the peer server TLS cert file.
    #[arg(long, env = "QRAFT_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,
    /// Path to the peer server TLS key file.
    #[arg(long, env = "QRAFT_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,
    /// Path to the peer server TLS trusted CA file.
    #[arg(long, env = "QRAFT_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Path to the peer certificate revocation list file (PEM or DER); a revoked peer
    /// certificate is refused on both sides of the peer handshake.
    #[arg(long, env = "QRAFT_PEER_CRL_FILE")]
    pub peer_crl_file: Option<PathBuf>,
    /// Allowed common name for inter-peer authentication: a peer whose certificate has another
    /// subject CN is refused.
    #[arg(long, env = "QRAFT_PEER_CERT_ALLOWED_CN")]
    pub peer_cert_allowed_cn: Option<String>,
    /// Allowed TLS host name (a DNS or IP subject alternative name of the peer's certificate)
    /// for inter-peer authentication.
    #[arg(long, env = "QRAFT_PEER_CERT_ALLOWED_HOSTNAME")]
    pub peer_cert_allowed_hostname: Option<String>,
    /// Enable peer client cert authentication; qraft peers always authenticate each other, so
    /// only `true` is accepted [default: true].
    #[arg(long, env = "QRAFT_PEER_CLIENT_CERT_AUTH", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub peer_client_cert_auth: Option<bool>,
    /// Peer TLS using generated certificates [default: on when no --peer-cert-file is given].
    #[arg(long, env = "QRAFT_PEER_AUTO_TLS", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub peer_auto_tls: Option<bool>,
    /// Validity period of the auto-generated certificates, in years [default: 1].
    #[arg(long, env = "QRAFT_SELF_SIGNED_CERT_VALIDITY")]
    pub self_signed_cert_validity: Option<u32>,

    /// Minimum duration a gRPC client must wait between keep-alive pings; a client that pings
    /// more often is disconnected [default: 5s].
    #[arg(long, env = "QRAFT_GRPC_KEEPALIVE_MIN_TIME")]
    pub grpc_keepalive_min_time: Option<String>,
    /// How often the gRPC listener pings an idle client to check it is alive (0 = never)
    /// [default: 2h].
    #[arg(long, env = "QRAFT_GRPC_KEEPALIVE_INTERVAL")]
    pub grpc_keepalive_interval: Option<String>,
    /// How long the gRPC listener waits for the answer to its ping before closing the
    /// connection (0 = never) [default: 20s].
    #[arg(long, env = "QRAFT_GRPC_KEEPALIVE_TIMEOUT")]
    pub grpc_keepalive_timeout: Option<String>,

    /// Log level: debug, info, warn, error, panic, fatal [default: info].
    #[arg(long, env = "QRAFT_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Run as an older minor version (`3.5`-style `major.minor`): features, storage schema and
    /// the published version all as that version.
    #[arg(long, env = "QRAFT_EMULATED_VERSION")]
    pub emulated_version: Option<String>,
    /// Check the key space against the other members' once after starting [default: false].
    #[arg(long, env = "QRAFT_EXPERIMENTAL_INITIAL_CORRUPT_CHECK", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub experimental_initial_corrupt_check: Option<bool>,
    /// How often the leader checks the members' key spaces against its own, e.g. `5m`, `30s`,
    /// `500ms` (0 = never) [default: 0s].
    #[arg(long, env = "QRAFT_EXPERIMENTAL_CORRUPT_CHECK_TIME")]
    pub experimental_corrupt_check_time: Option<String>,
    /// How often watchers that asked for progress notifications and got no events meanwhile
    /// are told the current revision, e.g. `10m`, `30s` (under 100ms counts as 100ms, 0 as the
    /// default) [default: 10m].
    #[arg(long, env = "QRAFT_WATCH_PROGRESS_NOTIFY_INTERVAL")]
    pub watch_progress_notify_interval: Option<String>,
    /// The name etcd 3.4 and 3.5 give `--watch-progress-notify-interval` (used when that one is
    /// not given).
    #[arg(long, env = "QRAFT_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL")]
    pub experimental_watch_progress_notify_interval: Option<String>,
    /// Restart an existing member as the only member of its cluster (after quorum loss):
    /// every other member is removed by conf changes committed at start, the data is kept.
    /// Remove the flag once the member runs [default: false].
    #[arg(long, env = "QRAFT_FORCE_NEW_CLUSTER", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub force_new_cluster: Option<bool>,
}
