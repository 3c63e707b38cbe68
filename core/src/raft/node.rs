//! `RawNode`: the embedder's handle on a raft node.

use super::confchange::ConfChangeProposal;
use super::config::Config;
use super::errors::RaftError;
use super::machine::{CampaignType, NONE, Raft, StateRole};
use super::ready::{Ready, SoftState};
use super::storage::Storage;
use super::tracker::Progress;
use prost::bytes::Bytes;
use qraft_proto::raftpb::{ConfState, Entry, HardState, Message, MessageType};
use std::collections::BTreeMap;

/// Whether a snapshot sent to a follower arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotStatus {
    Finish,
    Failure,
}

/// A summary of the node's state, for status endpoints and tests.
#[derive(Debug, Clone)]
pub struct Status {
    pub id: u64,
    pub hard_state: HardState,
    pub soft_state: SoftState,
    pub applied: u64,
    pub conf_state: ConfState,
    /// Followers' progress; only filled in on the leader.
    pub progress: BTreeMap<u64, Progress>,
    pub lead_transferee: Option<u64>,
}

/// What the last `Ready` handed out, so `advance` knows what was persisted and applied.
#[derive(Debug, Default)]
struct InFlightReady {
    last_entry: Option<(u64, u64)>,
    snapshot_index: Option<u64>,
    applied_to: Option<u64>,
    self_messages: Vec<Message>,
}

/// A raft node driven by the embedder. Inputs: `tick`, `step`, `propose*`, `read_index`,
/// `transfer_leader`; output: `ready()` followed by `advance()` (see [`Ready`] for the rules).
/// All methods are synchronous and deterministic given the inputs and `Config::seed`.
pub struct RawNode<S> {
    pub raft: Raft<S>,
    prev_soft_state: SoftState,
    prev_hard_state: HardState,
    in_flight: Option<InFlightReady>,
}

impl<S: Storage> RawNode<S> {
    /// Starts (or restarts) a node from `storage`: the hard state, configuration and log
    /// persisted there are restored; `config.applied` says what the state machine already has.
    pub fn new(config: &Config, storage: S) -> Result<Self, RaftError> {
        let raft = Raft::new(config, storage)?;
        let prev_hard_state = raft.hard_state();
        let prev_soft_state = SoftState {
            leader_id: raft.leader_id,
            role: raft.role,
        };
        Ok(Self {
            raft,
            prev_soft_state,
            prev_hard_state,
            in_flight: None,
        })
    }

    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Starts an election now (with pre-vote if configured).
    pub fn campaign(&mut self) {
        let t = if self.raft.cfg.pre_vote {
            CampaignType::PreElection
        } else {
            CampaignType::Election
        };
        self.raft.hup(t);
    }

    /// Proposes `data` for the log. On a follower it is forwarded to the leader (unless
    /// forwarding is disabled); without a known leader it fails with `ProposalDropped`.
    pub fn propose(&mut self, data: Bytes) -> Result<(), RaftError> {
        self.propose_entries(vec![Entry {
            data,
            ..Default::default()
        }])
    }

    /// Proposes several entries in one message (cheaper than one `propose` each).
    pub fn propose_entries(&mut self, entries: Vec<Entry>) -> Result<(), RaftError> {
        self.raft.step(Message {
            r#type: MessageType::MsgProp as i32,
            from: self.raft.id,
            entries,
            ..Default::default()
        })
    }

    /// Proposes a membership change. On the leader, unsafe changes are refused with
    /// `ConfChangeRefused`; once committed, apply it with [`RawNode::apply_conf_change`].
    pub fn propose_conf_change(
        &mut self,
        cc: impl Into<ConfChangeProposal>,
    ) -> Result<(), RaftError> {
        let cc = cc.into();
        if self.raft.role == StateRole::Leader {
            self.raft.check_conf_change(&cc.as_v2())?;
        }
        self.propose_entries(vec![cc.to_entry()])
    }

    /// Applies a committed conf change; returns the configuration now in force (persist it).
    pub fn apply_conf_change(&mut self, cc: &ConfChangeProposal) -> Result<ConfState, RaftError> {
        self.raft.apply_conf_change(&cc.as_v2())
    }

    /// Feeds a message received from a peer.
    pub fn step(&mut self, m: Message) -> Result<(), RaftError> {
        let t = m.r#type();
        if matches!(
            t,
            MessageType::MsgHup
                | MessageType::MsgBeat
                | MessageType::MsgUnreachable
                | MessageType::MsgSnapStatus
                | MessageType::MsgCheckQuorum
        ) {
            return Err(RaftError::StepLocalMsg);
        }
        let is_response = matches!(
            t,
            MessageType::MsgAppResp
                | MessageType::MsgVoteResp
                | MessageType::MsgPreVoteResp
                | MessageType::MsgHeartbeatResp
        );
        if is_response && !self.raft.trk.progress.contains_key(&m.from) {
            return Err(RaftError::StepPeerNotFound);
        }
        self.raft.step(m)
    }

    /// Requests a linearizable read. `ctx` identifies it; the answer is a `ReadState` with the
    /// same context in a later `Ready`. Reads lost to a leader change get no answer: retry.
    pub fn read_index(&mut self, ctx: Bytes) -> Result<(), RaftError> {
        self.raft.step(Message {
            r#type: MessageType::MsgReadIndex as i32,
            entries: vec![Entry {
                data: ctx,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    /// Asks the leader to hand leadership to `to` (refused for learners).
    pub fn transfer_leader(&mut self, to: u64) -> Result<(), RaftError> {
        self.raft.step(Message {
            r#type: MessageType::MsgTransferLeader as i32,
            from: to,
            ..Default::default()
        })
    }

    pub fn report_unreachable(&mut self, id: u64) {
        let _ = self.raft.step(Message {
            r#type: MessageType::MsgUnreachable as i32,
            from: id,
            ..Default::default()
        });
    }

    pub fn report_snapshot(&mut self, id: u64, status: SnapshotStatus) {
        let _ = self.raft.step(Message {
            r#type: MessageType::MsgSnapStatus as i32,
            from: id,
            reject: status == SnapshotStatus::Failure,
            ..Default::default()
        });
    }

    fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: self.raft.leader_id,
            role: self.raft.role,
        }
    }

    /// The index of the snapshot raft accepted from the leader and has not yet handed out in a
    /// `Ready` (`None`: none pending).
    pub fn pending_snapshot_index(&self) -> Option<u64> {
        let snapshot = self.raft.raft_log.unstable.snapshot.as_ref()?;
        Some(snapshot.metadata.as_ref().map_or(0, |m| m.index))
    }

    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        self.soft_state() != self.prev_soft_state
            || (r.hard_state() != self.prev_hard_state && r.hard_state() != HardState::default())
            || r.raft_log.has_pending_snapshot()
            || !r.raft_log.unstable.entries.is_empty()
            || !r.msgs.is_empty()
            || !r.msgs_after_append.is_empty()
            || r.raft_log.has_next_committed_entries()
            || !r.read_states.is_empty()
    }

    /// Takes the work accumulated since the last call. Call [`RawNode::advance`] once it is done
    /// and before the next `ready()`.
    pub fn ready(&mut self) -> Ready {
        let r = &mut self.raft;
        let mut rd = Ready {
            entries: r.raft_log.unstable.entries.clone(),
            snapshot: r.raft_log.unstable.snapshot.clone(),
            committed_entries: r
                .raft_log
                .next_committed_entries(r.cfg.max_committed_size_per_ready),
            messages: std::mem::take(&mut r.msgs),
            read_states: std::mem::take(&mut r.read_states),
            ..Default::default()
        };
        let mut self_messages = Vec::new();
        for m in std::mem::take(&mut r.msgs_after_append) {
            if m.to == r.id {
                self_messages.push(m);
            } else {
                rd.persisted_messages.push(m);
            }
        }
        let ss = SoftState {
            leader_id: r.leader_id,
            role: r.role,
        };
        if ss != self.prev_soft_state {
            rd.soft_state = Some(ss);
            self.prev_soft_state = ss;
        }
        let hs = r.hard_state();
        if hs != self.prev_hard_state {
            rd.must_sync =
                hs.term != self.prev_hard_state.term || hs.vote != self.prev_hard_state.vote;
            rd.hard_state = Some(hs);
            self.prev_hard_state = hs;
        }
        rd.must_sync |= !rd.entries.is_empty() || rd.snapshot.is_some();
        self.in_flight = Some(InFlightReady {
            last_entry: rd.entries.last().map(|e| (e.index, e.term)),
            snapshot_index: rd
                .snapshot
                .as_ref()
                .and_then(|s| s.metadata.as_ref())
                .map(|m| m.index),
            applied_to: rd.committed_entries.last().map(|e| e.index),
            self_messages,
        });
        r.reduce_uncommitted_size(&rd.committed_entries);
        rd
    }

    /// Tells the node the last `Ready` was persisted, sent and applied as documented there.
    pub fn advance(&mut self) {
        let Some(done) = self.in_flight.take() else {
            return;
        };
        let r = &mut self.raft;
        if let Some(index) = done.snapshot_index {
            r.raft_log.stable_snap_to(index);
            r.raft_log.applied_to(index);
        }
        if let Some((index, term)) = done.last_entry {
            r.raft_log.stable_to(index, term);
        }
        if let Some(index) = done.applied_to {
            r.raft_log.applied_to(index);
            self.maybe_auto_leave_joint();
        }
        for m in done.self_messages {
            let _ = self.raft.step(m);
        }
    }

    /// With `auto_leave`, the leader proposes leaving the joint config once entering it applied.
    fn maybe_auto_leave_joint(&mut self) {
        let r = &mut self.raft;
        if r.role == StateRole::Leader
            && r.trk.config.auto_leave
            && r.raft_log.applied >= r.pending_conf_index
        {
            let leave = ConfChangeProposal::V2(Default::default());
            let mut entry = leave.to_entry();
            entry.r#type = qraft_proto::raftpb::EntryType::EntryConfChangeV2 as i32;
            if r.append_entries(vec![entry]) {
                r.pending_conf_index = r.raft_log.last_index();
                r.bcast_append();
            }
        }
    }

    pub fn status(&self) -> Status {
        let r = &self.raft;
        Status {
            id: r.id,
            hard_state: r.hard_state(),
            soft_state: self.soft_state(),
            applied: r.raft_log.applied,
            conf_state: r.trk.config.to_conf_state(),
            progress: if r.role == StateRole::Leader {
                r.trk.progress.clone()
            } else {
                BTreeMap::new()
            },
            lead_transferee: r.lead_transferee,
        }
    }

    pub fn leader_id(&self) -> u64 {
        self.raft.leader_id
    }

    pub fn is_leader(&self) -> bool {
        self.raft.role == StateRole::Leader && self.raft.leader_id != NONE
    }

    pub fn storage(&self) -> &S {
        &self.raft.raft_log.storage
    }

    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.raft.raft_log.storage
    }

    /// Consumes the node and returns its storage (what was persisted; the unstable part of
    /// the log is dropped, as a crash would).
    pub fn into_storage(self) -> S {
        self.raft.raft_log.storage
    }
}
