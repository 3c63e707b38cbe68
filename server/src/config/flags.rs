//! `qraft`'s command line: etcd's flag names, each also read from a `QRAFT_*` variable
//! (`--data-dir` ↔ `QRAFT_DATA_DIR`). Every setting is optional here so that the resolver can
//! tell "not given" from "given as the default" and apply the config file's rules.
//! Boolean flags accept etcd's spellings: `--client-cert-auth`, `--client-cert-auth=false`,
//! `QRAFT_CLIENT_CERT_AUTH=true`.

use clap::{ArgAction, Parser};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Parser, Serialize)]
#[serde(rename_all = "kebab-case")]
#[command(
    name = "qraft",
    version,
    // Go's flag package takes a flag given twice and keeps the last value; etcd's command lines
    // rely on it (its e2e suite passes `--client-cert-auth` twice with a CRL file).
    args_override_self = true,
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

    // etcd 3.6's remaining flags. Each is implemented with etcd's meaning or refused at start
    // unless given the one value qraft's behaviour matches (`unsupported::check`).
    /// Reject reconfiguration requests that would cause quorum loss (too few started or
    /// connected voting members after the change) [default: true].
    #[arg(long, env = "QRAFT_STRICT_RECONFIG_CHECK", num_args = 0..=1, default_missing_value = "true")]
    pub strict_reconfig_check: Option<String>,
    /// Maximum concurrent streams each client may open on one HTTP/2 connection of the gRPC listener [default: 4294967295].
    #[arg(long, env = "QRAFT_MAX_CONCURRENT_STREAMS")]
    pub max_concurrent_streams: Option<String>,
    /// Logger: only `zap` (etcd 3.6's only logger) is accepted; qraft logs with tracing.
    #[arg(long, env = "QRAFT_LOGGER")]
    pub logger: Option<String>,
    /// Where logs go: `default` or `stderr` (standard error), or `stdout` [default: default].
    #[arg(long, env = "QRAFT_LOG_OUTPUTS")]
    pub log_outputs: Option<String>,
    /// Log format: `console` is what qraft writes; etcd's `json` is not supported.
    #[arg(long, env = "QRAFT_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Auth token type: `simple` [default], or signed tokens as etcd's `jwt,pub-key=FILE,priv-key=FILE,sign-method=RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|EdDSA|HS256|HS384|HS512,ttl=5m`.
    #[arg(long, env = "QRAFT_AUTH_TOKEN")]
    pub auth_token: Option<String>,
    /// TTL of simple tokens in seconds: qraft's tokens live 300 s (etcd's default).
    #[arg(long, env = "QRAFT_AUTH_TOKEN_TTL")]
    pub auth_token_ttl: Option<String>,
    /// bcrypt cost of password hashes: fixed at 10 (etcd's default).
    #[arg(long, env = "QRAFT_BCRYPT_COST")]
    pub bcrypt_cost: Option<String>,
    /// How --auto-compaction-retention is read: `periodic` (a duration of history, hours if a
    /// bare number) or `revision` (a number of revisions) [default: periodic].
    #[arg(long, env = "QRAFT_AUTO_COMPACTION_MODE")]
    pub auto_compaction_mode: Option<String>,
    /// History the leader keeps when it compacts on its own, e.g. `1` (hour), `30m`, or `1000`
    /// revisions in revision mode; 0 turns auto compaction off [default: 0].
    #[arg(long, env = "QRAFT_AUTO_COMPACTION_RETENTION")]
    pub auto_compaction_retention: Option<String>,
    /// Maximum operations in a txn request (compares, or the ops of one branch) [default: 128].
    #[arg(long, env = "QRAFT_MAX_TXN_OPS")]
    pub max_txn_ops: Option<String>,
    /// Maximum learners in the cluster: fixed at 1 (etcd's default).
    #[arg(long, env = "QRAFT_MAX_LEARNERS")]
    pub max_learners: Option<String>,
    /// TLS 1.2 cipher suites of the TCP client listener, comma-separated Go names (e.g.
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); TLS 1.3's are fixed [default: all qraft has].
    #[arg(long, env = "QRAFT_CIPHER_SUITES")]
    pub cipher_suites: Option<String>,
    /// Minimum TLS version of the TCP client listener: TLS1.2 or TLS1.3 (QUIC is always
    /// TLS 1.3) [default: TLS1.2].
    #[arg(long, env = "QRAFT_TLS_MIN_VERSION")]
    pub tls_min_version: Option<String>,
    /// Maximum TLS version of the TCP client listener: TLS1.2 or TLS1.3 [default: TLS1.3].
    #[arg(long, env = "QRAFT_TLS_MAX_VERSION")]
    pub tls_max_version: Option<String>,
    /// URLs serving HTTP/1.1 only (etcd's JSON gateway and the probes); when given, the
    /// --listen-client-urls serve gRPC only, as etcd's.
    #[arg(long, env = "QRAFT_LISTEN_CLIENT_HTTP_URLS")]
    pub listen_client_http_urls: Option<String>,
    /// etcd's JSON gateway (`/v3/...` over HTTP/1.1) on the client URLs [default: true].
    #[arg(long, env = "QRAFT_ENABLE_GRPC_GATEWAY", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub enable_grpc_gateway: Option<bool>,
    /// Raft pre-vote: qraft always pre-votes (`true` only).
    #[arg(long, env = "QRAFT_PRE_VOTE", num_args = 0..=1, default_missing_value = "true")]
    pub pre_vote: Option<String>,
    /// Fast-forward the first election: qraft does (`true` only).
    #[arg(long, env = "QRAFT_INITIAL_ELECTION_TICK_ADVANCE", num_args = 0..=1, default_missing_value = "true")]
    pub initial_election_tick_advance: Option<String>,
    /// The v2 API was removed in etcd 3.6: only `false`.
    #[arg(long, env = "QRAFT_ENABLE_V2", num_args = 0..=1, default_missing_value = "true")]
    pub enable_v2: Option<String>,
    /// v2 deprecation stage: qraft has no v2 store (`write-only`, `write-only-drop-data` or `gone`).
    #[arg(long, env = "QRAFT_V2_DEPRECATION")]
    pub v2_deprecation: Option<String>,
    /// Separate WAL directory: not supported (qraft's journal lives in the data directory).
    #[arg(long, env = "QRAFT_WAL_DIR")]
    pub wal_dir: Option<String>,
    /// Snapshot files to keep: qraft keeps no snapshot files (only 0 or 5, etcd's default).
    #[arg(long, env = "QRAFT_MAX_SNAPSHOTS")]
    pub max_snapshots: Option<String>,
    /// WAL files to keep: qraft's journal is folded into LMDB (only 0 or 5, etcd's default).
    #[arg(long, env = "QRAFT_MAX_WALS")]
    pub max_wals: Option<String>,
    /// Disable fsync: not supported (only `false`).
    #[arg(long, env = "QRAFT_UNSAFE_NO_FSYNC", num_args = 0..=1, default_missing_value = "true")]
    pub unsafe_no_fsync: Option<String>,
    /// Discovery URL: not supported (use --initial-cluster).
    #[arg(long, env = "QRAFT_DISCOVERY")]
    pub discovery: Option<String>,
    /// DNS SRV discovery: not supported (use --initial-cluster).
    #[arg(long, env = "QRAFT_DISCOVERY_SRV")]
    pub discovery_srv: Option<String>,
    /// DNS SRV discovery service name: not supported.
    #[arg(long, env = "QRAFT_DISCOVERY_SRV_NAME")]
    pub discovery_srv_name: Option<String>,
    /// v3 discovery endpoints: not supported (use --initial-cluster).
    #[arg(long, env = "QRAFT_DISCOVERY_ENDPOINTS")]
    pub discovery_endpoints: Option<String>,
    /// v3 discovery token: not supported.
    #[arg(long, env = "QRAFT_DISCOVERY_TOKEN")]
    pub discovery_token: Option<String>,
    /// Discovery fallback: not supported.
    #[arg(long, env = "QRAFT_DISCOVERY_FALLBACK")]
    pub discovery_fallback: Option<String>,
    /// Discovery proxy: not supported.
    #[arg(long, env = "QRAFT_DISCOVERY_PROXY")]
    pub discovery_proxy: Option<String>,
    /// CORS origins of the HTTP gateway: not supported (no CORS headers are sent).
    #[arg(long, env = "QRAFT_CORS")]
    pub cors: Option<String>,
    /// Accepted Host headers of the HTTP gateway: every host (`*`, etcd's default) only.
    #[arg(long, env = "QRAFT_HOST_WHITELIST")]
    pub host_whitelist: Option<String>,
    /// Go's pprof handlers: not applicable (only `false`).
    #[arg(long, env = "QRAFT_ENABLE_PPROF", num_args = 0..=1, default_missing_value = "true")]
    pub enable_pprof: Option<String>,
    /// Metrics detail `basic` or `extensive`: qraft serves one set (`basic` only).
    #[arg(long, env = "QRAFT_METRICS")]
    pub metrics: Option<String>,
    /// Client certificate the member presents to other members' client URLs: not supported.
    #[arg(long, env = "QRAFT_CLIENT_CERT_FILE")]
    pub client_cert_file: Option<String>,
    /// Key of --client-cert-file: not supported.
    #[arg(long, env = "QRAFT_CLIENT_KEY_FILE")]
    pub client_key_file: Option<String>,
    /// Separate peer client certificate: not supported (the peer certificate serves both directions).
    #[arg(long, env = "QRAFT_PEER_CLIENT_CERT_FILE")]
    pub peer_client_cert_file: Option<String>,
    /// Key of --peer-client-cert-file: not supported.
    #[arg(long, env = "QRAFT_PEER_CLIENT_KEY_FILE")]
    pub peer_client_key_file: Option<String>,
    /// Allowed host name of client certificates: not supported.
    #[arg(long, env = "QRAFT_CLIENT_CERT_ALLOWED_HOSTNAME")]
    pub client_cert_allowed_hostname: Option<String>,
    /// Skip the SAN check of peer client certificates: not supported (only `false`).
    #[arg(long, env = "QRAFT_PEER_SKIP_CLIENT_SAN_VERIFICATION", num_args = 0..=1, default_missing_value = "true")]
    pub peer_skip_client_san_verification: Option<String>,
    /// SO_REUSEADDR on listeners: not supported (only `false`).
    #[arg(long, env = "QRAFT_SOCKET_REUSE_ADDRESS", num_args = 0..=1, default_missing_value = "true")]
    pub socket_reuse_address: Option<String>,
    /// SO_REUSEPORT on listeners: not supported (only `false`).
    #[arg(long, env = "QRAFT_SOCKET_REUSE_PORT", num_args = 0..=1, default_missing_value = "true")]
    pub socket_reuse_port: Option<String>,
    /// Log rotation: not supported (only `false`).
    #[arg(long, env = "QRAFT_ENABLE_LOG_ROTATION", num_args = 0..=1, default_missing_value = "true")]
    pub enable_log_rotation: Option<String>,
    /// Log rotation settings: not supported.
    #[arg(long, env = "QRAFT_LOG_ROTATION_CONFIG_JSON")]
    pub log_rotation_config_json: Option<String>,
    /// OpenTelemetry tracing: not supported (only `false`).
    #[arg(long, env = "QRAFT_ENABLE_DISTRIBUTED_TRACING", num_args = 0..=1, default_missing_value = "true")]
    pub enable_distributed_tracing: Option<String>,
    /// OpenTelemetry collector address: not supported.
    #[arg(long, env = "QRAFT_DISTRIBUTED_TRACING_ADDRESS")]
    pub distributed_tracing_address: Option<String>,
    /// OpenTelemetry service name: not supported.
    #[arg(long, env = "QRAFT_DISTRIBUTED_TRACING_SERVICE_NAME")]
    pub distributed_tracing_service_name: Option<String>,
    /// OpenTelemetry instance ID: not supported.
    #[arg(long, env = "QRAFT_DISTRIBUTED_TRACING_INSTANCE_ID")]
    pub distributed_tracing_instance_id: Option<String>,
    /// OpenTelemetry sampling rate: not supported.
    #[arg(long, env = "QRAFT_DISTRIBUTED_TRACING_SAMPLING_RATE")]
    pub distributed_tracing_sampling_rate: Option<String>,
    /// Lock the member's memory: not supported (only `false`).
    #[arg(long, env = "QRAFT_MEMORY_MLOCK", num_args = 0..=1, default_missing_value = "true")]
    pub memory_mlock: Option<String>,
    /// Backend commit interval: fixed (qraft holds its batch up to 10 ms).
    #[arg(long, env = "QRAFT_BACKEND_BATCH_INTERVAL")]
    pub backend_batch_interval: Option<String>,
    /// Backend commit batch size: fixed.
    #[arg(long, env = "QRAFT_BACKEND_BATCH_LIMIT")]
    pub backend_batch_limit: Option<String>,
    /// bbolt's freelist type: not applicable (qraft stores in LMDB).
    #[arg(long, env = "QRAFT_BACKEND_BBOLT_FREELIST_TYPE")]
    pub backend_bbolt_freelist_type: Option<String>,
    /// Defragment at start above this many free megabytes: not supported (only 0).
    #[arg(long, env = "QRAFT_BOOTSTRAP_DEFRAG_THRESHOLD_MEGABYTES")]
    pub bootstrap_defrag_threshold_megabytes: Option<String>,
    /// Compaction hash check period: not supported.
    #[arg(long, env = "QRAFT_COMPACT_HASH_CHECK_TIME")]
    pub compact_hash_check_time: Option<String>,
    /// Keys deleted per compaction batch: not supported.
    #[arg(long, env = "QRAFT_COMPACTION_BATCH_LIMIT")]
    pub compaction_batch_limit: Option<String>,
    /// Pause between compaction batches: not supported.
    #[arg(long, env = "QRAFT_COMPACTION_SLEEP_INTERVAL")]
    pub compaction_sleep_interval: Option<String>,
    /// Periodic corruption check (etcd 3.6's name of --experimental-corrupt-check-time).
    #[arg(long, env = "QRAFT_CORRUPT_CHECK_TIME")]
    pub corrupt_check_time: Option<String>,
    /// Downgrade completion check period: fixed at 5s (etcd's default).
    #[arg(long, env = "QRAFT_DOWNGRADE_CHECK_TIME")]
    pub downgrade_check_time: Option<String>,
    /// Feature gates: not supported (qraft decides features by cluster version).
    #[arg(long, env = "QRAFT_FEATURE_GATES")]
    pub feature_gates: Option<String>,
    /// Peer connection read timeout: fixed (qraft's peers talk QUIC).
    #[arg(long, env = "QRAFT_RAFT_READ_TIMEOUT")]
    pub raft_read_timeout: Option<String>,
    /// Peer connection write timeout: fixed (qraft's peers talk QUIC).
    #[arg(long, env = "QRAFT_RAFT_WRITE_TIMEOUT")]
    pub raft_write_timeout: Option<String>,
    /// Slow-apply warning threshold: not supported.
    #[arg(long, env = "QRAFT_WARNING_APPLY_DURATION")]
    pub warning_apply_duration: Option<String>,
    /// Slow-request warning threshold: not supported.
    #[arg(long, env = "QRAFT_WARNING_UNARY_REQUEST_DURATION")]
    pub warning_unary_request_duration: Option<String>,
    /// Lease checkpoints: qraft always checkpoints (only `true`).
    #[arg(long, env = "QRAFT_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT", num_args = 0..=1, default_missing_value = "true")]
    pub experimental_enable_lease_checkpoint: Option<String>,
    /// Persisted lease checkpoints: qraft always persists them (only `true`).
    #[arg(long, env = "QRAFT_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT_PERSIST", num_args = 0..=1, default_missing_value = "true")]
    pub experimental_enable_lease_checkpoint_persist: Option<String>,
    /// Compaction hash checks: not supported (only `false`).
    #[arg(long, env = "QRAFT_EXPERIMENTAL_COMPACT_HASH_CHECK_ENABLED", num_args = 0..=1, default_missing_value = "true")]
    pub experimental_compact_hash_check_enabled: Option<String>,
    /// Report not serving during defragmentation: not supported (only `false`).
    #[arg(long, env = "QRAFT_EXPERIMENTAL_STOP_GRPC_SERVICE_ON_DEFRAG", num_args = 0..=1, default_missing_value = "true")]
    pub experimental_stop_grpc_service_on_defrag: Option<String>,
    /// bbolt buffer sharing: not applicable (only `true`, etcd's default).
    #[arg(long, env = "QRAFT_EXPERIMENTAL_TXN_MODE_WRITE_WITH_SHARED_BUFFER", num_args = 0..=1, default_missing_value = "true")]
    pub experimental_txn_mode_write_with_shared_buffer: Option<String>,
    /// Lock the member's memory: not supported (only `false`).
    #[arg(long, env = "QRAFT_EXPERIMENTAL_MEMORY_MLOCK", num_args = 0..=1, default_missing_value = "true")]
    pub experimental_memory_mlock: Option<String>,
    /// etcd 3.5's name of --snapshot-catchup-entries.
    #[arg(long, env = "QRAFT_EXPERIMENTAL_SNAPSHOT_CATCHUP_ENTRIES")]
    pub experimental_snapshot_catchup_entries: Option<String>,
}
