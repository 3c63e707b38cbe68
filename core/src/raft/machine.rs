//! The raft state machine: roles, terms, timers and the message outbox.

use super::confchange;
use super::config::Config;
use super::errors::RaftError;
use super::log::RaftLog;
use super::read_only::{ReadOnly, ReadState};
use super::storage::{Storage, entry_size};
use super::tracker::{Progress, ProgressTracker};
use prost::bytes::Bytes;
use qraft_proto::raftpb::{ConfState, Entry, HardState, Message, MessageType};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt;

/// The id meaning "nobody".
pub const NONE: u64 = 0;
/// Context of a vote request sent because of a leadership transfer: voters must grant it even if
/// they recently heard from the (old) leader.
pub const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateRole {
    #[default]
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

impl fmt::Display for StateRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Follower => "Follower",
            Self::PreCandidate => "PreCandidate",
            Self::Candidate => "Candidate",
            Self::Leader => "Leader",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignType {
    PreElection,
    Election,
    Transfer,
}

/// The raft algorithm proper. Embedders use [`super::RawNode`]; this type is public for status
/// inspection in tests.
pub struct Raft<S> {
    pub id: u64,
    pub term: u64,
    pub vote: u64,
    pub raft_log: RaftLog<S>,
    pub trk: ProgressTracker,
    pub role: StateRole,
    pub leader_id: u64,
    /// Set while a leadership transfer to this node is in progress.
    pub lead_transferee: Option<u64>,
    /// Index of the last conf-change entry proposed; a new one is refused until it is applied.
    pub pending_conf_index: u64,
    pub uncommitted_size: u64,
    pub read_only: ReadOnly,
    pub read_states: Vec<ReadState>,
    /// Reads received before this leader committed an entry of its term; answered once it has.
    pub pending_read_index_msgs: Vec<Message>,
    /// Messages that may be sent right away.
    pub msgs: Vec<Message>,
    /// Messages that may only be sent once the current `Ready`'s state is persisted.
    pub msgs_after_append: Vec<Message>,
    pub election_elapsed: usize,
    pub heartbeat_elapsed: usize,
    pub randomized_election_timeout: usize,
    pub cfg: Config,
    rng: SmallRng,
}

impl<S: Storage> Raft<S> {
    pub fn new(cfg: &Config, storage: S) -> Result<Self, RaftError> {
        cfg.validate()?;
        let state = storage.initial_state()?;
        let raft_log = RaftLog::new(storage)?;
        let mut r = Raft {
            id: cfg.id,
            term: 0,
            vote: NONE,
            raft_log,
            trk: ProgressTracker::new(cfg.max_inflight_msgs, cfg.max_inflight_bytes),
            role: StateRole::Follower,
            leader_id: NONE,
            lead_transferee: None,
            pending_conf_index: 0,
            uncommitted_size: 0,
            read_only: ReadOnly::new(cfg.read_only_option),
            read_states: Vec::new(),
            pending_read_index_msgs: Vec::new(),
            msgs: Vec::new(),
            msgs_after_append: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: cfg.election_tick,
            cfg: cfg.clone(),
            rng: SmallRng::seed_from_u64(cfg.seed),
        };
        r.apply_conf_state(&state.conf_state)?;
        let hs = state.hard_state;
        if hs != HardState::default() {
            r.term = hs.term;
            r.vote = hs.vote;
            r.raft_log.commit_to(hs.commit);
        }
        if cfg.applied > 0 {
            r.raft_log.applied_to(cfg.applied.min(r.raft_log.committed));
        }
        r.become_follower(r.term, NONE);
        Ok(r)
    }

    pub(crate) fn apply_conf_state(&mut self, cs: &ConfState) -> Result<(), RaftError> {
        let (config, progress) = confchange::restore(
            cs,
            self.raft_log.last_index(),
            self.cfg.max_inflight_msgs,
            self.cfg.max_inflight_bytes,
        )?;
        self.trk.config = config;
        self.trk.progress = progress;
        Ok(())
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.raft_log.committed,
        }
    }

    /// May this node campaign? Only voters that aren't waiting to persist a snapshot.
    pub fn promotable(&self) -> bool {
        self.trk
            .progress
            .get(&self.id)
            .is_some_and(|p| !p.is_learner)
            && !self.raft_log.has_pending_snapshot()
    }

    pub fn is_learner(&self) -> bool {
        self.trk
            .progress
            .get(&self.id)
            .is_some_and(|p| p.is_learner)
    }

    // ---- outbox ----

    /// Queues `m`. Responses that acknowledge persisted state (appends, votes) go to the
    /// after-persistence queue; everything else may go out immediately.
    pub(crate) fn send(&mut self, mut m: Message) {
        if m.from == NONE {
            m.from = self.id;
        }
        let t = m.r#type();
        let carries_own_term = matches!(
            t,
            MessageType::MsgVote
                | MessageType::MsgVoteResp
                | MessageType::MsgPreVote
                | MessageType::MsgPreVoteResp
        );
        // Proposals and forwarded reads carry no term: the receiver treats them as local.
        if !carries_own_term && t != MessageType::MsgProp && t != MessageType::MsgReadIndex {
            m.term = self.term;
        }
        if matches!(
            t,
            MessageType::MsgAppResp | MessageType::MsgVoteResp | MessageType::MsgPreVoteResp
        ) {
            self.msgs_after_append.push(m);
        } else {
            self.msgs.push(m);
        }
    }

    // ---- role transitions ----

    fn reset(&mut self, term: u64) {
        if self.term != term {
            self.term = term;
            self.vote = NONE;
        }
        self.leader_id = NONE;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.reset_randomized_election_timeout();
        self.lead_transferee = None;
        self.trk.reset_votes();
        let last = self.raft_log.last_index();
        let id = self.id;
        for (&pid, p) in self.trk.progress.iter_mut() {
            let is_learner = p.is_learner;
            *p = Progress::new(
                last + 1,
                self.cfg.max_inflight_msgs,
                self.cfg.max_inflight_bytes,
            );
            p.is_learner = is_learner;
            if pid == id {
                p.matched = last;
            }
        }
        self.pending_conf_index = 0;
        self.uncommitted_size = 0;
        self.read_only = ReadOnly::new(self.cfg.read_only_option);
        self.pending_read_index_msgs.clear();
    }

    pub fn reset_randomized_election_timeout(&mut self) {
        let e = self.cfg.election_tick;
        self.randomized_election_timeout = e + self.rng.random_range(0..e);
    }

    pub fn become_follower(&mut self, term: u64, leader_id: u64) {
        self.reset(term);
        self.leader_id = leader_id;
        self.role = StateRole::Follower;
    }

    pub fn become_pre_candidate(&mut self) {
        // No term change and no vote: a pre-candidate only asks whether it *could* win.
        self.trk.reset_votes();
        self.leader_id = NONE;
        self.role = StateRole::PreCandidate;
    }

    pub fn become_candidate(&mut self) {
        self.reset(self.term + 1);
        self.vote = self.id;
        self.role = StateRole::Candidate;
    }

    pub fn become_leader(&mut self) {
        self.reset(self.term);
        self.leader_id = self.id;
        self.role = StateRole::Leader;
        if let Some(p) = self.trk.progress.get_mut(&self.id) {
            p.become_replicate();
            p.recent_active = true;
        }
        // Conf changes in the uncommitted tail may be pending; be conservative.
        self.pending_conf_index = self.raft_log.last_index();
        // An empty entry of the new term: committing it commits everything before it and lets
        // the leader learn its commit index (§5.4.2, and needed by ReadIndex).
        self.append_entries(vec![Entry::default()]);
        tracing::debug!(id = self.id, term = self.term, "became leader");
    }

    /// Appends proposals to the leader's log. Returns false (dropping them) when they would
    /// exceed the uncommitted size limit.
    pub(crate) fn append_entries(&mut self, mut entries: Vec<Entry>) -> bool {
        let last = self.raft_log.last_index();
        let size: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        if self.uncommitted_size > 0
            && size > 0
            && self.uncommitted_size + size > self.cfg.max_uncommitted_entries_size
        {
            return false;
        }
        self.uncommitted_size += size;
        for (i, e) in entries.iter_mut().enumerate() {
            e.term = self.term;
            e.index = last + 1 + i as u64;
        }
        let last = self.raft_log.append(entries);
        // The leader's own acknowledgement, effective once the entries are persisted.
        self.send(Message {
            r#type: MessageType::MsgAppResp as i32,
            to: self.id,
            index: last,
            ..Default::default()
        });
        true
    }

    pub(crate) fn reduce_uncommitted_size(&mut self, entries: &[Entry]) {
        if self.role != StateRole::Leader {
            return;
        }
        let size: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        self.uncommitted_size = self.uncommitted_size.saturating_sub(size);
    }

    // ---- timers ----

    pub fn tick(&mut self) {
        if self.role == StateRole::Leader {
            self.tick_heartbeat();
        } else {
            self.tick_election();
        }
    }

    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.hup(CampaignType::PreElection);
        }
    }

    fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_tick {
            self.election_elapsed = 0;
            if self.cfg.check_quorum {
                self.check_quorum();
            }
            if self.role == StateRole::Leader && self.lead_transferee.is_some() {
                // The transfer didn't finish within an election timeout: give up on it.
                self.lead_transferee = None;
            }
        }
        if self.role != StateRole::Leader {
            return;
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat(None);
        }
    }

    /// Steps down unless a quorum was heard from during the last election timeout.
    fn check_quorum(&mut self) {
        if !self.trk.quorum_active(self.id) {
            tracing::debug!(id = self.id, term = self.term, "lost quorum, stepping down");
            self.become_follower(self.term, NONE);
            return;
        }
        let id = self.id;
        for (&pid, p) in self.trk.progress.iter_mut() {
            p.recent_active = pid == id;
        }
    }

    // ---- elections ----

    /// Starts an election (or pre-election) unless this node can't or shouldn't.
    pub fn hup(&mut self, t: CampaignType) {
        if self.role == StateRole::Leader || !self.promotable() {
            return;
        }
        if self.has_unapplied_conf_change() {
            // Its effect on the configuration isn't known yet.
            return;
        }
        let t = if t == CampaignType::PreElection && !self.cfg.pre_vote {
            CampaignType::Election
        } else {
            t
        };
        self.campaign(t);
    }

    fn has_unapplied_conf_change(&self) -> bool {
        let log = &self.raft_log;
        let lo = log.applied.max(log.first_index() - 1) + 1;
        if log.committed < lo {
            return false;
        }
        log.slice(lo, log.committed + 1, u64::MAX)
            .map(|es| es.iter().any(confchange::is_conf_change))
            .unwrap_or(false)
    }

    pub fn campaign(&mut self, t: CampaignType) {
        let (vote_type, term) = if t == CampaignType::PreElection {
            self.become_pre_candidate();
            (MessageType::MsgPreVote, self.term + 1)
        } else {
            self.become_candidate();
            (MessageType::MsgVote, self.term)
        };
        let resp_type = if vote_type == MessageType::MsgPreVote {
            MessageType::MsgPreVoteResp
        } else {
            MessageType::MsgVoteResp
        };
        // Our own vote counts once it is persisted (stepped back in at `advance`).
        self.send(Message {
            r#type: resp_type as i32,
            to: self.id,
            term,
            ..Default::default()
        });
        let context = if t == CampaignType::Transfer {
            Bytes::from_static(CAMPAIGN_TRANSFER)
        } else {
            Bytes::new()
        };
        let (last_index, last_term) = (self.raft_log.last_index(), self.raft_log.last_term());
        for id in self.trk.voter_ids() {
            if id == self.id {
                continue;
            }
            self.send(Message {
                r#type: vote_type as i32,
                to: id,
                term,
                index: last_index,
                log_term: last_term,
                context: context.clone(),
                ..Default::default()
            });
        }
    }

    /// Total size of `entries` as charged against message limits.
    pub fn entries_size(entries: &[Entry]) -> u64 {
        entries.iter().map(entry_size).sum()
    }
}
