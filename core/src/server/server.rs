//! The state machine: raft node + application state, inputs in, outputs out.

use prost::Message as _;
use qraft_proto::etcdserverpb::{LeaseRevokeRequest, ResponseHeader};
use qraft_proto::qraftpb::client_response::Response;
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::qraftpb::{ConfChangeContext, InternalRequest, MemberRecord, RequestHeader};
use qraft_proto::raftpb::{
    ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType, Message, Snapshot,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::backend::{Backend, Table, WriteTxn, meta};
use crate::error::{Error, Result};
use crate::raft::{
    ConfChangeProposal, Config as RaftConfig, RawNode, SnapshotStatus, StateRole, Storage,
};

use super::apply::{ApplyContext, set_header};
use super::config::ServerConfig;
use super::ids::IdGenerator;
use super::output::{Output, RaftWork, RequestId};
use super::pending::{Pending, PendingProposal};
use super::publish::is_own_attrs;
use super::response::{error_response, header, ok_response};
use super::state::AppState;
use super::stats::ServerStats;
use super::version::{apply_version_entry, is_version_request, open_versions};
use crate::version::VersionNegotiator;

/// A member's state machine: a raft node, the application state over a [`Backend`], and the
/// requests in flight. No IO: the shell feeds [`Server::tick`], [`Server::step`] and
/// [`Server::request`], carries out [`Server::ready`] and then calls [`Server::advance`], and
/// delivers [`Server::take_outputs`].
pub struct Server<S: Storage, B: Backend> {
    pub(crate) config: ServerConfig,
    pub(crate) node: RawNode<S>,
    pub(crate) backend: B,
    pub(crate) state: AppState,
    pub(crate) ids: IdGenerator,
    pub(crate) pending: Pending,
    pub(crate) outputs: Vec<Output>,
    pub(crate) now_ms: u64,
    pub(crate) leader: u64,
    pub(crate) term: u64,
    pub(crate) committed: u64,
    next_lease_check_ms: u64,
    /// As a new leader: the log index up to which entries of earlier terms may still be
    /// unapplied. Once applied, lease deadlines are recomputed from the checkpoints they held.
    lease_catch_up_index: Option<u64>,
    next_token_sweep_ms: u64,
    next_read_ctx: u64,
    /// Committed entries of the last `ready()`, applied by `advance()`.
    to_apply: Vec<Entry>,
    /// A snapshot from the leader in the last `ready()`, installed by `advance()`.
    to_install: Option<Snapshot>,
    /// Entries were applied since the last `advance()` (`advance_in` or `advance` itself):
    /// storage migration and the periodic snapshot are due a look.
    applied_in_batch: bool,
    pub(crate) last_snapshot_index: u64,
    /// The (leader, term) last announced with `Output::LeaderChanged`.
    reported_leader: (u64, u64),
    /// The state machine's own choices (new member IDs); seeded, so runs are reproducible.
    pub(crate) rng: SmallRng,
    /// This member's versions and the replicated version state (see `super::version`).
    pub(crate) versions: VersionNegotiator,
    /// Ticks since the last version check.
    pub(crate) version_ticks: u64,
    /// Ticks since this member last considered publishing its attributes.
    pub(crate) publish_ticks: u64,
    /// This member applied its own attributes since it started (`super::publish`).
    pub(crate) attrs_applied: bool,
    /// This member's own alarm proposals in flight (`super::alarm`).
    pub(crate) alarm_raises: super::alarm::RaisesInFlight,
    pub(crate) stats: ServerStats,
    /// The corruption check's schedule (`super::corrupt`).
    pub(crate) corrupt: super::corrupt::CorruptCheck,
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Opens a member over its raft log `storage` and its `backend`. `now_ms` is the shell's
    /// monotonic clock; it also seeds proposal IDs so a restart does not reuse old ones.
    pub fn new(config: ServerConfig, storage: S, backend: B, now_ms: u64) -> Result<Self> {
        let state = {
            let txn = backend.read_txn()?;
            AppState::open(&txn, &config)?
        };
        let versions = open_versions(&config, &backend, state.members.keys().copied())?;
        let mut raft_config = RaftConfig::new(config.member_id);
        raft_config.election_tick = config.election_ticks;
        raft_config.heartbeat_tick = config.heartbeat_ticks;
        raft_config.applied = state.applied_index;
        raft_config.check_quorum = true;
        raft_config.pre_vote = true;
        raft_config.seed = config.seed;
        let node =
            RawNode::new(&raft_config, storage).map_err(|err| Error::Raft(err.to_string()))?;
        let term = node.status().hard_state.term;
        let snapshot_index = state.applied_index;
        let rng = SmallRng::seed_from_u64(config.seed);
        let config_version_ticks = config.version_check_ticks;
        let config_publish_ticks = config.election_ticks as u64;
        let config_initial_corrupt_check = config.initial_corrupt_check;
        Ok(Server {
            ids: IdGenerator::new(config.member_id, now_ms),
            committed: state.applied_index,
            config,
            node,
            backend,
            state,
            pending: Pending::default(),
            outputs: Vec::new(),
            now_ms,
            leader: 0,
            term,
            next_lease_check_ms: now_ms,
            lease_catch_up_index: None,
            next_token_sweep_ms: now_ms,
            next_read_ctx: 1,
            to_apply: Vec::new(),
            to_install: None,
            applied_in_batch: false,
            last_snapshot_index: snapshot_index,
            reported_leader: (0, term),
            rng,
            // The first check runs on the first tick with a known leader.
            version_ticks: config_version_ticks,
            // As versions: the first publish goes out on the first tick with a leader.
            publish_ticks: config_publish_ticks,
            attrs_applied: false,
            alarm_raises: Default::default(),
            corrupt: super::corrupt::CorruptCheck::new(config_initial_corrupt_check),
            versions,
            stats: ServerStats::default(),
        })
    }

    /// Records the initial members of a new cluster (from `--initial-cluster`); does nothing
    /// if the backend already knows members. Their raft configuration is the shell's to
    /// bootstrap into the raft storage (a `ConfState` with these voters).
    pub fn bootstrap_members(&mut self, members: Vec<MemberRecord>) -> Result<()> {
        if !self.state.members.is_empty() {
            return Ok(());
        }
        let mut txn = self.backend.write_txn()?;
        for member in members {
            self.state.put_member(&mut txn, member)?;
        }
        txn.commit()?;
        self.sync_version_members();
        Ok(())
    }

    pub fn member_id(&self) -> u64 {
        self.config.member_id
    }

    pub fn leader(&self) -> u64 {
        self.leader
    }

    pub fn is_leader(&self) -> bool {
        self.leader == self.config.member_id
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn applied_index(&self) -> u64 {
        self.state.applied_index
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The raft log storage, for the shell to persist a [`RaftWork`] into (the in-memory
    /// storage; a durable one is written by the shell directly).
    pub fn raft_storage_mut(&mut self) -> &mut S {
        self.node.storage_mut()
    }

    /// One raft tick (call every `tick_ms`), with the shell's monotonic clock. The leader also
    /// proposes revokes of expired leases and lease checkpoints here; requests past their
    /// deadline are answered "request timed out".
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.node.tick();
        let proposals = self.pending.proposals.len();
        for client in self.pending.expire(self.now_ms) {
            self.respond_error(client, &Error::Timeout, 0);
        }
        self.stats.proposals_failed += (proposals - self.pending.proposals.len()) as u64;
        if self.is_leader() && self.now_ms >= self.next_lease_check_ms {
            self.next_lease_check_ms = self.now_ms + self.config.lease_check_interval_ms;
            for id in self.state.lessor.expired(self.now_ms) {
                self.propose_internal(Request::LeaseRevoke(LeaseRevokeRequest { id }));
            }
            // A member below 0.2 cannot apply checkpoints: proposed only while enabled.
            if self.lease_checkpoints_enabled()
                && let Some(checkpoints) = self.state.lessor.due_checkpoints(self.now_ms)
            {
                self.propose_internal(Request::LeaseCheckpoint(checkpoints));
            }
        }
        if self.now_ms >= self.next_token_sweep_ms {
            self.next_token_sweep_ms = self.now_ms + 60_000;
            self.state.auth.sweep_tokens(self.now_ms);
        }
        self.version_tick();
        self.publish_tick();
        self.corrupt_tick();
    }

    /// Starts an election now instead of waiting for the election timeout (e.g. a single
    /// member on start, or an operator moving leadership in tests).
    pub fn campaign(&mut self) {
        self.node.campaign();
    }

    /// The shell could not deliver a message to `peer` (connection down): the leader stops
    /// pipelining to it and probes instead.
    pub fn report_unreachable(&mut self, peer: u64) {
        self.node.report_unreachable(peer);
    }

    /// Outcome of sending a snapshot (`MsgSnap`) to `peer`. The shell must report every
    /// snapshot it sent, `delivered = false` when the transfer failed: until then the leader
    /// sends that follower nothing else.
    pub fn report_snapshot(&mut self, peer: u64, delivered: bool) {
        let status = if delivered {
            SnapshotStatus::Finish
        } else {
            SnapshotStatus::Failure
        };
        self.node.report_snapshot(peer, status);
    }

    /// A raft message from a peer.
    pub fn step(&mut self, message: Message) {
        // Messages from unknown peers or stale terms are the node's to ignore.
        let _ = self.node.step(message);
    }

    /// Raft work for the shell, if any (see [`RaftWork`] for the order to carry it out in).
    /// Call [`Server::advance`] once it is done.
    pub fn ready(&mut self) -> Option<RaftWork> {
        if !self.node.has_ready() {
            return None;
        }
        let ready = self.node.ready();
        if let Some(soft) = ready.soft_state {
            self.on_soft_state(soft.leader_id, soft.role);
        }
        if let Some(hard) = &ready.hard_state {
            self.committed = self.committed.max(hard.commit);
            self.term = hard.term;
        }
        if (self.leader, self.term) != self.reported_leader {
            self.reported_leader = (self.leader, self.term);
            self.outputs.push(Output::LeaderChanged {
                leader: self.leader,
                term: self.term,
            });
        }
        for read in &ready.read_states {
            if let Ok(bytes) = <[u8; 8]>::try_from(read.request_ctx.as_ref()) {
                self.read_round_done(u64::from_be_bytes(bytes), read.index);
            }
        }
        self.to_apply = ready.committed_entries;
        self.to_install = ready.snapshot.clone();
        Some(RaftWork {
            messages: ready.messages,
            snapshot: ready.snapshot,
            entries: ready.entries,
            hard_state: ready.hard_state,
            must_sync: ready.must_sync,
            persisted_messages: ready.persisted_messages,
        })
    }

    /// The shell has carried out the last [`RaftWork`]: apply the committed entries (one backend
    /// write transaction, with the applied index), serve reads that became possible, and let
    /// raft move on. A backend error is fatal for the member. A shell that called
    /// [`Server::advance_in`] for this work calls this after committing that transaction; the
    /// entries applied there are not applied again.
    pub fn advance(&mut self) -> Result<()> {
        if let Some(snapshot) = self.to_install.take() {
            self.install_snapshot(&snapshot)?;
        }
        let entries = std::mem::take(&mut self.to_apply);
        if !entries.is_empty() {
            let (backend, mut applier) = self.applier();
            let mut txn = backend.write_txn()?;
            applier.apply_entries(&mut txn, &entries)?;
            txn.commit()?;
            self.applied_in_batch = true;
        }
        if std::mem::take(&mut self.applied_in_batch) {
            self.migrate_storage()?;
            self.maybe_snapshot()?;
        }
        self.node.advance();
        if let Some(index) = self.lease_catch_up_index
            && self.state.applied_index >= index
        {
            // Checkpoints committed by the previous leader are applied only now; promoting
            // again starts every lease from its latest remainder (never earlier than now +
            // election timeout + remainder, so still no early expiry).
            self.lease_catch_up_index = None;
            self.state
                .lessor
                .promote(self.config.election_timeout_ms(), self.now_ms);
        }
        self.serve_reads();
        Ok(())
    }

    /// Group commit: applies the committed entries of the last [`Server::ready`] inside the
    /// shell's own write transaction `txn` — the one that also persists that ready's entries
    /// and hard state — so a turn costs one commit (one fsync) instead of two. The shell must
    /// commit `txn` before it delivers the outputs produced here (responses, events,
    /// `ConfState`, which it should store in the same `txn`), then call [`Server::advance`].
    /// A dropped (uncommitted) `txn` is a fatal error for the member: the in-memory state has
    /// already moved on.
    ///
    /// A ready that carries a snapshot from the leader is not applied here (installing it
    /// reopens the state from the backend): [`Server::advance`] then does all of it in its own
    /// transactions. Atomicity makes applying in the appending transaction safe: the applied
    /// index and the entries it covers become durable together, or neither does.
    pub fn advance_in<T: WriteTxn + ?Sized>(&mut self, txn: &mut T) -> Result<()> {
        if self.to_install.is_some() || self.to_apply.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.to_apply);
        self.applier().1.apply_entries(txn, &entries)?;
        self.applied_in_batch = true;
        Ok(())
    }

    /// Whether the last [`Server::ready`] handed out committed entries still to apply.
    pub fn has_entries_to_apply(&self) -> bool {
        !self.to_apply.is_empty()
    }

    /// Counters for the shell's metrics.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Proposals waiting to be applied (etcd's `proposals_pending`).
    pub fn pending_proposals(&self) -> usize {
        self.pending.proposals.len()
    }

    /// Responses and events produced so far.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    fn on_soft_state(&mut self, leader: u64, role: StateRole) {
        let was_leader = self.is_leader();
        self.leader = leader;
        let is_leader = role == StateRole::Leader;
        if is_leader && !was_leader {
            // Clients get an election timeout to find the new leader before anything expires.
            self.state
                .lessor
                .promote(self.config.election_timeout_ms(), self.now_ms);
            self.next_lease_check_ms = self.now_ms;
            self.lease_catch_up_index = Some(self.node.raft.raft_log.last_index());
        } else if !is_leader && was_leader {
            self.state.lessor.demote();
            self.lease_catch_up_index = None;
        }
        self.reissue_unanswered_reads();
    }
}

/// What applying entries touches: the whole server but its backend, so that a transaction
/// borrowed from the backend (or the shell's own) can be open meanwhile.
struct Applier<'a, S: Storage> {
    config: &'a ServerConfig,
    node: &'a mut RawNode<S>,
    state: &'a mut AppState,
    versions: &'a mut VersionNegotiator,
    pending: &'a mut Pending,
    outputs: &'a mut Vec<Output>,
    attrs_applied: &'a mut bool,
    stats: &'a mut ServerStats,
    now_ms: u64,
    term: u64,
}

impl<S: Storage> Applier<'_, S> {
    /// Applies `entries` in `txn`, with the applied index; the caller commits `txn` before the
    /// responses pushed to `outputs` here are delivered.
    fn apply_entries<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        entries: &[Entry],
    ) -> Result<()> {
        // (client, result, store revision right after its entry): a response names the
        // revision its own write produced, as etcd's do, not the revision at the end of the
        // batch (clients watch from it and compare it with the key's mod revision).
        let mut responses = Vec::new();
        let mut last = (self.state.applied_index, self.state.applied_term);
        for entry in entries {
            if entry.index <= self.state.applied_index {
                continue; // already in the backend (restart replays from the raft log)
            }
            last = (entry.index, entry.term);
            match EntryType::try_from(entry.r#type) {
                Ok(EntryType::EntryNormal) => {
                    if entry.data.is_empty() {
                        continue; // a new leader's empty entry
                    }
                    let Ok(request) = InternalRequest::decode(entry.data.as_ref()) else {
                        tracing::warn!(index = entry.index, "undecodable entry skipped");
                        continue;
                    };
                    self.versions.check_entry(entry.index, &request)?;
                    if is_version_request(&request) {
                        let rejected = apply_version_entry(self.versions, txn, &request)?;
                        if let Some(pending) = self.pending.proposals.remove(&request.id)
                            && let Some(client) = pending.client
                        {
                            let revision = self.state.mvcc.current_revision();
                            responses.push((
                                client,
                                rejected.map_or(Ok(pending.reply), Err),
                                revision,
                            ));
                        }
                        continue;
                    }
                    *self.attrs_applied |= is_own_attrs(self.config, &request);
                    let ctx = ApplyContext {
                        index: entry.index,
                        term: entry.term,
                        now_ms: self.now_ms,
                    };
                    let outcome = self.state.apply(txn, &request, ctx)?;
                    if outcome.result.is_ok() {
                        match &request.request {
                            Some(Request::LeaseGrant(_)) => self.stats.leases_granted += 1,
                            Some(Request::LeaseRevoke(_)) => self.stats.leases_revoked += 1,
                            _ => {}
                        }
                    }
                    if !outcome.events.is_empty() {
                        self.outputs.push(Output::Events {
                            revision: self.state.mvcc.current_revision(),
                            events: outcome.events,
                        });
                    }
                    if let Some(pending) = self.pending.proposals.remove(&request.id)
                        && let Some(client) = pending.client
                    {
                        let result = match (pending.reply, outcome.result) {
                            (Some(reply), Ok(_)) => Ok(Some(reply)),
                            (_, result) => result,
                        };
                        responses.push((client, result, self.state.mvcc.current_revision()));
                    }
                }
                Ok(EntryType::EntryConfChange) => {
                    let Ok(cc) = ConfChange::decode(entry.data.as_ref()) else {
                        continue;
                    };
                    let applied =
                        apply_conf_change(self.node, txn, ConfChangeProposal::V1(cc.clone()))?;
                    let result = match applied {
                        Some(conf_state) => {
                            self.outputs.push(Output::ConfState(conf_state));
                            record_member_change(
                                self.state,
                                txn,
                                cc.r#type(),
                                cc.node_id,
                                &cc.context,
                            )?;
                            self.versions
                                .set_members(self.state.members.keys().copied());
                            self.pending
                                .member_changes
                                .remove(&cc.id)
                                .map(|change| self.state.member_change_response(change))
                                .ok_or(Error::NotCapable)
                                .map(Some)
                        }
                        None => Err(Error::MemberNotEnoughStarted),
                    };
                    if let Some(pending) = self.pending.proposals.remove(&cc.id)
                        && let Some(client) = pending.client
                    {
                        responses.push((client, result, self.state.mvcc.current_revision()));
                    }
                }
                Ok(EntryType::EntryConfChangeV2) => {
                    let Ok(cc) = ConfChangeV2::decode(entry.data.as_ref()) else {
                        continue;
                    };
                    let Some(conf_state) =
                        apply_conf_change(self.node, txn, ConfChangeProposal::V2(cc.clone()))?
                    else {
                        continue;
                    };
                    self.outputs.push(Output::ConfState(conf_state));
                    for change in &cc.changes {
                        record_member_change(
                            self.state,
                            txn,
                            change.r#type(),
                            change.node_id,
                            &cc.context,
                        )?;
                    }
                    self.versions
                        .set_members(self.state.members.keys().copied());
                }
                Err(_) => {}
            }
        }
        meta::put_u64(txn, meta::CONSISTENT_INDEX, last.0)?;
        meta::put_u64(txn, meta::TERM, last.1)?;
        self.state.applied_index = last.0;
        self.state.applied_term = last.1;
        let header = self.header();
        for (client, result, revision) in responses {
            let response = match result {
                Ok(Some(mut response)) => {
                    set_header(&mut response, ResponseHeader { revision, ..header });
                    ok_response(response)
                }
                Ok(None) => continue,
                Err(err) => error_response(&err, 0),
            };
            self.outputs.push(Output::Respond {
                id: client,
                response,
            });
        }
        Ok(())
    }

    fn header(&self) -> qraft_proto::etcdserverpb::ResponseHeader {
        header(
            self.config.cluster_id,
            self.config.member_id,
            self.state.mvcc.current_revision(),
            self.term,
        )
    }
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Splits the server into its backend and the rest, for applying entries in a transaction
    /// of that backend.
    fn applier(&mut self) -> (&B, Applier<'_, S>) {
        (
            &self.backend,
            Applier {
                config: &self.config,
                node: &mut self.node,
                state: &mut self.state,
                versions: &mut self.versions,
                pending: &mut self.pending,
                outputs: &mut self.outputs,
                attrs_applied: &mut self.attrs_applied,
                stats: &mut self.stats,
                now_ms: self.now_ms,
                term: self.term,
            },
        )
    }

    pub(crate) fn header(&self) -> qraft_proto::etcdserverpb::ResponseHeader {
        header(
            self.config.cluster_id,
            self.config.member_id,
            self.state.mvcc.current_revision(),
            self.term,
        )
    }

    pub(crate) fn respond_error(&mut self, client: RequestId, err: &Error, leader_hint: u64) {
        self.outputs.push(Output::Respond {
            id: client,
            response: error_response(err, leader_hint),
        });
    }

    /// Proposes a request; `client` is answered when it is applied (or times out).
    pub(crate) fn propose(
        &mut self,
        client: Option<RequestId>,
        request: Request,
        username: String,
    ) -> std::result::Result<(), (Error, u64)> {
        self.propose_with_reply(client, request, username, None)
    }

    /// As [`Server::propose`], answering `client` with `reply` once the request is applied.
    pub(crate) fn propose_with_reply(
        &mut self,
        client: Option<RequestId>,
        request: Request,
        username: String,
        reply: Option<Response>,
    ) -> std::result::Result<(), (Error, u64)> {
        let result = self.submit_proposal(client, request, username, reply);
        if result.is_err() {
            self.stats.proposals_failed += 1;
        }
        result
    }

    fn submit_proposal(
        &mut self,
        client: Option<RequestId>,
        request: Request,
        username: String,
        reply: Option<Response>,
    ) -> std::result::Result<(), (Error, u64)> {
        if self.leader == 0 {
            return Err((Error::NoLeader, 0));
        }
        if self.committed.saturating_sub(self.state.applied_index)
            > self.config.max_unapplied_entries
        {
            return Err((Error::TooManyRequests, 0));
        }
        let id = self.ids.next_id();
        let internal = InternalRequest {
            header: Some(RequestHeader {
                id,
                username,
                auth_revision: self.state.auth.revision(),
            }),
            id,
            request: Some(request),
        };
        match self.node.propose(internal.encode_to_vec().into()) {
            Ok(()) => {
                self.pending.proposals.insert(
                    id,
                    PendingProposal {
                        client,
                        deadline_ms: self.now_ms + self.config.request_timeout_ms,
                        reply,
                    },
                );
                Ok(())
            }
            Err(crate::raft::RaftError::ProposalDropped { leader_hint }) => Err((
                if leader_hint == 0 {
                    Error::NoLeader
                } else {
                    Error::NotLeader
                },
                leader_hint,
            )),
            Err(err) => Err((Error::Raft(err.to_string()), 0)),
        }
    }

    /// Proposals the member makes on its own behalf run with root authority, as etcd's.
    fn propose_internal(&mut self, request: Request) {
        let _ = self.propose(None, request, crate::auth::ROOT.to_string());
    }

    /// Issues a ReadIndex for a linearizable read; the read is served once applied ≥ index.
    pub(crate) fn next_read_ctx(&mut self) -> u64 {
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        ctx
    }
}

/// Applies a committed conf change to raft and stores the configuration now in force.
/// A change raft refuses (it would be unsafe in the current configuration) is skipped on
/// every member alike: `Ok(None)`.
fn apply_conf_change<S: Storage, T: WriteTxn + ?Sized>(
    node: &mut RawNode<S>,
    txn: &mut T,
    cc: ConfChangeProposal,
) -> Result<Option<ConfState>> {
    let conf_state = match node.apply_conf_change(&cc) {
        Ok(conf_state) => conf_state,
        Err(err) => {
            tracing::warn!(%err, "committed conf change refused by raft; skipped");
            return Ok(None);
        }
    };
    txn.put(Table::Meta, meta::CONF_STATE, &conf_state.encode_to_vec())?;
    Ok(Some(conf_state))
}

/// Keeps the members table in step with the configuration: the member record travels in
/// the conf change's context (`qraftpb.ConfChangeContext`).
fn record_member_change<T: WriteTxn + ?Sized>(
    state: &mut AppState,
    txn: &mut T,
    kind: ConfChangeType,
    node_id: u64,
    context: &[u8],
) -> Result<()> {
    match kind {
        ConfChangeType::ConfChangeAddNode
        | ConfChangeType::ConfChangeAddLearnerNode
        | ConfChangeType::ConfChangeUpdateNode => {
            let member = ConfChangeContext::decode(context)
                .ok()
                .and_then(|ctx| ctx.member)
                .unwrap_or_default();
            state.put_member(
                txn,
                MemberRecord {
                    id: node_id,
                    ..member
                },
            )
        }
        ConfChangeType::ConfChangeRemoveNode => state.remove_member(txn, node_id),
    }
}
