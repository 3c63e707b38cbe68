//! Wiring of one member: TLS material, storage, the peer transport, the driver loop and the
//! client listener, then waiting for SIGINT/SIGTERM and stopping them in order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use qraft_core::server::ServerConfig;
use qraft_io::data_dir::{InitialMember, force_new_cluster, is_new_store};
use qraft_io::driver::{self, DriverConfig, NodeInfo};
use qraft_io::jwt::SignedTokens;
use qraft_io::runtime;
use qraft_io::storage::{LmdbStorage, StorageConfig};
use qraft_io::tls::{
    AutoTlsOptions, CertChecks, Identity, PeerTrust, crls_from_file, ensure_auto_tls_with,
    roots_from_pem_file,
};
use qraft_io::transport::{
    ClientListener, ClientListenerConfig, PeerTransportConfig, QuicPeerTransport,
};
use qraft_proto::qraftpb::Attributes;
use rustls::RootCertStore;

use qraft_core::version::{BINARY_VERSION, Version};
use qraft_io::metrics::Metrics;

use crate::config::{
    AuthToken, ClusterState, Config, PeerVerify, Scheme, TlsSettings, TlsSource, Url, member_id,
};
use crate::grpc::{ConnectionPolicy, GrpcLimits, GrpcServer, Serves};
use crate::grpc_core::GrpcCore;
use crate::health::MemberHealth;
use crate::http::{Endpoints, HttpServer};
use crate::join::resolve_identity;
use crate::limits::{ConnectionLimit, ListenerCaps, fd_limit};
use crate::shutdown::ShutdownSignal;

/// Runs the member until a shutdown signal (or a fatal error in the loop).
pub fn run(config: Config, shutdown: ShutdownSignal) -> anyhow::Result<()> {
    runtime::block_on(serve(config, shutdown))
}

async fn serve(config: Config, shutdown: ShutdownSignal) -> anyhow::Result<()> {
    qraft_io::storage::create_private_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;

    let client_hosts = hosts(&config.advertise_client_urls, &config.listen_client_urls);
    let peer_hosts = hosts(
        &config.initial_advertise_peer_urls,
        &config.listen_peer_urls,
    );
    let (client_identity, client_ca) =
        tls_material(&config.client_tls, &client_hosts, true).context("client TLS")?;
    let (peer_identity, peer_ca) =
        tls_material(&config.peer_tls, &peer_hosts, false).context("peer TLS")?;
    let peer_trust = match config.peer_verify {
        PeerVerify::Ca => match peer_ca {
            Some(ca) => PeerTrust::Ca(ca),
            None => bail!(
                "--peer-trusted-ca-file is required with --peer-cert-file (peers verify each other)"
            ),
        },
        PeerVerify::AnyCertificate(reason) => {
            tracing::warn!(
                "peers are not verified: any peer certificate is accepted because {reason}; \
                 peer traffic is still encrypted (QUIC always runs TLS)"
            );
            PeerTrust::AnyCertificate
        }
    };
    let client_ca = if config.client_tls.client_cert_auth {
        Some(client_ca.context("--client-cert-auth needs a trusted CA")?)
    } else {
        None
    };
    let client_checks = cert_checks(&config.client_tls).context("--client-crl-file")?;
    let peer_checks = cert_checks(&config.peer_tls).context("--peer-crl-file")?;

    let storage = LmdbStorage::open(
        StorageConfig::new(&config.data_dir).with_quota_bytes(config.quota_backend_bytes),
    )
    .with_context(|| format!("opening storage in {}", config.data_dir.display()))?;
    for loose in qraft_io::storage::loose_permissions(&config.data_dir) {
        tracing::warn!(
            path = %loose.path.display(),
            permission = format_args!("{:o}", loose.mode),
            recommended = format_args!("{:o}", loose.recommended),
            "data is accessible to other users; the recommended permission prevents unprivileged access to it"
        );
    }
    let initial: Vec<InitialMember> = config
        .initial_cluster
        .iter()
        .map(|m| InitialMember {
            id: member_id(&m.peer_urls, &config.initial_cluster_token),
            name: m.name.clone(),
            peer_urls: m.peer_urls.iter().map(Url::to_string).collect(),
            client_urls: if m.name == config.name {
                config
                    .advertise_client_urls
                    .iter()
                    .map(Url::to_string)
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    let new_cluster = config.initial_cluster_state == ClusterState::New;
    let existing_store = !is_new_store(&storage)?;
    let identity = resolve_identity(
        &config,
        &storage,
        &initial,
        new_cluster,
        &peer_identity,
        &peer_trust,
    )
    .await?;
    let (me, cluster_id) = (identity.member_id, identity.cluster_id);
    if config.force_new_cluster && existing_store {
        let forced = force_new_cluster(&storage, me).context("--force-new-cluster")?;
        tracing::warn!(
            removed = ?forced.removed.iter().map(|id| format!("{id:x}")).collect::<Vec<_>>(),
            commit = forced.commit,
            "--force-new-cluster: continuing as the only member of the cluster; remove the flag for later restarts"
        );
    }
    // One set of metrics for the whole member: recorded by the transport, the loop and the
    // client listeners, rendered by the metrics listener.
    let metrics = Arc::new(Metrics::new());

    // What this member runs as; the state machine checks it against the data and the cluster.
    let server_version = config.emulated_version.unwrap_or(BINARY_VERSION);
    let peer_listen = config.listen_peer_urls[0].bind_addr()?;
    let mut peer_config =
        PeerTransportConfig::new(peer_listen, peer_identity, peer_trust, cluster_id, me);
    peer_config.peer_checks = peer_checks;
    peer_config.server_version = server_version.to_string();
    peer_config.heartbeat_interval = Duration::from_millis(config.heartbeat_interval_ms);
    peer_config.metrics = metrics.clone();
    let (transport, peer_events) =
        QuicPeerTransport::start(peer_config).context("starting the peer listener")?;

    let mut server = ServerConfig::new(me, cluster_id);
    server.tick_ms = config.heartbeat_interval_ms;
    server.election_ticks = config.election_ticks() as usize;
    server.max_request_bytes = config.max_request_bytes as usize;
    server.max_txn_ops = config.max_txn_ops;
    server.auto_compaction = config.auto_compaction;
    server.strict_reconfig_check = config.strict_reconfig_check;
    server.snapshot_count = config.snapshot_count;
    server.emulated_version = config.emulated_version;
    server.snapshot_catch_up_entries = config.snapshot_catchup_entries;
    server.initial_corrupt_check = config.initial_corrupt_check;
    server.watch_progress_notify_ms = config.watch_progress_notify_ms;
    server.corrupt_check_ticks = config
        .corrupt_check_ms
        .div_ceil(config.heartbeat_interval_ms.max(1));
    server.member_attrs = Some(Attributes {
        name: config.name.clone(),
        client_urls: config
            .advertise_client_urls
            .iter()
            .map(Url::to_string)
            .collect(),
    });
    // Signed tokens: the key is read now, so a bad one stops the member at start (as etcd).
    let signed_tokens = match &config.auth_token {
        AuthToken::Simple => None,
        AuthToken::Jwt(options) => Some(Arc::new(
            SignedTokens::load(options).context("--auth-token")?,
        )),
    };
    server.auth.signed_tokens = signed_tokens.is_some();
    let mut driver_config = DriverConfig::new(server);
    driver_config.signed_tokens = signed_tokens;
    driver_config.metrics = metrics.clone();
    // Every member's peers come from its stored member list (bootstrapped or joined).
    let driver = driver::start(
        driver_config,
        storage,
        transport.clone(),
        peer_events,
        Vec::new(),
    )?;
    let handle = driver.handle.clone();

    // Connection caps well below the descriptor limit, so that clients can never take the
    // descriptors the journal and LMDB need.
    let caps = ListenerCaps::for_fd_limit(fd_limit().unwrap_or(1 << 20));
    tracing::info!(
        grpc = caps.grpc,
        metrics = caps.http,
        "connection caps (from the file descriptor limit)"
    );

    // The probes serve from the start (a member waiting for quorum is live, not ready)...
    let health = Arc::new(MemberHealth {
        handle: handle.clone(),
        server_version,
    });
    let mut http = Vec::new();
    for url in &config.listen_metrics_urls {
        let server = HttpServer::start_with_limit(
            url.bind_addr()?,
            health.clone(),
            metrics.clone(),
            caps.http,
        )
        .await
        .with_context(|| format!("starting the metrics listener on {url}"))?;
        http.push(server);
    }
    // ...clients only once this member's own record (name, client URLs) is applied, as etcd
    // serves them only after publishing: a client never reads a member list without them.
    while !handle.info().published {
        if shutdown.is_requested() || handle.info().stopped {
            break;
        }
        runtime::sleep(Duration::from_millis(20)).await;
    }
    if handle.info().published {
        // etcd's milestone line, which operators and tools (etcd's e2e suite) wait for.
        tracing::info!(
            local_member_id = format_args!("{me:x}"),
            local_member_attributes = format_args!(
                "{{Name:{} ClientURLs:[{}]}}",
                config.name,
                config
                    .advertise_client_urls
                    .iter()
                    .map(Url::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            cluster_id = format_args!("{cluster_id:x}"),
            "published local member to cluster through raft"
        );
    }

    let mut listeners = Vec::new();
    for url in &config.listen_client_urls {
        if url.scheme == Scheme::Http {
            tracing::warn!(
                %url,
                "serving plaintext gRPC only on this client URL: qraft's QUIC protocol always runs TLS (use https:// to serve both)"
            );
            continue;
        }
        let mut listener_config =
            ClientListenerConfig::new(url.bind_addr()?, client_identity.clone(), client_ca.clone());
        listener_config.max_request_bytes = config.max_request_bytes as usize;
        listener_config.client_checks = client_checks.clone();
        listener_config.metrics = metrics.clone();
        let listener = ClientListener::start(listener_config, Arc::new(handle.clone()))
            .with_context(|| format!("starting the client listener on {url}"))?;
        listeners.push(listener);
    }
    let grpc = {
        let tls = Arc::new(qraft_io::tls::tcp_client_listener_config(
            &client_identity,
            client_ca.as_ref(),
            &client_checks,
            &config.tcp_tls,
        )?);
        tracing::info!(
            min = ?config.tcp_tls.min,
            max = ?config.tcp_tls.max,
            "TLS of the gRPC/HTTP client listener; QUIC (peers, QUIC clients) always runs TLS 1.3 with its fixed cipher suites, whatever --tls-min-version, --tls-max-version and --cipher-suites say"
        );
        let server = GrpcServer::bind_serving(
            &client_tcp_urls(&config),
            Some(tls),
            Arc::new(GrpcCore {
                handle: handle.clone(),
            }),
            GrpcLimits::for_max_request_bytes(config.max_request_bytes),
        )
        .await?
        .with_metrics(metrics.clone())
        .with_policy(ConnectionPolicy {
            limit: ConnectionLimit::new(caps.grpc),
            handshake_timeout: crate::grpc::HANDSHAKE_TIMEOUT,
            keepalive: config.grpc_keepalive,
            max_concurrent_streams: config.max_concurrent_streams,
        })
        // HTTP/1.1 on the client URLs: the probes as on --listen-metrics-urls (etcd serves
        // them on both), beside the JSON gateway.
        .with_http(Arc::new(Endpoints::new(health.clone(), metrics.clone())))
        .with_gateway(config.enable_grpc_gateway);
        runtime::spawn(server.run())
    };
    tracing::info!(
        name = %config.name,
        member_id = format_args!("{me:x}"),
        cluster_id = format_args!("{cluster_id:x}"),
        clients = %crate::config::join_list(&config.listen_client_urls),
        peers = %crate::config::join_list(&config.listen_peer_urls),
        "serving"
    );
    tracing::info!("ready to serve client requests");

    let mut capabilities = None;
    while !shutdown.is_requested() && !handle.info().stopped {
        log_capabilities(&handle.info(), &mut capabilities);
        runtime::sleep(Duration::from_millis(100)).await;
    }
    let fatal = handle.info().fatal_error;
    tracing::info!("shutting down");
    for listener in &listeners {
        listener.shutdown().await;
    }
    for server in http {
        server.shutdown().await;
    }
    grpc.cancel().await;
    handle.shutdown().await;
    let result = driver.task.join().await;
    transport.shutdown().await;
    if let Some(err) = fatal {
        bail!("member stopped: {err}");
    }
    result?;
    tracing::info!("stopped");
    Ok(())
}

/// etcd's milestone line for each cluster version this member learns (at start, and after an
/// upgrade or a downgrade): the features of that version are the ones enabled.
fn log_capabilities(info: &NodeInfo, logged: &mut Option<Version>) {
    let cluster = info.versions.as_ref().and_then(|v| v.cluster);
    if let Some(version) = cluster
        && *logged != cluster
    {
        *logged = cluster;
        tracing::info!(
            cluster_version = format_args!("{}.{}", version.major, version.minor),
            "enabled capabilities for version"
        );
    }
}

/// The client TCP listeners: every client URL (TCP beside the QUIC listener's UDP on the same
/// port, as etcd serves its clients there) and every extra `--listen-grpc-urls` entry serve
/// etcd's gRPC API (and HTTP/1.1 unless `--listen-client-http-urls` takes it); a URL given
/// twice is bound once.
fn client_tcp_urls(config: &Config) -> Vec<(Url, Serves)> {
    // etcd's split: with --listen-client-http-urls the client URLs serve gRPC only.
    let client = if config.listen_client_http_urls.is_empty() {
        Serves::Both
    } else {
        Serves::Grpc
    };
    let mut urls: Vec<(Url, Serves)> = Vec::new();
    let listed = (config.listen_client_urls.iter())
        .chain(&config.listen_grpc_urls)
        .map(|u| (u, client))
        .chain(
            config
                .listen_client_http_urls
                .iter()
                .map(|u| (u, Serves::Http)),
        );
    for (url, serves) in listed {
        let bound = |(u, _): &(Url, Serves)| u.bind_addr().ok() == url.bind_addr().ok();
        if !urls.iter().any(bound) {
            urls.push((url.clone(), serves));
        }
    }
    urls
}

/// Host names and IPs the member's certificate must carry.
fn hosts(advertised: &[Url], listen: &[Url]) -> Vec<String> {
    let mut out: Vec<String> = advertised
        .iter()
        .chain(listen)
        .map(|u| u.host_name().to_string())
        .filter(|h| h != "0.0.0.0" && h != "::")
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The revocation list and allowed names a listener checks the other side's certificate with.
fn cert_checks(settings: &TlsSettings) -> anyhow::Result<CertChecks> {
    Ok(CertChecks {
        crls: match &settings.crl_file {
            Some(path) => crls_from_file(path)?,
            None => Vec::new(),
        },
        allowed_cn: settings.allowed_cn.clone(),
        allowed_hostname: settings.allowed_hostname.clone(),
    })
}

/// The certificate to present and the CA to verify the other side with. `client_cert`: auto-TLS
/// also issues a client certificate (the client fixtures; never the peer ones).
fn tls_material(
    settings: &TlsSettings,
    hosts: &[String],
    client_cert: bool,
) -> anyhow::Result<(Identity, Option<RootCertStore>)> {
    match &settings.source {
        TlsSource::Auto {
            dir,
            validity_years,
        } => {
            let options = AutoTlsOptions {
                validity_years: *validity_years,
                client_cert,
            };
            let (paths, generated) = ensure_auto_tls_with(dir, hosts, &options)?;
            if generated.generated_ca || generated.generated_leaves {
                tracing::info!(dir = %dir.display(), "generated auto-TLS certificates");
            }
            Ok((
                Identity::from_pem_files(&paths.cert, &paths.key)?,
                Some(roots_from_pem_file(&paths.ca_cert)?),
            ))
        }
        TlsSource::Files {
            cert,
            key,
            trusted_ca,
        } => Ok((
            Identity::from_pem_files(cert, key)?,
            trusted_ca.as_deref().map(roots_from_pem_file).transpose()?,
        )),
    }
}
