//! The loop itself. One turn:
//!
//! 1. wait for any input (peer event, command, or the next tick);
//! 2. drain every other input already queued — all of it reaches the core before step 3, so
//!    the turn's proposals become one raft append (group commit);
//! 3. while the core has raft work: send its `messages` (a `MsgSnap`'s data is streamed by the
//!    transport); swap in a snapshot from the leader the transport received; append
//!    the entries and hard state to the raft journal (one `fdatasync`) and send the
//!    `persisted_messages` (acknowledgements — only now that they are durable); then apply the
//!    committed entries (`Server::advance_in`) into the LMDB write batch the loop keeps open
//!    across turns ([`HeldBatch`]: committed every few milliseconds, and before anything
//!    reads the applied state outside it) and release their answers; then `advance` (raft
//!    moves on, reads are served);
//! 4. deliver outputs: watch events to the watch hub, configuration changes to the transport;
//! 5. catch up slow watchers a bounded step, push watch responses to their streams, publish
//!    [`NodeInfo`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use qraft_core::backend::Backend;
use qraft_core::server::{Output, RaftWork, RequestId, Server};
use qraft_core::watch::{StreamId, WatchConfig, WatchHub};
use qraft_proto::etcdserverpb::{TxnRequest, WatchResponse};
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

use super::config::DriverConfig;
use super::directory::{self, PublishedMembers};
use super::forward::{ForwardedRequests, Forwarder};
use super::handle::{Command, DriverError, DriverHandle};
use super::held::HeldBatch;
use super::info::SharedInfo;
use super::metrics::LoopMetrics;
use super::password_pool::{PasswordPool, PasswordResults};
use super::persist;
use super::secrets::os_secret_rng;
use super::watch_queue::WatchSink;
use crate::runtime::{self, Task};
use crate::storage::LmdbStorage;
use crate::transport::{PeerAddr, PeerEvent, PeerTransport};

/// The running loop: its handle and its task (which ends with the loop's result).
pub struct Driver {
    pub handle: DriverHandle,
    pub task: Task<Result<(), DriverError>>,
}

type Core = Server<LmdbStorage, LmdbStorage>;

/// Opens the core over `storage` and starts the loop. `initial_peers` are the other members'
/// peer URLs known from the flags (a joining member needs them before it has a configuration).
pub fn start(
    config: DriverConfig,
    storage: LmdbStorage,
    transport: Arc<dyn PeerTransport>,
    peer_events: mpsc::Receiver<PeerEvent>,
    initial_peers: Vec<(u64, String)>,
) -> Result<Driver, DriverError> {
    let clock = Clock::new();
    let mut server_config = config.server.clone();
    // `LmdbStorage::snapshot` builds the image when raft sends one; the periodic snapshot only
    // records its index and compacts the log.
    server_config.snapshot_images = false;
    let server = Server::new(
        server_config,
        storage.clone(),
        storage.clone(),
        clock.now_ms(),
        os_secret_rng()?,
    )?;
    let (passwords, password_results) = PasswordPool::start()?;
    let (commands, command_rx) = mpsc::channel(config.command_queue);
    let info = SharedInfo::default();
    let handle = DriverHandle {
        commands,
        info: info.clone(),
        storage: storage.clone(),
        forwarder: None,
    };
    transport.serve_snapshots(storage.clone());
    transport.serve_requests(Arc::new(ForwardedRequests {
        handle: handle.clone(),
    }));
    let handle = DriverHandle {
        forwarder: Some(Forwarder::new(transport.clone(), &config)),
        ..handle
    };
    let metrics = LoopMetrics::new(
        config.metrics.clone(),
        server.stats(),
        server.state().mvcc.live_keys(),
    );
    let state = Loop {
        metrics,
        hub: WatchHub::new(WatchConfig {
            progress_interval_ticks: (config.watch_progress_notify.as_millis() as u64)
                .div_ceil(config.server.tick_ms.max(1))
                .max(1),
            ..WatchConfig::default()
        }),
        config,
        server,
        storage,
        transport,
        clock,
        info,
        waiting: HashMap::new(),
        next_request: 1,
        watch_streams: HashMap::new(),
        peers: HashMap::new(),
        leader_changes: 0,
        last_leader: 0,
        published_members: PublishedMembers::default(),
        removed: false,
        quota: Default::default(),
        passwords,
    };
    let task = runtime::spawn_dedicated(move || {
        state.run(command_rx, peer_events, password_results, initial_peers)
    });
    Ok(Driver { handle, task })
}

/// Sends every `Respond` of `outputs` to its waiting requester, keeping the other outputs.
fn release_responses(
    waiting: &mut HashMap<RequestId, oneshot::Sender<ClientResponse>>,
    outputs: &mut Vec<Output>,
) {
    outputs.retain_mut(|output| {
        let Output::Respond { id, response } = output else {
            return true;
        };
        if let Some(reply) = waiting.remove(id) {
            let _ = reply.send(std::mem::take(response));
        }
        false
    });
}

/// Whether serving `command` reads the applied state outside the loop's open batch (so that
/// batch must be committed first). Writes go through raft and are applied inside it.
fn reads_applied_state(command: &Command) -> bool {
    match command {
        Command::Request { request, .. } => !is_write(request),
        Command::HealthRead { .. } | Command::Watch { .. } => true,
        _ => false,
    }
}

fn is_write(request: &ClientRequest) -> bool {
    use qraft_proto::qraftpb::client_request::Request as In;
    match &request.request {
        Some(In::Put(_) | In::DeleteRange(_)) => true,
        Some(In::Txn(txn)) => txn_writes(txn),
        _ => false,
    }
}

/// A txn with a put or delete anywhere goes through raft; a read-only one is served as a read.
fn txn_writes(txn: &TxnRequest) -> bool {
    use qraft_proto::etcdserverpb::request_op::Request as Op;
    txn.success
        .iter()
        .chain(&txn.failure)
        .any(|op| match &op.request {
            Some(Op::RequestPut(_) | Op::RequestDeleteRange(_)) => true,
            Some(Op::RequestTxn(inner)) => txn_writes(inner),
            _ => false,
        })
}

/// Milliseconds for the core: wall-clock based at start (proposal IDs stay unique across
/// restarts), monotonic afterwards (a clock step never expires leases early).
struct Clock {
    start: Instant,
    start_ms: u64,
}

impl Clock {
    fn new() -> Self {
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            start: Instant::now(),
            start_ms,
        }
    }

    fn now_ms(&self) -> u64 {
        self.start_ms + self.start.elapsed().as_millis() as u64
    }
}

struct Loop {
    config: DriverConfig,
    server: Core,
    storage: LmdbStorage,
    transport: Arc<dyn PeerTransport>,
    clock: Clock,
    info: SharedInfo,
    waiting: HashMap<RequestId, oneshot::Sender<ClientResponse>>,
    next_request: RequestId,
    hub: WatchHub,
    watch_streams: HashMap<StreamId, WatchSink>,
    /// Peer URL registered with the transport, per member.
    peers: HashMap<u64, String>,
    leader_changes: u64,
    last_leader: u64,
    published_members: PublishedMembers,
    /// Set when this member learns it was removed; the loop then stops with an error.
    removed: bool,
    quota: super::alarm::QuotaWatch,
    metrics: LoopMetrics,
    /// Runs the core's bcrypt work off this thread.
    passwords: PasswordPool,
}

impl Loop {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut peer_events: mpsc::Receiver<PeerEvent>,
        mut password_results: PasswordResults,
        initial_peers: Vec<(u64, String)>,
    ) -> Result<(), DriverError> {
        for (id, url) in initial_peers {
            self.add_peer(id, url).await;
        }
        self.reconcile_peers().await;
        if self.is_sole_voter() {
            // A one-member cluster need not wait an election timeout to lead.
            self.server.campaign();
        }
        let result = self
            .turns(&mut commands, &mut peer_events, &mut password_results)
            .await;
        if let Err(err) = self.storage.fold_journal() {
            tracing::warn!(%err, "could not fold the raft journal into LMDB at stop");
        }
        if let Err(err) = &result {
            tracing::error!(%err, "member loop stopped on a fatal error");
        }
        let fatal = result.as_ref().err().map(ToString::to_string);
        self.info.update(|i| {
            i.stopped = true;
            i.fatal_error = fatal;
        });
        for (_, reply) in self.waiting.drain() {
            let _ = reply.send(super::handle::stopped());
        }
        result
    }

    async fn turns(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        peer_events: &mut mpsc::Receiver<PeerEvent>,
        password_results: &mut PasswordResults,
    ) -> Result<(), DriverError> {
        let storage = self.storage.clone();
        let mut held = HeldBatch::new(&storage);
        self.turns_holding(commands, peer_events, password_results, &mut held)
            .await?;
        held.commit(&self.metrics)?;
        Ok(())
    }

    async fn turns_holding(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        peer_events: &mut mpsc::Receiver<PeerEvent>,
        password_results: &mut PasswordResults,
        held: &mut HeldBatch<'_>,
    ) -> Result<(), DriverError> {
        let tick = self.config.tick;
        let mut next_tick = Instant::now() + tick;
        loop {
            let mut wake = next_tick;
            if let Some(due) = held.deadline() {
                wake = wake.min(due);
            }
            let wait = wake.saturating_duration_since(Instant::now());
            let mut sleep = Box::pin(runtime::sleep(wait).fuse());
            let mut stop = false;
            futures::select! {
                _ = sleep => {}
                event = peer_events.next() => if let Some(event) = event { self.on_peer(event) },
                done = password_results.next() => if let Some(done) = done {
                    self.server.password_done(done)
                },
                command = commands.next() => match command {
                    Some(command) => stop |= self.on_command(command, held)?,
                    None => stop = true,
                },
            }
            while let Ok(event) = peer_events.try_recv() {
                self.on_peer(event);
            }
            while let Ok(done) = password_results.try_recv() {
                self.server.password_done(done);
            }
            while let Ok(command) = commands.try_recv() {
                stop |= self.on_command(command, held)?;
            }
            if held.is_due() {
                held.commit(&self.metrics)?;
            }
            let now = Instant::now();
            if now >= next_tick {
                // Ticks may read the applied state (the corruption check hashes it).
                held.commit(&self.metrics)?;
                self.server.tick(self.clock.now_ms());
                self.quota.tick(&self.storage, &mut self.server);
                self.hub.tick(&self.server.state().mvcc);
                next_tick += tick;
                if next_tick < now {
                    // The loop fell behind (a long fsync, a stall): skip the missed ticks
                    // instead of firing a burst that would expire elections at once.
                    next_tick = now + tick;
                }
            }
            self.process(held).await?;
            if self.removed {
                return Err(DriverError::Removed);
            }
            if stop {
                return Ok(());
            }
        }
    }

    fn on_peer(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Message(message) => self.server.step(message),
            PeerEvent::Unreachable { to } => self.server.report_unreachable(to),
            PeerEvent::SnapshotStatus { to, ok } => self.server.report_snapshot(to, ok),
            PeerEvent::Removed { by } => {
                tracing::warn!(
                    by = format_args!("{by:x}"),
                    "a peer refused this member as removed"
                );
                self.removed = true;
            }
        }
    }

    /// Returns true when the loop should stop.
    fn on_command(
        &mut self,
        command: Command,
        held: &mut HeldBatch<'_>,
    ) -> Result<bool, DriverError> {
        if reads_applied_state(&command) {
            held.commit(&self.metrics)?;
        }
        match command {
            Command::Request { request, reply } => {
                let id = self.next_request;
                self.next_request += 1;
                self.waiting.insert(id, reply);
                self.server.request(id, request);
            }
            Command::HealthRead {
                serializable,
                reply,
            } => {
                let id = self.next_request;
                self.next_request += 1;
                self.waiting.insert(id, reply);
                self.server.health_read(id, serializable);
            }
            Command::WatchOpen { responses, reply } => {
                let stream = self.hub.open_stream();
                self.watch_streams.insert(stream, responses);
                let _ = reply.send(stream);
            }
            Command::Watch {
                stream,
                caller: (token, cert_common_name),
                request,
            } => {
                self.server.watch_request(
                    &mut self.hub,
                    stream,
                    (&token, &cert_common_name),
                    request,
                );
            }
            // The turn this command wakes hands the stream what it now has room for.
            Command::WatchRoom => {}
            Command::WatchClose { stream } => {
                self.hub.close_stream(stream);
                self.watch_streams.remove(&stream);
            }
            Command::TransferLeader { to, reply } => {
                let _ = reply.send(self.server.transfer_leader(to));
            }
            Command::Shutdown => return Ok(true),
        }
        Ok(false)
    }

    async fn process(&mut self, held: &mut HeldBatch<'_>) -> Result<(), DriverError> {
        let mut conf_changed = false;
        while let Some(mut work) = self.server.ready() {
            // Appends go out before the leader's own write: raft lets it persist in parallel
            // with replication (its own acknowledgement counts only after `advance`).
            self.transport.send(std::mem::take(&mut work.messages));
            let (outputs, stored_conf) = self.write_turn(&mut work, held)?;
            self.transport
                .send(std::mem::take(&mut work.persisted_messages));
            if self.server.advance_uses_backend() {
                held.commit(&self.metrics)?;
            }
            self.server.advance()?;
            conf_changed |= stored_conf;
            conf_changed |= self.deliver(outputs, held)?;
            conf_changed |= self.deliver_outputs(held)?;
        }
        conf_changed |= self.deliver_outputs(held)?;
        if conf_changed {
            self.reconcile_peers().await;
        }
        self.published_members.update(
            self.transport.as_ref(),
            &self.storage,
            self.config.server.cluster_id,
            &self.server.state().members,
        )?;
        self.sync_watchers(held)?;
        self.publish_info();
        self.metrics.after_turn(&self.server, &self.hub);
        Ok(())
    }

    /// The turn's writes. Raft's part — entries and hard state — goes to the journal (one
    /// `fdatasync`), after which the acknowledgements (`persisted_messages`) leave at once. The
    /// committed entries the core applies go into the batch the loop keeps open across turns
    /// (see [`HeldBatch`]) with the applied index and the journal's tail; the answers to them
    /// leave at once. Each answers a committed entry, already durable in the raft log of a
    /// majority (the leader's own journal included: it counts its own acknowledgement only
    /// after the turn that appended the entry), and a crash before the batch commits replays
    /// the entry from the journal to the same result; a read waits for that commit. A snapshot
    /// from the leader (already received by the transport) is swapped in first
    /// (`persist::install_snapshot`), then the turn's entries and hard state are committed
    /// durably in a batch (the journal untouched); a new configuration is committed at once. Returns
    /// the outputs produced so far — responses among them — and whether a configuration was
    /// stored.
    fn write_turn(
        &mut self,
        work: &mut RaftWork,
        held: &mut HeldBatch<'_>,
    ) -> Result<(Vec<Output>, bool), DriverError> {
        let applies = self.server.has_entries_to_apply();
        let snapshot = work.snapshot.is_some();
        if !snapshot && persist::needs_write(work) {
            let start = Instant::now();
            held.journal_append(&work.entries, work.hard_state.as_ref(), work.must_sync)?;
            if work.must_sync {
                self.metrics.committed(start.elapsed(), true, false);
            }
            self.transport
                .send(std::mem::take(&mut work.persisted_messages));
        }
        if !snapshot && !applies {
            return Ok((self.server.take_outputs(), false));
        }
        let (mut batch, since) = if snapshot {
            held.commit(&self.metrics)?;
            persist::install_snapshot(&self.storage, work)?;
            held.take_or_begin()?
        } else {
            held.take_or_begin()?
        };
        if snapshot {
            persist::persist_into(&mut batch, work)?;
        }
        let apply_start = Instant::now();
        self.server.advance_in(&mut batch)?;
        self.metrics.applied(apply_start.elapsed());
        let mut outputs = self.server.take_outputs();
        let stored_conf = persist::store_conf_states(&mut batch, &outputs)?;
        // The configurations are consumed here, so this is where a member sees its own removal
        // (a leader that removes itself hears of it from nobody else).
        let me = self.server.member_id();
        self.removed |= outputs
            .iter()
            .any(|output| matches!(output, Output::ConfState(cs) if directory::removes(cs, me)));
        outputs.retain(|output| !matches!(output, Output::ConfState(_)));
        release_responses(&mut self.waiting, &mut outputs);
        if snapshot || stored_conf {
            let commit_start = Instant::now();
            if snapshot {
                batch.commit()?;
            } else {
                batch.commit_unsynced_meta()?;
            }
            self.metrics
                .committed(commit_start.elapsed(), snapshot, applies);
        } else {
            held.keep(batch, since, &self.metrics)?;
        }
        Ok((outputs, stored_conf))
    }

    /// Delivers the outputs the core produced since the last call; returns whether the
    /// configuration changed.
    fn deliver_outputs(&mut self, held: &mut HeldBatch<'_>) -> Result<bool, DriverError> {
        let outputs = self.server.take_outputs();
        self.deliver(outputs, held)
    }

    /// Returns whether the configuration changed.
    fn deliver(
        &mut self,
        outputs: Vec<Output>,
        held: &mut HeldBatch<'_>,
    ) -> Result<bool, DriverError> {
        let mut conf_changed = false;
        // Before any event of the batch: a watcher whose user lost its permission in it gets
        // nothing more.
        self.server.recheck_watchers(&mut self.hub);
        if outputs
            .iter()
            .any(|o| matches!(o, Output::ConfState(_) | Output::Snapshot { .. }))
        {
            held.commit(&self.metrics)?;
        }
        for output in outputs {
            match output {
                Output::Respond { id, response } => {
                    if let Some(reply) = self.waiting.remove(&id) {
                        let _ = reply.send(response);
                    }
                }
                Output::Events { events, .. } => {
                    self.metrics.events(&events);
                    self.hub.notify(&events);
                }
                Output::ConfState(conf_state) => {
                    self.storage
                        .write(|batch| batch.set_conf_state(&conf_state))?;
                    conf_changed = true;
                    self.removed |= directory::removes(&conf_state, self.server.member_id());
                }
                Output::Snapshot {
                    index,
                    conf_state,
                    compact_to,
                    ..
                } => persist::store_snapshot(&self.storage, index, &conf_state, compact_to)?,
                Output::SnapshotInstalled { index, revision } => {
                    tracing::info!(index, revision, "installed the leader's snapshot");
                    self.hub.resync();
                    self.metrics
                        .rebase_keys(self.server.state().mvcc.live_keys());
                }
                Output::SnapshotRefused { index } => {
                    tracing::info!(
                        index,
                        "refused a snapshot from the leader (already caught up)"
                    );
                    self.storage.discard_received_snapshots(index);
                }
                Output::PasswordWork(work) => self.passwords.submit(work),
                Output::LeaderChanged { leader, term } => {
                    if leader != self.last_leader {
                        self.last_leader = leader;
                        if leader != 0 {
                            self.leader_changes += 1;
                        }
                        self.metrics
                            .leader_changed(leader, self.server.member_id(), leader != 0);
                        tracing::info!(leader = format_args!("{leader:x}"), term, "leader changed");
                    }
                }
            }
        }
        Ok(conf_changed)
    }

    fn sync_watchers(&mut self, held: &mut HeldBatch<'_>) -> Result<(), DriverError> {
        if self.hub.unsynced_watchers() > 0 {
            held.commit(&self.metrics)?;
            let txn = self
                .storage
                .read_txn()
                .map_err(qraft_core::error::Error::from)?;
            self.hub.sync(&self.server.state().mvcc, &txn)?;
        }
        for stream in self.hub.streams_with_responses() {
            let Some(sink) = self.watch_streams.get(&stream) else {
                self.hub.close_stream(stream);
                continue;
            };
            // No more than the stream (and its connection) has room for: the rest waits in
            // the hub, whose watchers fall back to catching up once its queue is full.
            let room = sink.room();
            let mut responses = self.hub.take_responses(stream, room);
            if self.hub.has_responses(stream) {
                sink.held_back();
            }
            if responses.is_empty() {
                continue;
            }
            self.stamp_watch_headers(&mut responses);
            let events = responses.iter().map(|r| r.events.len()).sum();
            let gone = match self.watch_streams.get(&stream) {
                Some(sink) => sink.send(responses).is_err(),
                None => true,
            };
            if !gone {
                self.metrics.watch_events_sent(events);
            }
            if gone {
                self.hub.close_stream(stream);
                self.watch_streams.remove(&stream);
            }
        }
        Ok(())
    }

    /// The hub knows revisions only; etcd's watch headers also name the cluster, the member
    /// and the raft term (etcdctl prints them), filled here as for every other response.
    fn stamp_watch_headers(&self, responses: &mut [WatchResponse]) {
        for header in responses.iter_mut().filter_map(|r| r.header.as_mut()) {
            header.cluster_id = self.config.server.cluster_id;
            header.member_id = self.server.member_id();
            header.raft_term = self.server.term();
        }
    }

    fn publish_info(&self) {
        let state = self.server.state();
        let me = self.server.member_id();
        let is_learner = state
            .members
            .get(&me)
            .and_then(|m| m.raft_attrs.as_ref())
            .is_some_and(|a| a.is_learner);
        let leader_changes = self.leader_changes;
        let versions = self.server.versions().report();
        self.info.update(|i| {
            i.member_id = me;
            i.cluster_id = self.config.server.cluster_id;
            i.leader = self.server.leader();
            i.term = self.server.term();
            i.applied_index = self.server.applied_index();
            i.committed_index = self.server.committed_index();
            i.revision = state.mvcc.current_revision();
            i.compact_revision = state.mvcc.compact_revision();
            i.is_learner = is_learner;
            i.published = self.server.attributes_published();
            i.leader_changes = leader_changes;
            i.versions = Some(versions);
            i.alarms = self.server.alarms();
        });
    }

    fn is_sole_voter(&self) -> bool {
        let conf = self.storage.raft_state().conf_state;
        conf.voters == [self.server.member_id()] && conf.learners.is_empty()
    }

    /// Registers every member of the current configuration with the transport and forgets
    /// removed ones.
    async fn reconcile_peers(&mut self) {
        let me = self.server.member_id();
        let wanted: Vec<(u64, String)> = self
            .server
            .state()
            .members
            .values()
            .filter(|m| m.id != me)
            .filter_map(|m| {
                let url = m.raft_attrs.as_ref()?.peer_urls.first()?.clone();
                Some((m.id, url))
            })
            .collect();
        // Before the first configuration arrives (a joining member), keep the flag-given peers.
        let removed: Vec<u64> = if self.server.state().members.is_empty() {
            Vec::new()
        } else {
            self.peers
                .keys()
                .filter(|id| !wanted.iter().any(|(w, _)| w == *id))
                .copied()
                .collect()
        };
        for id in removed {
            self.transport.remove_peer(id);
            self.peers.remove(&id);
        }
        for (id, url) in wanted {
            if self.peers.get(&id) != Some(&url) {
                self.add_peer(id, url).await;
            }
        }
    }

    async fn add_peer(&mut self, id: u64, url: String) {
        match PeerAddr::from_url(&url).await {
            Ok(addr) => {
                self.transport.add_peer(id, addr);
                self.peers.insert(id, url);
            }
            Err(err) => {
                tracing::warn!(member = format_args!("{id:x}"), %url, %err, "cannot resolve peer")
            }
        }
    }
}
