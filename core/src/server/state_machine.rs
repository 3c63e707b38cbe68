//! The state machine itself: what a member holds (raft node, application state, requests in
//! flight), how it is opened, and its inputs (ticks, raft messages) and outputs. The rest of
//! `Server` lives next to this file by concept, so each stays small enough to read at once:
//! the raft cycle (`ready`), applying committed entries (`applier`), proposing (`propose`),
//! client requests (`request`), reads (`reads`), membership, versions, alarms and snapshots.

use qraft_proto::etcdserverpb::LeaseRevokeRequest;
use qraft_proto::qraftpb::MemberRecord;
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::raftpb::{Message, MessageType};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::auth::SecretRng;
use crate::backend::{Backend, WriteTxn};
use crate::error::{Error, Result};
use crate::raft::{Config as RaftConfig, RawNode, SnapshotStatus, Storage};

use super::apply_queue::ApplyQueue;
use super::config::ServerConfig;
use super::ids::IdGenerator;
use super::leadership::Leadership;
use super::output::{Output, RequestId};
use super::pending::Pending;
use super::response::{error_response, header};
use super::state::AppState;
use super::stats::ServerStats;
use super::timer::Schedule;
use super::version::open_versions;
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
    /// The tick grid, lease checks, token sweeps and periodic checks (`super::timer`).
    pub(super) schedule: Schedule,
    /// The leader, term and commit index as raft last reported them (`super::leadership`).
    pub(super) leadership: Leadership,
    pub(super) next_read_ctx: u64,
    /// What `ready()` handed out to apply and `advance()` has not applied yet, and whether
    /// applying is paused (`super::apply_queue`).
    pub(super) apply_queue: ApplyQueue,
    /// The defragmentation running, by the request it answers (`super::defragment`).
    pub(super) defragmenting: Option<RequestId>,
    pub(crate) last_snapshot_index: u64,
    /// The state machine's own choices (new member IDs); seeded, so runs are reproducible.
    /// Never used for secrets.
    pub(crate) rng: SmallRng,
    /// Token prefixes and password salts: the embedder's CSPRNG (docs/security.md).
    pub(crate) secrets: SecretRng,
    /// Requests waiting for their bcrypt work (`super::passwords`).
    pub(crate) passwords: super::passwords::PasswordJobs,
    /// This member's versions and the replicated version state (see `super::version`).
    pub(crate) versions: VersionNegotiator,
    /// This member applied its own attributes since it started (`super::publish`).
    pub(crate) attrs_applied: bool,
    /// This member's own alarm proposals in flight (`super::alarm`).
    pub(crate) alarm_raises: super::alarm::RaisesInFlight,
    pub(crate) stats: ServerStats,
    /// The corruption check's schedule (`super::corrupt`).
    pub(crate) corrupt: super::corrupt::CorruptCheck,
    /// Leader-only requests on their way to the leader (`super::forward`).
    pub(super) forwards: super::forward::Forwards,
    /// The auto compaction's schedule (`super::auto_compaction`).
    pub(super) auto_compactor: super::auto_compaction::AutoCompactor,
    /// The shell's view of its connections to peers (`super::reconfig_check`).
    pub(super) peer_activity: super::reconfig_check::PeerActivity,
    /// Set while the state reopens after a snapshot from the leader, with the inputs that
    /// wait for it (`super::reopen`); `state` is then an empty placeholder.
    pub(super) reopening: Option<super::reopen::Reopening>,
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Opens a member over its raft log `storage` and its `backend`. `now_ms` is the shell's
    /// monotonic clock; it also seeds proposal IDs so a restart does not reuse old ones.
    /// `secrets` draws token prefixes and password salts: give it a CSPRNG seeded by the
    /// operating system (a fixed seed only in tests that replay transcripts).
    pub fn new(
        config: ServerConfig,
        storage: S,
        backend: B,
        now_ms: u64,
        secrets: SecretRng,
    ) -> Result<Self> {
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
        let config_tick_ms = config.tick_ms;
        let config_auto_compaction = config.auto_compaction;
        // A member that is the only voter of its configuration (a one-member cluster, fresh or
        // restarted) need not wait an election timeout to lead: it campaigns at once.
        let conf = node
            .storage()
            .initial_state()
            .map_err(|err| Error::Raft(err.to_string()))?
            .conf_state;
        let alone = conf.voters == [config.member_id] && conf.learners.is_empty();
        let mut server = Server {
            ids: IdGenerator::new(config.member_id, now_ms),
            leadership: Leadership::new(term, state.applied_index),
            config,
            node,
            backend,
            state,
            pending: Pending::default(),
            outputs: Vec::new(),
            now_ms,
            // The first version check and attributes publish go out on the first tick with
            // a known leader.
            schedule: Schedule::new(
                now_ms,
                config_tick_ms,
                config_version_ticks,
                config_publish_ticks,
            ),
            // From the clock at start, as proposal IDs: a restarted member must not reuse a
            // context of its previous life that the leader may still hold.
            next_read_ctx: now_ms << 8,
            apply_queue: ApplyQueue::default(),
            defragmenting: None,
            last_snapshot_index: snapshot_index,
            rng,
            secrets,
            passwords: Default::default(),
            attrs_applied: false,
            alarm_raises: Default::default(),
            corrupt: super::corrupt::CorruptCheck::new(config_initial_corrupt_check),
            forwards: Default::default(),
            auto_compactor: super::auto_compaction::AutoCompactor::new(config_auto_compaction),
            peer_activity: Default::default(),
            versions,
            stats: ServerStats::default(),
            reopening: None,
        };
        if alone {
            server.campaign();
        }
        Ok(server)
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
        self.leadership.leader()
    }

    pub fn is_leader(&self) -> bool {
        self.leadership.leader() == self.config.member_id
    }

    pub fn term(&self) -> u64 {
        self.leadership.term()
    }

    pub fn applied_index(&self) -> u64 {
        self.state.applied_index
    }

    /// The applied state; `None` while it reopens after a snapshot from the leader
    /// ([`Output::OpenState`]): there is none to read until [`Server::state_opened`].
    pub fn state(&self) -> Option<&AppState> {
        (!self.is_reopening()).then_some(&self.state)
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The raft log storage, for the shell to persist a [`RaftWork`] into (the in-memory
    /// storage; a durable one is written by the shell directly).
    pub fn raft_storage_mut(&mut self) -> &mut S {
        self.node.storage_mut()
    }

    /// One raft tick (call every `tick_ms`, or let [`Server::poll_timeout`] say when), with
    /// the shell's monotonic clock. The leader also proposes revokes of expired leases and
    /// lease checkpoints here; requests past their deadline are answered "request timed out".
    /// While the state reopens, only raft, the deadlines and forwarding run (`super::reopen`).
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.schedule_next_tick(now_ms);
        self.node.tick();
        let proposals = self.pending.proposals.len();
        for client in self.pending.expire(self.now_ms) {
            self.respond_error(client, &Error::Timeout, 0);
        }
        self.stats.proposals_failed += (proposals - self.pending.proposals.len()) as u64;
        self.expire_token_waits();
        if self.is_reopening() {
            self.forwards_tick();
            return;
        }
        if self.is_leader() && self.now_ms >= self.schedule.next_lease_check_ms {
            self.schedule.next_lease_check_ms = self.now_ms + self.config.lease_check_interval_ms;
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
        if self.now_ms >= self.schedule.next_token_sweep_ms {
            self.schedule.next_token_sweep_ms = self.now_ms + 60_000;
            self.state.auth.sweep_tokens(self.now_ms);
        }
        self.version_tick();
        self.publish_tick();
        self.corrupt_tick();
        self.quota_tick();
        self.forwards_tick();
        self.auto_compaction_tick();
    }

    /// Starts an election now instead of waiting for the election timeout (an operator moving
    /// leadership in tests; a sole voter does it on its own when opened).
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

    /// A peer refused this member's messages because the cluster removed it (etcd's peers
    /// answer a removed member so): the member learns it is out before it applies its own
    /// removal, which it may never see. Answered with [`Output::Removed`].
    pub fn refused_as_removed(&mut self, by: u64) {
        tracing::warn!(
            by = format_args!("{by:x}"),
            "a peer refused this member as removed"
        );
        self.outputs.push(Output::Removed);
    }

    /// A raft message from a peer. A snapshot offered while the state reopens from the last
    /// one is refused (`super::reopen`): the leader offers it again later.
    pub fn step(&mut self, message: Message) {
        let offered = (message.r#type == MessageType::MsgSnap as i32).then(|| {
            let meta = message.snapshot.as_ref().and_then(|s| s.metadata.as_ref());
            meta.map_or(0, |m| m.index)
        });
        if let Some(index) = offered
            && self.is_reopening()
        {
            self.outputs.push(Output::SnapshotRefused { index });
            return;
        }
        // Messages from unknown peers or stale terms are the node's to ignore.
        let _ = self.node.step(message);
        // A snapshot raft did not take (it has the entries already, or a newer state) will never
        // come out of a `Ready`: the shell may drop the data it received for it.
        if let Some(index) = offered
            && self.node.pending_snapshot_index() != Some(index)
        {
            self.outputs.push(Output::SnapshotRefused { index });
        }
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

    pub(crate) fn header(&self) -> qraft_proto::etcdserverpb::ResponseHeader {
        header(
            self.config.cluster_id,
            self.config.member_id,
            self.state.mvcc.current_revision(),
            self.leadership.term(),
        )
    }

    pub(crate) fn respond_error(&mut self, client: RequestId, err: &Error, leader_hint: u64) {
        self.outputs.push(Output::Respond {
            id: client,
            response: error_response(err, leader_hint),
        });
    }
}
