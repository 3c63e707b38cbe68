//! The peer transport: raft messages between members over QUIC with mutual TLS.
//!
//! Each member runs one QUIC endpoint that both accepts (peers dial us) and dials (we dial
//! peers); the dialing side carries the traffic of its direction, so every ordered pair of
//! members has its own connection, like etcd's per-direction streams. Messages to one peer are
//! pipelined on a single long-lived unidirectional stream, several frames per write; a
//! snapshot (`MsgSnap`) has a stream of its own, its data streamed from and into LMDB
//! (`peer_snapshot`), so it never delays heartbeats and never sits in memory whole. Every
//! stream starts with a `PeerHello` naming the cluster and the sender; a hello for another
//! cluster closes the connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use qraft_proto::qraftpb::{MembersResponse, PeerRequest, PeerResponse};
use qraft_proto::raftpb::{Message, MessageType};

use super::members::Directory;
use super::peer_request::{PeerRequestHandler, exchange};
use super::peer_send::{Dialer, run_link, sample_round_trips};
use super::{PEER_FRAME_LIMIT, QuicSettings, TransportError, codes};
use crate::metrics::{HeartbeatClock, Metrics};
use crate::runtime::{self, Task};
use crate::storage::LmdbStorage;
use crate::tls::{self, Identity};

/// What the transport hands to the driver.
// Messages dominate the traffic; boxing them would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PeerEvent {
    /// A raft message from a peer. A `MsgSnap` arrives once its data was streamed into a fresh
    /// environment ([`LmdbStorage::receive_snapshot`]); the message itself has metadata only.
    Message(Message),
    /// A message to `to` could not be delivered (no connection, queue full): raft should treat
    /// the peer as unreachable (etcd's `ReportUnreachable`).
    Unreachable { to: u64 },
    /// A snapshot stream to `to` ended; `ok` when the peer received all of it
    /// (etcd's `ReportSnapshot`).
    SnapshotStatus { to: u64, ok: bool },
    /// A peer refused this member because it was removed from the cluster: the member must
    /// stop (etcd: "the member has been permanently removed from the cluster").
    Removed { by: u64 },
    /// The connection to `peer` came up or went down (etcd's `ActiveSince`): the driver
    /// stamps it with its clock for the strict reconfiguration check.
    Link { peer: u64, up: bool },
}

/// Where a peer listens, and the name its certificate must carry (host of its peer URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    pub addr: SocketAddr,
    pub server_name: String,
}

impl PeerAddr {
    /// Resolves an advertise URL such as `https://10.0.0.2:2380`.
    pub async fn from_url(url: &str) -> Result<Self, TransportError> {
        let (addr, server_name) = super::resolve_url(url).await?;
        Ok(Self { addr, server_name })
    }
}

/// The replaceable interface the driver uses to talk to other members. Incoming messages are
/// delivered on the event stream returned when the transport starts.
pub trait PeerTransport: Send + Sync {
    /// Queues messages for their `to` member without blocking. Messages for unknown members or
    /// beyond a full queue are dropped and reported as [`PeerEvent::Unreachable`]; raft
    /// retransmits what matters.
    fn send(&self, msgs: Vec<Message>);
    /// Adds a member, or changes its address.
    fn add_peer(&self, id: u64, addr: PeerAddr);
    /// Forgets a member and closes its connection.
    fn remove_peer(&self, id: u64);
    /// Sets the cluster id checked against peers' hellos (0 = not known yet: accept any).
    fn set_cluster_id(&self, cluster_id: u64);
    /// The applied configuration, to answer joining members' members requests with, and the
    /// members removed from it, whose connections are refused.
    fn publish_members(&self, _members: MembersResponse, _removed: Vec<u64>) {}
    /// Sends `request` to member `to` and waits at most `timeout` for its answer (`None`: the
    /// member finished without answering, e.g. it has no handler for it yet).
    fn ask(
        &self,
        to: u64,
        _request: PeerRequest,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<Option<PeerResponse>, TransportError>> {
        futures::future::ready(Err(TransportError::UnknownPeer(to))).boxed()
    }
    /// Who answers the requests other members ask this one (see [`PeerRequestHandler`]).
    fn serve_requests(&self, _handler: Arc<dyn PeerRequestHandler>) {}
    /// The storage snapshots are streamed from (`MsgSnap` carries metadata only) and received
    /// into; until it is set, snapshots are neither sent nor accepted.
    fn serve_snapshots(&self, _storage: LmdbStorage) {}
}

/// How long a peer connection may stay silent (keep-alives every eighth of it) before it is
/// abandoned and redialed.
///
/// Short on purpose. When a partition drops every packet, an established QUIC connection
/// keeps what raft wrote into its stream (appends, heartbeats, votes: all in order) and backs
/// its loss probes off exponentially, without a useful cap; after the partition heals nothing
/// moves until the next probe, and then the whole backlog drains before the first current
/// message. With the former 10 s, a healed member heard its leader up to 10+ s late, and two
/// members whose connections to each other had stalled could not finish a pre-vote round while
/// the leader was cut off (issue 20). A connection silent for this long is given up: the
/// backlog goes with it (raft retransmits what matters), and the next message dials afresh,
/// each attempt bounded by the dial timeout, so a heal is noticed within about
/// `dial_timeout + backoff_max` of it.
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings of [`QuicPeerTransport`]; [`PeerTransportConfig::new`] fills in defaults.
#[derive(Debug, Clone)]
pub struct PeerTransportConfig {
    pub listen: SocketAddr,
    pub identity: Identity,
    /// Which peer certificates are accepted (the peer CA's, or any with `--peer-auto-tls`).
    pub peer_trust: tls::PeerTrust,
    /// `--peer-crl-file`, `--peer-cert-allowed-cn`, `--peer-cert-allowed-hostname`: checked on
    /// both sides of every peer handshake.
    pub peer_checks: tls::CertChecks,
    pub cluster_id: u64,
    pub member_id: u64,
    pub server_version: String,
    pub quic: QuicSettings,
    pub max_frame: usize,
    /// Bytes of snapshot stream per chunk (see `peer_snapshot`).
    pub snapshot_chunk: usize,
    /// Messages buffered per peer while its connection is slow or down.
    pub queue_len: usize,
    /// Frames gathered into one write at most this large.
    pub batch_bytes: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub dial_timeout: Duration,
    pub events_capacity: usize,
    /// The raft heartbeat interval: a leader's heartbeat to a peer more than twice this after
    /// the previous one counts as a heartbeat send failure.
    pub heartbeat_interval: Duration,
    /// How often the round-trip time of each peer connection is sampled.
    pub rtt_sample_interval: Duration,
    /// Where peer traffic is recorded.
    pub metrics: Arc<Metrics>,
}

impl PeerTransportConfig {
    pub fn new(
        listen: SocketAddr,
        identity: Identity,
        peer_trust: impl Into<tls::PeerTrust>,
        cluster_id: u64,
        member_id: u64,
    ) -> Self {
        Self {
            listen,
            identity,
            peer_trust: peer_trust.into(),
            peer_checks: tls::CertChecks::default(),
            cluster_id,
            member_id,
            server_version: String::new(),
            quic: QuicSettings {
                idle_timeout: PEER_IDLE_TIMEOUT,
                keep_alive: PEER_IDLE_TIMEOUT / 8,
                // Members sit on one network; a lost dial packet is resent after 300 ms.
                initial_rtt: Duration::from_millis(100),
                // A snapshot stream of 1 MiB chunks keeps several chunks in flight (with
                // quinn's 1.25 MB it waited for the receiver's credit after each one, ~100 MB/s
                // on a loaded 2-core machine); members' paths are often loopback, virtual or
                // jumbo-frame links that carry far more than 1452 bytes per datagram.
                stream_window: 8 << 20,
                mtu_upper_bound: 65_527,
                ..QuicSettings::default()
            },
            max_frame: PEER_FRAME_LIMIT,
            snapshot_chunk: 1024 * 1024,
            queue_len: 4096,
            batch_bytes: 256 * 1024,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
            dial_timeout: Duration::from_secs(1),
            events_capacity: 4096,
            heartbeat_interval: Duration::from_millis(100),
            rtt_sample_interval: Duration::from_secs(1),
            metrics: Arc::new(Metrics::new()),
        }
    }
}

/// State shared by the accept loop, the per-peer writers and the snapshot senders.
pub(super) struct Shared {
    pub endpoint: quinn::Endpoint,
    pub cluster_id: AtomicU64,
    pub member_id: u64,
    pub server_version: String,
    pub events: mpsc::Sender<PeerEvent>,
    /// One long-lived sender for advisory reports, so `try_send` honours the channel bound
    /// (a fresh clone per report would always find its own guaranteed slot free).
    reports: Mutex<mpsc::Sender<PeerEvent>>,
    pub config: PeerTransportConfig,
    pub directory: Mutex<Directory>,
    pub request_handler: Mutex<Option<Arc<dyn PeerRequestHandler>>>,
    /// Where snapshots are streamed from and received into (see `peer_snapshot`).
    pub snapshots: Mutex<Option<LmdbStorage>>,
}

impl Shared {
    pub fn hello(&self) -> qraft_proto::qraftpb::PeerHello {
        qraft_proto::qraftpb::PeerHello {
            cluster_id: self.cluster_id.load(Ordering::Relaxed),
            member_id: self.member_id,
            server_version: self.server_version.clone(),
        }
    }

    pub fn report(&self, event: PeerEvent) {
        // Advisory: when the driver is behind, dropping an unreachable report is harmless.
        let _ = lock(&self.reports).try_send(event);
    }
}

struct Link {
    queue: mpsc::Sender<Message>,
    dialer: Arc<Dialer>,
    task: Task<()>,
    /// Samples the connection's round-trip time; ends by itself once the dialer is gone.
    rtt_task: Task<()>,
    /// Keeps the connection up and reports it (`peer_keeper`); ends once the peer is retired.
    keeper_task: Task<()>,
    heartbeats: HeartbeatClock,
}

/// The quinn implementation of [`PeerTransport`].
pub struct QuicPeerTransport {
    shared: Arc<Shared>,
    links: Mutex<HashMap<u64, Link>>,
    accept_task: Mutex<Option<Task<()>>>,
}

impl QuicPeerTransport {
    /// Binds the peer listener and starts accepting. Returns the transport and the stream of
    /// incoming events for the driver.
    pub fn start(
        config: PeerTransportConfig,
    ) -> Result<(Arc<Self>, mpsc::Receiver<PeerEvent>), TransportError> {
        let server_tls =
            tls::peer_server_config(&config.identity, &config.peer_trust, &config.peer_checks)?;
        let client_tls =
            tls::peer_client_config(&config.identity, &config.peer_trust, &config.peer_checks)?;
        let endpoint = super::bind_restartable(
            config.listen,
            &config.identity,
            "peer",
            super::server_config(server_tls, &config.quic)?,
            Some(super::client_config(client_tls, &config.quic)?),
        )?;
        let (events, events_rx) = mpsc::channel(config.events_capacity);
        let shared = Arc::new(Shared {
            endpoint,
            cluster_id: AtomicU64::new(config.cluster_id),
            member_id: config.member_id,
            server_version: config.server_version.clone(),
            reports: Mutex::new(events.clone()),
            events,
            config,
            directory: Mutex::new(Directory::default()),
            request_handler: Mutex::new(None),
            snapshots: Mutex::new(None),
        });
        let accept = runtime::spawn(super::peer_recv::accept_loop(shared.clone()));
        let transport = Arc::new(Self {
            shared,
            links: Mutex::new(HashMap::new()),
            accept_task: Mutex::new(Some(accept)),
        });
        Ok((transport, events_rx))
    }

    /// The address the peer listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.shared
            .endpoint
            .local_addr()
            .map_err(|source| TransportError::Bind {
                addr: self.shared.config.listen,
                source,
            })
    }

    /// Closes every connection and the listener, and waits (bounded) until the socket is free.
    pub async fn shutdown(&self) {
        let links: Vec<Link> = lock(&self.links).drain().map(|(_, l)| l).collect();
        for link in links {
            link.task.cancel().await;
            link.rtt_task.cancel().await;
            link.keeper_task.cancel().await;
        }
        // The handler holds the driver's handle: dropping it here breaks that cycle.
        lock(&self.shared.request_handler).take();
        lock(&self.shared.snapshots).take();
        self.shared.endpoint.close(codes::SHUTDOWN, b"shutdown");
        let accept = lock(&self.accept_task).take();
        if let Some(task) = accept {
            task.cancel().await;
        }
        let _ = runtime::timeout(Duration::from_secs(2), self.shared.endpoint.wait_idle()).await;
    }
}

impl PeerTransport for QuicPeerTransport {
    fn send(&self, msgs: Vec<Message>) {
        let mut links = lock(&self.links);
        for msg in msgs {
            let to = msg.to;
            let delivered = match links.get_mut(&to) {
                Some(link) => {
                    if msg.r#type == MessageType::MsgHeartbeat as i32
                        && link.heartbeats.sent(msg.term, Instant::now())
                    {
                        self.heartbeat_late(to);
                    }
                    link.queue.try_send(msg).is_ok()
                }
                None => false,
            };
            if !delivered {
                tracing::debug!(to, "peer message dropped (unknown peer or queue full)");
                self.shared.report(PeerEvent::Unreachable { to });
            }
        }
    }

    fn add_peer(&self, id: u64, addr: PeerAddr) {
        let mut links = lock(&self.links);
        if let Some(link) = links.get(&id) {
            link.dialer.set_addr(addr);
            return;
        }
        let (queue, rx) = mpsc::channel(self.shared.config.queue_len);
        let dialer = Arc::new(Dialer::new(self.shared.clone(), id, addr));
        let task = runtime::spawn(run_link(self.shared.clone(), dialer.clone(), rx));
        let config = &self.shared.config;
        let rtt_task = runtime::spawn(sample_round_trips(
            Arc::downgrade(&dialer),
            config.metrics.network.round_trip_to(id),
            config.rtt_sample_interval,
        ));
        let keeper_task = runtime::spawn(super::peer_keeper::keep_connected(
            self.shared.clone(),
            Arc::downgrade(&dialer),
        ));
        links.insert(
            id,
            Link {
                queue,
                dialer,
                task,
                rtt_task,
                keeper_task,
                heartbeats: HeartbeatClock::new(config.heartbeat_interval),
            },
        );
    }

    fn remove_peer(&self, id: u64) {
        if let Some(link) = lock(&self.links).remove(&id) {
            link.dialer.retire();
            // Dropping the queue ends the writer; the task is detached, not awaited.
            drop(link.queue);
            drop(link.task);
            drop(link.rtt_task);
            drop(link.keeper_task);
        }
    }

    fn set_cluster_id(&self, cluster_id: u64) {
        self.shared.cluster_id.store(cluster_id, Ordering::Relaxed);
    }

    fn publish_members(&self, members: MembersResponse, removed: Vec<u64>) {
        let mut directory = lock(&self.shared.directory);
        directory.members = Some(members);
        directory.removed = removed.into_iter().collect();
    }

    fn ask(
        &self,
        to: u64,
        request: PeerRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Option<PeerResponse>, TransportError>> {
        let dialer = lock(&self.links).get(&to).map(|link| link.dialer.clone());
        let shared = self.shared.clone();
        async move {
            let dialer = dialer.ok_or(TransportError::UnknownPeer(to))?;
            let asked = async {
                let conn = dialer.connection().await?;
                exchange(&conn, shared.hello(), request, shared.config.max_frame).await
            };
            runtime::timeout(timeout, asked)
                .await
                .unwrap_or(Err(TransportError::Timeout))
        }
        .boxed()
    }

    fn serve_requests(&self, handler: Arc<dyn PeerRequestHandler>) {
        *lock(&self.shared.request_handler) = Some(handler);
    }

    fn serve_snapshots(&self, storage: LmdbStorage) {
        *lock(&self.shared.snapshots) = Some(storage);
    }
}

impl QuicPeerTransport {
    /// etcd's check (see [`HeartbeatClock`]): the leader's loop fell behind, likely on a slow
    /// disk.
    fn heartbeat_late(&self, to: u64) {
        self.shared
            .config
            .metrics
            .server
            .heartbeat_send_failures
            .inc();
        tracing::warn!(
            to = format_args!("{to:x}"),
            "leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk"
        );
    }
}

/// Locks a std mutex, recovering from poisoning (the guarded maps stay consistent because no
/// code panics while holding them).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
