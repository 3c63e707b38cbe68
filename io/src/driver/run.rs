//! The loop itself: the scheduler. One turn:
//!
//! 1. wait for any input (peer event, command) or the core's next deadline
//!    (`Server::poll_timeout`), then let the core handle the time (`Server::handle_timeout`);
//! 2. drain every other input already queued — all of it reaches the core before step 3, so
//!    the turn's proposals become one raft append (group commit);
//! 3. while the core has raft work: send its `messages` (a `MsgSnap`'s data is streamed by the
//!    transport), carry out its writes ([`super::persist`]: a snapshot from the leader swapped
//!    in, the entries and hard state appended to the raft journal with one `fdatasync`, the
//!    `persisted_messages` sent — acknowledgements, only now that they are durable — and the
//!    committed entries applied into the LMDB write batch the loop keeps open across turns,
//!    [`super::held`], their answers released); then `advance` (raft moves on, reads are served
//!    through that batch);
//! 4. deliver outputs ([`super::outputs`]): watch events to the watch hub, configuration
//!    changes to the transport;
//! 5. catch up slow watchers a bounded step, push watch responses to their streams, publish
//!    [`NodeInfo`](super::NodeInfo).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use qraft_core::server::{RaftWork, RequestId, Server};
use qraft_core::watch::{StreamId, WatchHub};
use qraft_proto::qraftpb::ClientResponse;

use super::config::DriverConfig;
use super::defrag::{DefragEnd, DefragEnds, defrag_channel};
use super::directory::PublishedMembers;
use super::handle::{Command, DriverError, DriverHandle};
use super::held::LoopBackend;
use super::info::SharedInfo;
use super::leader_forwarding::{ForwardAnswers, ForwardedRequests, Forwarder};
use super::metrics::LoopMetrics;
use super::password_pool::{PasswordPool, PasswordResults};
use super::peer_resolver::PeerResolver;
use super::secrets::os_secret_rng;
use super::state_open::{OpenedStates, StateOpener};
use super::storage_contract::DriverStorage;
use super::watch_queue::WatchSink;
use crate::runtime::{self, Task};
use crate::storage::LmdbStorage;
use crate::transport::{PeerEvent, PeerTransport};

/// The running loop: its handle and its task (which ends with the loop's result).
pub struct Driver<S: DriverStorage = LmdbStorage> {
    pub handle: DriverHandle<S>,
    pub task: Task<Result<(), DriverError>>,
}

/// The core as the loop runs it: its raft log in the member's storage, its applied state in
/// the same storage through the batch the loop holds open (`super::held`).
pub(super) type Core<'s, S> = Server<S, LoopBackend<'s, S>>;

/// Opens the core over `storage` and starts the loop. `initial_peers` are the other members'
/// peer URLs known from the flags (a joining member needs them before it has a configuration).
pub fn start<S: DriverStorage>(
    config: DriverConfig,
    storage: S,
    transport: Arc<dyn PeerTransport>,
    peer_events: mpsc::Receiver<PeerEvent>,
    initial_peers: Vec<(u64, String)>,
) -> Result<Driver<S>, DriverError> {
    let (passwords, password_results) = PasswordPool::start()?;
    let (state_opener, opened_states) = StateOpener::new();
    let (commands, command_rx) = mpsc::channel(config.command_queue);
    let info = SharedInfo::default();
    let handle = DriverHandle {
        commands,
        info: info.clone(),
        storage: storage.clone(),
        signed_tokens: config.signed_tokens.clone(),
    };
    storage.serve_snapshots(transport.as_ref());
    transport.serve_requests(Arc::new(ForwardedRequests {
        handle: handle.clone(),
    }));
    let (forwarder, forward_answers) = Forwarder::new(transport.clone());
    // The core opens on the loop's thread: its backend borrows the storage there and holds
    // an LMDB write transaction, which belongs to its thread. `start` waits for the outcome,
    // so that a member that cannot open fails here.
    let (opened, opening) = std::sync::mpsc::sync_channel(1);
    let task = runtime::spawn_dedicated(move || async move {
        let backend = LoopBackend::new(&storage, config.metrics.clone());
        let workers = Workers {
            passwords,
            state_opener,
        };
        let (state, defrags_ended) = match Loop::open(
            config, &storage, backend, transport, forwarder, info, workers,
        ) {
            Ok(opened) => opened,
            Err(err) => {
                let _ = opened.send(Err(err));
                return Err(DriverError::Stopped);
            }
        };
        let _ = opened.send(Ok(()));
        state
            .run(
                Inputs {
                    commands: command_rx,
                    peer_events,
                    password_results,
                    forward_answers,
                    defrags_ended,
                    opened_states,
                },
                initial_peers,
            )
            .await
    });
    match opening.recv() {
        Ok(Ok(())) => Ok(Driver { handle, task }),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(DriverError::Stopped),
    }
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

    /// When this clock reads `ms`.
    fn instant_of(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(self.start_ms))
    }
}

/// Everything the loop waits on besides time.
struct Inputs {
    commands: mpsc::Receiver<Command>,
    peer_events: mpsc::Receiver<PeerEvent>,
    password_results: PasswordResults,
    forward_answers: ForwardAnswers,
    defrags_ended: DefragEnds,
    opened_states: OpenedStates,
}

pub(super) struct Loop<'s, S: DriverStorage> {
    pub config: DriverConfig,
    pub server: Core<'s, S>,
    /// The core's backend: the held batch the loop commits on its schedule.
    pub backend: LoopBackend<'s, S>,
    pub storage: &'s S,
    pub transport: Arc<dyn PeerTransport>,
    /// Sends the requests the core forwards to the leader.
    pub forwarder: Forwarder,
    clock: Clock,
    pub info: SharedInfo,
    pub waiting: HashMap<RequestId, oneshot::Sender<ClientResponse>>,
    next_request: RequestId,
    pub hub: WatchHub,
    pub watch_streams: HashMap<StreamId, WatchSink>,
    /// The members' peer URLs, resolved for the transport off the loop.
    pub peers: PeerResolver,
    pub published_members: PublishedMembers,
    /// The core said this member was removed (`Output::Removed`): the loop stops with an
    /// error at the end of the turn.
    pub removed: bool,
    /// Where the copies the core asks for (`Output::Defragment`) report their end.
    pub defrag_ends: mpsc::UnboundedSender<DefragEnd>,
    pub metrics: LoopMetrics,
    /// Runs the core's bcrypt work off this thread.
    pub passwords: PasswordPool,
    /// Reopens the core's state after a snapshot install off this thread.
    pub state_opener: StateOpener,
}

/// The loop's helpers on other threads.
struct Workers {
    passwords: PasswordPool,
    state_opener: StateOpener,
}

impl<'s, S: DriverStorage> Loop<'s, S> {
    fn open(
        config: DriverConfig,
        storage: &'s S,
        backend: LoopBackend<'s, S>,
        transport: Arc<dyn PeerTransport>,
        forwarder: Forwarder,
        info: SharedInfo,
        workers: Workers,
    ) -> Result<(Self, DefragEnds), DriverError> {
        let (defrag_ends, defrags_ended) = defrag_channel();
        let clock = Clock::new();
        let mut server_config = config.server.clone();
        // The transport streams the image beside raft's message when raft sends one
        // (`DriverStorage::serve_snapshots`); the periodic snapshot only records its index and
        // compacts the log.
        server_config.snapshot_images = false;
        let server = Server::new(
            server_config,
            storage.clone(),
            backend.clone(),
            clock.now_ms(),
            os_secret_rng()?,
        )?;
        let metrics = LoopMetrics::new(
            config.metrics.clone(),
            server.stats(),
            server.state().map_or(0, |state| state.mvcc.live_keys()),
        );
        let peers = PeerResolver::start(Arc::clone(&transport));
        let state = Loop {
            metrics,
            hub: WatchHub::new(server.watch_config()),
            config,
            server,
            backend,
            storage,
            transport,
            forwarder,
            clock,
            info,
            waiting: HashMap::new(),
            next_request: 1,
            watch_streams: HashMap::new(),
            peers,
            published_members: PublishedMembers::default(),
            removed: false,
            defrag_ends,
            passwords: workers.passwords,
            state_opener: workers.state_opener,
        };
        Ok((state, defrags_ended))
    }

    async fn run(
        mut self,
        mut inputs: Inputs,
        initial_peers: Vec<(u64, String)>,
    ) -> Result<(), DriverError> {
        self.peers.want(initial_peers.into_iter().collect());
        self.reconcile_peers();
        let result = self.turns(&mut inputs).await;
        let held = self.backend.held();
        let result = match result {
            Ok(()) => held.commit().map_err(DriverError::from),
            Err(err) => {
                // Its entries are in the journal; the fold below and a restart replay them.
                held.abort();
                Err(err)
            }
        };
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

    async fn turns(&mut self, inputs: &mut Inputs) -> Result<(), DriverError> {
        loop {
            // Asleep until an input, the core's next deadline or the held batch's, whichever
            // comes first.
            let mut wake = self.clock.instant_of(self.server.poll_timeout());
            if let Some(due) = self.backend.held().deadline() {
                wake = wake.min(due);
            }
            let wait = wake.saturating_duration_since(Instant::now());
            let mut sleep = Box::pin(runtime::sleep(wait).fuse());
            let mut stop = false;
            futures::select! {
                _ = sleep => {}
                event = inputs.peer_events.next() => if let Some(event) = event {
                    self.on_peer(event)
                },
                done = inputs.password_results.next() => if let Some(done) = done {
                    self.server.password_done(done)
                },
                answer = inputs.forward_answers.next() => if let Some(answer) = answer {
                    self.server.forward_answered(answer.id, answer.attempt, answer.answer)
                },
                ended = inputs.defrags_ended.next() => if let Some(ended) = ended {
                    self.finish_defrag(ended)
                },
                opened = inputs.opened_states.next() => if let Some(opened) = opened {
                    self.server.state_opened(opened, &mut self.hub)?
                },
                command = inputs.commands.next() => match command {
                    Some(command) => stop |= self.on_command(command),
                    None => stop = true,
                },
            }
            while let Ok(event) = inputs.peer_events.try_recv() {
                self.on_peer(event);
            }
            while let Ok(done) = inputs.password_results.try_recv() {
                self.server.password_done(done);
            }
            while let Ok(answer) = inputs.forward_answers.try_recv() {
                self.server
                    .forward_answered(answer.id, answer.attempt, answer.answer);
            }
            while let Ok(ended) = inputs.defrags_ended.try_recv() {
                self.finish_defrag(ended);
            }
            while let Ok(opened) = inputs.opened_states.try_recv() {
                self.server.state_opened(opened, &mut self.hub)?;
            }
            while let Ok(command) = inputs.commands.try_recv() {
                stop |= self.on_command(command);
            }
            self.backend.held().commit_if_due()?;
            // The core keeps its own schedule (a late wake-up gets one tick, not a burst).
            if self.server.handle_timeout(self.clock.now_ms())
                && let Some(state) = self.server.state()
            {
                self.hub.tick(&state.mvcc);
            }
            self.process().await?;
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
            PeerEvent::Removed { by } => self.server.refused_as_removed(by),
            PeerEvent::Link { peer, up } => {
                let since = up.then(|| self.clock.now_ms());
                self.server.peer_active_since(peer, since);
            }
        }
    }

    /// Returns true when the loop should stop.
    fn on_command(&mut self, command: Command) -> bool {
        match command {
            Command::Request { request, reply } => {
                let id = self.wait_for(reply);
                self.server.request(id, request);
            }
            Command::Admit { request, reply } => {
                let id = self.wait_for(reply);
                self.server.admit(id, request);
            }
            Command::Forwarded {
                from,
                request,
                reply,
            } => {
                let id = self.wait_for(reply);
                self.server.forwarded_request(id, from, request);
            }
            Command::HealthRead {
                serializable,
                reply,
            } => {
                let id = self.wait_for(reply);
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
                claims,
                request,
            } => {
                self.server.watch_request(
                    &mut self.hub,
                    stream,
                    (&token, &cert_common_name, claims.as_ref()),
                    request,
                );
            }
            // The turn this command wakes hands the stream what it now has room for.
            Command::WatchRoom => {}
            Command::WatchClose { stream } => {
                self.hub.close_stream(stream);
                self.watch_streams.remove(&stream);
            }
            Command::Shutdown => return true,
        }
        false
    }

    /// A request ID for the core whose answer goes to `reply`.
    fn wait_for(&mut self, reply: oneshot::Sender<ClientResponse>) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.waiting.insert(id, reply);
        id
    }

    async fn process(&mut self) -> Result<(), DriverError> {
        let mut conf_changed = false;
        if self.server.has_entries_to_apply() {
            // Entries that waited for a defragmentation to end, with no new raft work to carry
            // them: applied as a turn without raft records.
            let (outputs, stored_conf) = self.write_turn(&mut RaftWork::default())?;
            self.server.apply_waiting()?;
            conf_changed |= stored_conf;
            conf_changed |= self.deliver(outputs)?;
        }
        while let Some(mut work) = self.server.ready() {
            // Appends go out before the leader's own write: raft lets it persist in parallel
            // with replication (its own acknowledgement counts only after `advance`).
            self.transport.send(std::mem::take(&mut work.messages));
            let (outputs, stored_conf) = self.write_turn(&mut work)?;
            self.transport
                .send(std::mem::take(&mut work.persisted_messages));
            self.server.advance()?;
            conf_changed |= stored_conf;
            conf_changed |= self.deliver(outputs)?;
            conf_changed |= self.deliver_outputs()?;
        }
        conf_changed |= self.deliver_outputs()?;
        if conf_changed {
            self.reconcile_peers();
        }
        self.publish_members();
        self.sync_watchers()?;
        self.publish_info();
        self.metrics.after_turn(&self.server, &self.hub);
        // For the transport's receiving thread: whether a snapshot arriving now gets its key
        // index built on the way (the core decides; see `Server::index_while_receiving`).
        self.storage
            .set_index_while_receiving(self.server.index_while_receiving());
        Ok(())
    }
}
