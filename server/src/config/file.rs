//! `--config-file`: etcd's YAML configuration format (top-level keys named like the flags,
//! TLS settings under `client-transport-security` / `peer-transport-security`). Unknown keys are
//! errors so that a typo does not silently fall back to a default. Every flag etcd 3.6 reads
//! from its file has its key here, under etcd's name (`configJSON`'s `json` tags), so that a
//! flag qraft refuses is refused with its reason, not as an unknown key; values of any YAML
//! shape etcd writes are taken as the flag's text (`file_values`).

use super::file_values::{List, Nanos, Scalar};
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
    experimental_corrupt_check_time: Option<Nanos>,
    corrupt_check_time: Option<Nanos>,
    watch_progress_notify_interval: Option<Nanos>,
    experimental_watch_progress_notify_interval: Option<Nanos>,
    force_new_cluster: Option<bool>,
    // Flags implemented since the file was first read (issue 17).
    max_txn_ops: Option<Scalar>,
    auto_compaction_mode: Option<Scalar>,
    auto_compaction_retention: Option<Scalar>,
    strict_reconfig_check: Option<Scalar>,
    max_concurrent_streams: Option<Scalar>,
    auth_token: Option<Scalar>,
    grpc_keepalive_min_time: Option<Nanos>,
    grpc_keepalive_interval: Option<Nanos>,
    grpc_keepalive_timeout: Option<Nanos>,
    logger: Option<Scalar>,
    log_outputs: Option<List>,
    log_format: Option<Scalar>,
    cipher_suites: Option<List>,
    tls_min_version: Option<Scalar>,
    tls_max_version: Option<Scalar>,
    // Flags with a fixed behaviour in qraft: read, then accepted or refused as on the command
    // line (`unsupported::check`).
    auth_token_ttl: Option<Scalar>,
    bcrypt_cost: Option<Scalar>,
    max_learners: Option<Scalar>,
    pre_vote: Option<Scalar>,
    initial_election_tick_advance: Option<Scalar>,
    wal_dir: Option<Scalar>,
    max_snapshots: Option<Scalar>,
    max_wals: Option<Scalar>,
    unsafe_no_fsync: Option<Scalar>,
    discovery_srv: Option<Scalar>,
    discovery_srv_name: Option<Scalar>,
    cors: Option<Scalar>,
    host_whitelist: Option<Scalar>,
    enable_pprof: Option<Scalar>,
    metrics: Option<Scalar>,
    enable_log_rotation: Option<Scalar>,
    log_rotation_config_json: Option<Scalar>,
    enable_distributed_tracing: Option<Scalar>,
    distributed_tracing_address: Option<Scalar>,
    distributed_tracing_service_name: Option<Scalar>,
    distributed_tracing_instance_id: Option<Scalar>,
    distributed_tracing_sampling_rate: Option<Scalar>,
    memory_mlock: Option<Scalar>,
    backend_batch_interval: Option<Nanos>,
    backend_batch_limit: Option<Scalar>,
    backend_bbolt_freelist_type: Option<Scalar>,
    bootstrap_defrag_threshold_megabytes: Option<Scalar>,
    compact_hash_check_time: Option<Nanos>,
    compaction_batch_limit: Option<Scalar>,
    compaction_sleep_interval: Option<Nanos>,
    downgrade_check_time: Option<Nanos>,
    feature_gates: Option<Scalar>,
    warning_apply_duration: Option<Nanos>,
    warning_unary_request_duration: Option<Nanos>,
    discovery: Option<Scalar>,
    discovery_proxy: Option<Scalar>,
    v2_deprecation: Option<Scalar>,
    experimental_compact_hash_check_enabled: Option<Scalar>,
    experimental_enable_lease_checkpoint: Option<Scalar>,
    experimental_enable_lease_checkpoint_persist: Option<Scalar>,
    experimental_memory_mlock: Option<Scalar>,
    experimental_stop_grpc_service_on_defrag: Option<Scalar>,
    experimental_txn_mode_write_with_shared_buffer: Option<Scalar>,
    /// etcd 3.5's file key for `--experimental-snapshot-catchup-entries`.
    experimental_snapshot_catch_up_entries: Option<Scalar>,
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
        self_signed_cert_validity: f.self_signed_cert_validity,
        log_level: f.log_level,
        emulated_version: f.emulated_version,
        experimental_initial_corrupt_check: f.experimental_initial_corrupt_check,
        experimental_corrupt_check_time: f.experimental_corrupt_check_time.map(|v| v.0),
        corrupt_check_time: f.corrupt_check_time.map(|v| v.0),
        watch_progress_notify_interval: f.watch_progress_notify_interval.map(|v| v.0),
        experimental_watch_progress_notify_interval: (f
            .experimental_watch_progress_notify_interval)
            .map(|v| v.0),
        force_new_cluster: f.force_new_cluster,
        max_txn_ops: f.max_txn_ops.map(|v| v.0),
        auto_compaction_mode: f.auto_compaction_mode.map(|v| v.0),
        auto_compaction_retention: f.auto_compaction_retention.map(|v| v.0),
        strict_reconfig_check: f.strict_reconfig_check.map(|v| v.0),
        max_concurrent_streams: f.max_concurrent_streams.map(|v| v.0),
        auth_token: f.auth_token.map(|v| v.0),
        grpc_keepalive_min_time: f.grpc_keepalive_min_time.map(|v| v.0),
        grpc_keepalive_interval: f.grpc_keepalive_interval.map(|v| v.0),
        grpc_keepalive_timeout: f.grpc_keepalive_timeout.map(|v| v.0),
        logger: f.logger.map(|v| v.0),
        log_outputs: f.log_outputs.map(|v| v.0),
        log_format: f.log_format.map(|v| v.0),
        cipher_suites: f.cipher_suites.map(|v| v.0),
        tls_min_version: f.tls_min_version.map(|v| v.0),
        tls_max_version: f.tls_max_version.map(|v| v.0),
        auth_token_ttl: f.auth_token_ttl.map(|v| v.0),
        bcrypt_cost: f.bcrypt_cost.map(|v| v.0),
        max_learners: f.max_learners.map(|v| v.0),
        pre_vote: f.pre_vote.map(|v| v.0),
        initial_election_tick_advance: f.initial_election_tick_advance.map(|v| v.0),
        wal_dir: f.wal_dir.map(|v| v.0),
        max_snapshots: f.max_snapshots.map(|v| v.0),
        max_wals: f.max_wals.map(|v| v.0),
        unsafe_no_fsync: f.unsafe_no_fsync.map(|v| v.0),
        discovery_srv: f.discovery_srv.map(|v| v.0),
        discovery_srv_name: f.discovery_srv_name.map(|v| v.0),
        cors: f.cors.map(|v| v.0),
        host_whitelist: f.host_whitelist.map(|v| v.0),
        enable_pprof: f.enable_pprof.map(|v| v.0),
        metrics: f.metrics.map(|v| v.0),
        enable_log_rotation: f.enable_log_rotation.map(|v| v.0),
        log_rotation_config_json: f.log_rotation_config_json.map(|v| v.0),
        enable_distributed_tracing: f.enable_distributed_tracing.map(|v| v.0),
        distributed_tracing_address: f.distributed_tracing_address.map(|v| v.0),
        distributed_tracing_service_name: f.distributed_tracing_service_name.map(|v| v.0),
        distributed_tracing_instance_id: f.distributed_tracing_instance_id.map(|v| v.0),
        distributed_tracing_sampling_rate: f.distributed_tracing_sampling_rate.map(|v| v.0),
        memory_mlock: f.memory_mlock.map(|v| v.0),
        backend_batch_interval: f.backend_batch_interval.map(|v| v.0),
        backend_batch_limit: f.backend_batch_limit.map(|v| v.0),
        backend_bbolt_freelist_type: f.backend_bbolt_freelist_type.map(|v| v.0),
        bootstrap_defrag_threshold_megabytes: (f.bootstrap_defrag_threshold_megabytes).map(|v| v.0),
        compact_hash_check_time: f.compact_hash_check_time.map(|v| v.0),
        compaction_batch_limit: f.compaction_batch_limit.map(|v| v.0),
        compaction_sleep_interval: f.compaction_sleep_interval.map(|v| v.0),
        downgrade_check_time: f.downgrade_check_time.map(|v| v.0),
        feature_gates: f.feature_gates.map(|v| v.0),
        warning_apply_duration: f.warning_apply_duration.map(|v| v.0),
        warning_unary_request_duration: f.warning_unary_request_duration.map(|v| v.0),
        discovery: f.discovery.map(|v| v.0),
        discovery_proxy: f.discovery_proxy.map(|v| v.0),
        v2_deprecation: f.v2_deprecation.map(|v| v.0),
        experimental_compact_hash_check_enabled: (f.experimental_compact_hash_check_enabled)
            .map(|v| v.0),
        experimental_enable_lease_checkpoint: f.experimental_enable_lease_checkpoint.map(|v| v.0),
        experimental_enable_lease_checkpoint_persist: (f
            .experimental_enable_lease_checkpoint_persist)
            .map(|v| v.0),
        experimental_memory_mlock: f.experimental_memory_mlock.map(|v| v.0),
        experimental_stop_grpc_service_on_defrag: (f.experimental_stop_grpc_service_on_defrag)
            .map(|v| v.0),
        experimental_txn_mode_write_with_shared_buffer: (f
            .experimental_txn_mode_write_with_shared_buffer)
            .map(|v| v.0),
        experimental_snapshot_catchup_entries: (f.experimental_snapshot_catch_up_entries)
            .map(|v| v.0),
        ..Flags::default()
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory;
    use qraft_core::server::AutoCompaction;

    use super::super::Config;
    use super::*;

    fn resolved(yaml: &str) -> Result<Config, String> {
        let flags = parse(yaml).map_err(|e| e.to_string())?;
        Config::resolve(flags).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_of_the_flags_implemented_since_the_file_was_first_read() {
        let c = resolved(
            "max-txn-ops: 5\n\
             auto-compaction-mode: revision\n\
             auto-compaction-retention: 1000\n\
             max-concurrent-streams: 7\n\
             grpc-keepalive-min-time: 1000000000\n\
             grpc-keepalive-interval: 1500ms\n\
             log-outputs: [stdout]\n\
             logger: zap\n",
        )
        .unwrap();
        assert_eq!(c.max_txn_ops, 5);
        assert_eq!(
            c.auto_compaction,
            Some(AutoCompaction::Revision { retention: 1000 })
        );
        assert_eq!(c.max_concurrent_streams, 7);
        assert_eq!(c.grpc_keepalive.min_time, Duration::from_secs(1));
        assert_eq!(c.grpc_keepalive.interval, Some(Duration::from_millis(1500)));
        assert_eq!(c.log_output, crate::logging::LogOutput::Stdout);
        let c = resolved("auto-compaction-retention: \"30m\"\n").unwrap();
        assert_eq!(
            c.auto_compaction,
            Some(AutoCompaction::Periodic {
                retention_ms: 1_800_000
            })
        );
        assert!(resolved("auto-compaction-mode: daily\n").is_err());
        // A fixed-behaviour flag is refused with its reason, not as an unknown key.
        let err = resolved("pre-vote: false\n").unwrap_err();
        assert!(err.contains("always pre-votes"), "{err}");
        let err = resolved("grpc-keepalive-timeout: 1500\n").unwrap_err();
        assert!(err.contains("whole milliseconds"), "{err}");
    }

    /// The top-level keys of etcd 3.6's configuration file (`configJSON`'s `json` tags in
    /// `server/embed/config.go`, v3.6.14) but the nested ones qraft does not read.
    const ETCD_KEYS: &str = "\
        advertise-client-urls auth-token auth-token-ttl auto-compaction-mode \
        auto-compaction-retention backend-batch-interval backend-batch-limit \
        backend-bbolt-freelist-type bcrypt-cost bootstrap-defrag-threshold-megabytes \
        cipher-suites client-transport-security compact-hash-check-time compaction-batch-limit \
        compaction-sleep-interval corrupt-check-time cors data-dir discovery discovery-proxy \
        discovery-srv discovery-srv-name distributed-tracing-address \
        distributed-tracing-instance-id distributed-tracing-sampling-rate \
        distributed-tracing-service-name downgrade-check-time election-timeout \
        enable-distributed-tracing enable-grpc-gateway enable-log-rotation enable-pprof \
        experimental-compact-hash-check-enabled experimental-corrupt-check-time \
        experimental-enable-lease-checkpoint experimental-enable-lease-checkpoint-persist \
        experimental-initial-corrupt-check experimental-memory-mlock \
        experimental-stop-grpc-service-on-defrag experimental-txn-mode-write-with-shared-buffer \
        experimental-watch-progress-notify-interval feature-gates force-new-cluster \
        grpc-keepalive-interval grpc-keepalive-min-time grpc-keepalive-timeout \
        heartbeat-interval host-whitelist initial-advertise-peer-urls initial-cluster \
        initial-cluster-state initial-cluster-token initial-election-tick-advance \
        listen-client-http-urls listen-client-urls listen-metrics-urls listen-peer-urls \
        log-format log-level log-outputs log-rotation-config-json logger max-concurrent-streams \
        max-learners max-request-bytes max-snapshots max-txn-ops max-wals memory-mlock metrics \
        name peer-transport-security pre-vote quota-backend-bytes self-signed-cert-validity \
        snapshot-catchup-entries snapshot-count strict-reconfig-check tls-max-version \
        tls-min-version unsafe-no-fsync v2-deprecation wal-dir warning-apply-duration \
        warning-unary-request-duration watch-progress-notify-interval";

    /// Every key of etcd's file that names a flag qraft defines is read from the file (a
    /// wrong value may be refused, but never as an unknown key).
    #[test]
    fn every_etcd_key_of_a_defined_flag_is_read() {
        let defined: Vec<String> = (Flags::command().get_arguments())
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        let nested = ["client-transport-security", "peer-transport-security"];
        for key in ETCD_KEYS.split_whitespace() {
            if !nested.contains(&key) && !defined.iter().any(|d| d == key) {
                continue;
            }
            if let Err(e) = parse(&format!("{key}: x\n")) {
                let e = e.to_string();
                assert!(!e.contains("unknown field"), "{key}: {e}");
            }
        }
    }
}
