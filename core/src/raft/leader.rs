//! The leader role: replication, flow control, commit, reads and leadership transfer.

use super::confchange::{self, Changer, ConfChangeError, ConfChangeProposal};
use super::errors::RaftError;
use super::machine::{NONE, Raft, StateRole};
use super::read_only::{ReadOnlyOption, ReadState};
use super::storage::{Storage, StorageError};
use super::tracker::{ProgressState, VoteResult};
use prost::bytes::Bytes;
use qraft_proto::raftpb::{ConfChangeType, ConfChangeV2, ConfState, Entry, Message, MessageType};
use std::collections::BTreeMap;

impl<S: Storage> Raft<S> {
    pub(crate) fn step_leader(&mut self, mut m: Message) -> Result<(), RaftError> {
        match m.r#type() {
            MessageType::MsgBeat => {
                self.bcast_heartbeat(None);
                return Ok(());
            }
            MessageType::MsgProp => return self.handle_proposal(&mut m),
            MessageType::MsgReadIndex => {
                self.handle_read_index(m);
                return Ok(());
            }
            _ => {}
        }
        let from = m.from;
        let Some(pr) = self.trk.progress.get_mut(&from) else {
            return Ok(());
        };
        match m.r#type() {
            MessageType::MsgAppResp => {
                pr.recent_active = true;
                if m.reject {
                    let mut hint = m.reject_hint;
                    if m.log_term > 0 {
                        hint = self
                            .raft_log
                            .find_conflict_by_term(m.reject_hint, m.log_term)
                            .0;
                    }
                    let Some(pr) = self.trk.progress.get_mut(&from) else {
                        return Ok(());
                    };
                    if pr.maybe_decr_to(m.index, hint) {
                        if pr.state == ProgressState::Replicate {
                            pr.become_probe();
                        }
                        self.send_append(from);
                    }
                    return Ok(());
                }
                let old_paused = pr.is_paused();
                if pr.maybe_update(m.index)
                    || (pr.matched == m.index && pr.state == ProgressState::Probe)
                {
                    match pr.state {
                        ProgressState::Probe => pr.become_replicate(),
                        ProgressState::Snapshot
                            if pr.matched + 1 >= self.raft_log.first_index() =>
                        {
                            pr.become_probe();
                            pr.become_replicate();
                        }
                        ProgressState::Snapshot => {}
                        ProgressState::Replicate => pr.inflights.free_le(m.index),
                    }
                    if self.maybe_commit() {
                        self.release_pending_read_index_msgs();
                        self.bcast_append();
                    } else if from != self.id && old_paused {
                        self.send_append(from);
                    }
                    if from != self.id {
                        while self.maybe_send_append(from, false) {}
                    }
                    if self.lead_transferee == Some(from)
                        && self.trk.progress.get(&from).map(|p| p.matched)
                            == Some(self.raft_log.last_index())
                    {
                        self.send_timeout_now(from);
                    }
                }
            }
            MessageType::MsgHeartbeatResp => {
                pr.recent_active = true;
                pr.msg_app_flow_paused = false;
                if pr.state == ProgressState::Replicate && pr.inflights.full() {
                    // Appends may have been lost: let one more through per heartbeat, so a
                    // follower that missed them answers (with a rejection) and replication resumes.
                    pr.inflights.free_first_one();
                }
                if pr.matched < self.raft_log.last_index() || pr.state == ProgressState::Probe {
                    self.send_append(from);
                }
                if self.read_only.option != ReadOnlyOption::Safe || m.context.is_empty() {
                    return Ok(());
                }
                let Some(acks) = self.read_only.recv_ack(from, &m.context) else {
                    return Ok(());
                };
                let votes: BTreeMap<u64, bool> = acks.iter().map(|&id| (id, true)).collect();
                if self.trk.config.voters.vote_result(&votes) != VoteResult::Won {
                    return Ok(());
                }
                for rs in self.read_only.advance(&m.context) {
                    self.respond_to_read_index(rs.request, rs.index);
                }
            }
            MessageType::MsgSnapStatus => {
                if pr.state != ProgressState::Snapshot {
                    return Ok(());
                }
                if m.reject {
                    pr.pending_snapshot = 0;
                }
                pr.become_probe();
                // Wait for a heartbeat response before probing, the follower may still be busy
                // installing the snapshot.
                pr.msg_app_flow_paused = true;
            }
            MessageType::MsgUnreachable if pr.state == ProgressState::Replicate => {
                pr.become_probe();
            }
            MessageType::MsgTransferLeader => {
                if pr.is_learner {
                    tracing::debug!(to = from, "refusing to transfer leadership to a learner");
                    return Ok(());
                }
                let transferee = from;
                if self.lead_transferee == Some(transferee) || transferee == self.id {
                    return Ok(());
                }
                self.election_elapsed = 0;
                self.lead_transferee = Some(transferee);
                if pr.matched == self.raft_log.last_index() {
                    self.send_timeout_now(transferee);
                } else {
                    // Catch it up first; the TimeoutNow follows its acknowledgement.
                    self.send_append(transferee);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_proposal(&mut self, m: &mut Message) -> Result<(), RaftError> {
        if m.entries.is_empty() || !self.trk.progress.contains_key(&self.id) {
            return Err(RaftError::ProposalDropped { leader_hint: NONE });
        }
        if self.lead_transferee.is_some() {
            return Err(RaftError::ProposalDropped { leader_hint: NONE });
        }
        for i in 0..m.entries.len() {
            let Ok(Some(cc)) = ConfChangeProposal::from_entry(&m.entries[i]) else {
                continue;
            };
            if let Err(e) = self.check_conf_change(&cc.as_v2()) {
                tracing::debug!(error = %e, "ignoring conf change proposal");
                if m.from == self.id || m.from == NONE {
                    return Err(e.into());
                }
                // Forwarded by a follower: keep the index sequence but neutralise the change.
                m.entries[i] = Entry::default();
                continue;
            }
            self.pending_conf_index = self.raft_log.last_index() + i as u64 + 1;
        }
        if !self.append_entries(std::mem::take(&mut m.entries)) {
            return Err(RaftError::ProposalDropped {
                leader_hint: self.id,
            });
        }
        self.bcast_append();
        Ok(())
    }

    /// Refuses unsafe membership changes: a second change while one is pending, changes that
    /// don't match the joint state, a result without voters, and promoting a learner that
    /// hasn't caught up (it would stall commits while it catches up).
    pub fn check_conf_change(&self, cc: &ConfChangeV2) -> Result<(), ConfChangeError> {
        if self.pending_conf_index > self.raft_log.applied {
            return Err(ConfChangeError::AlreadyPending);
        }
        let joint = self.trk.config.voters.is_joint();
        let leave = confchange::leaves_joint(cc);
        if joint && !leave {
            return Err(ConfChangeError::AlreadyJoint);
        }
        if !joint && leave {
            return Err(ConfChangeError::NotJoint);
        }
        self.changer().apply(cc)?;
        let leader_match = self.raft_log.last_index();
        for c in &cc.changes {
            if c.r#type == ConfChangeType::ConfChangeAddNode as i32
                && let Some(p) = self.trk.progress.get(&c.node_id)
                && p.is_learner
                && (p.matched as f64) < leader_match as f64 * 0.9
            {
                return Err(ConfChangeError::LearnerNotReady);
            }
        }
        Ok(())
    }

    pub(crate) fn changer(&self) -> Changer<'_> {
        Changer {
            config: &self.trk.config,
            progress: &self.trk.progress,
            last_index: self.raft_log.last_index(),
            max_inflight: self.cfg.max_inflight_msgs,
            max_inflight_bytes: self.cfg.max_inflight_bytes,
        }
    }

    /// Applies a committed conf change to the live configuration and returns the new one.
    pub fn apply_conf_change(&mut self, cc: &ConfChangeV2) -> Result<ConfState, RaftError> {
        let (config, progress) = self.changer().apply(cc)?;
        self.trk.config = config;
        self.trk.progress = progress;
        let cs = self.trk.config.to_conf_state();
        let still_voter = self
            .trk
            .progress
            .get(&self.id)
            .is_some_and(|p| !p.is_learner);
        if self.role == StateRole::Leader && !still_voter {
            // Removed or demoted: stop leading so the remaining voters elect a leader among
            // themselves as soon as their election timeout fires.
            self.become_follower(self.term, NONE);
            return Ok(cs);
        }
        if self.role != StateRole::Leader {
            if self.leader_id != NONE && !self.trk.config.voters.contains(self.leader_id) {
                // Our leader was removed: drop its lease at once so pre-votes (and check-quorum's
                // lease) don't delay electing a successor by a whole election timeout.
                self.leader_id = NONE;
            }
            return Ok(cs);
        }
        if self.maybe_commit() {
            self.bcast_append();
        } else {
            let ids: Vec<u64> = self.trk.progress.keys().copied().collect();
            for id in ids {
                if id != self.id {
                    self.maybe_send_append(id, false);
                }
            }
        }
        if let Some(t) = self.lead_transferee
            && !self.trk.config.voters.contains(t)
        {
            self.lead_transferee = None;
        }
        Ok(cs)
    }

    /// Commits what the quorum has acknowledged, if it includes an entry of the current term.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let index = self.trk.committed();
        self.raft_log.maybe_commit(index, self.term)
    }

    fn committed_entry_in_current_term(&self) -> bool {
        self.raft_log.term_or_zero(self.raft_log.committed) == self.term
    }

    fn release_pending_read_index_msgs(&mut self) {
        if !self.committed_entry_in_current_term() {
            return;
        }
        for m in std::mem::take(&mut self.pending_read_index_msgs) {
            self.handle_read_index(m);
        }
    }

    fn handle_read_index(&mut self, m: Message) {
        if self.trk.is_singleton() {
            let index = self.raft_log.committed;
            self.respond_to_read_index(m, index);
            return;
        }
        if !self.committed_entry_in_current_term() {
            // Our commit index may be stale until an entry of this term commits (thesis §6.4).
            self.pending_read_index_msgs.push(m);
            return;
        }
        let index = self.raft_log.committed;
        match self.read_only.option {
            ReadOnlyOption::Safe => {
                let ctx = m
                    .entries
                    .first()
                    .map(|e| e.data.clone())
                    .unwrap_or_default();
                let ctx = self.read_only.add_request(index, m, ctx);
                let id = self.id;
                self.read_only.recv_ack(id, &ctx);
                self.bcast_heartbeat(Some(ctx));
            }
            ReadOnlyOption::LeaseBased => self.respond_to_read_index(m, index),
        }
    }

    fn respond_to_read_index(&mut self, req: Message, index: u64) {
        if req.from == NONE || req.from == self.id {
            let request_ctx = req
                .entries
                .first()
                .map(|e| e.data.clone())
                .unwrap_or_default();
            self.read_states.push(ReadState { index, request_ctx });
            return;
        }
        self.send(Message {
            r#type: MessageType::MsgReadIndexResp as i32,
            to: req.from,
            index,
            entries: req.entries,
            ..Default::default()
        });
    }

    fn send_timeout_now(&mut self, to: u64) {
        self.send(Message {
            r#type: MessageType::MsgTimeoutNow as i32,
            to,
            ..Default::default()
        });
    }

    pub(crate) fn bcast_append(&mut self) {
        let ids: Vec<u64> = self.trk.progress.keys().copied().collect();
        for id in ids {
            if id != self.id {
                self.send_append(id);
            }
        }
    }

    pub(crate) fn send_append(&mut self, to: u64) {
        self.maybe_send_append(to, true);
    }

    /// Sends the next batch of entries (or a snapshot) to `to` if flow control allows. With
    /// `send_if_empty`, an empty append still goes out (to carry the commit index or probe).
    pub(crate) fn maybe_send_append(&mut self, to: u64, send_if_empty: bool) -> bool {
        let Some(pr) = self.trk.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let (next, recent_active) = (pr.next, pr.recent_active);
        let prev_term = self.raft_log.term(next - 1);
        let entries = self.raft_log.entries_from(next, self.cfg.max_size_per_msg);
        let (prev_term, entries) = match (prev_term, entries) {
            (Ok(t), Ok(e)) => (t, e),
            _ => return self.send_snapshot(to, next - 1, recent_active),
        };
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let last = entries.last().map(|e| e.index);
        let bytes = Self::entries_size(&entries);
        let commit = self.raft_log.committed;
        if let Some(pr) = self.trk.progress.get_mut(&to) {
            pr.sent_entries(last, bytes);
        }
        self.send(Message {
            r#type: MessageType::MsgApp as i32,
            to,
            index: next - 1,
            log_term: prev_term,
            entries,
            commit,
            ..Default::default()
        });
        true
    }

    fn send_snapshot(&mut self, to: u64, request_index: u64, recent_active: bool) -> bool {
        if !recent_active {
            // Don't ship a large snapshot to a node we haven't heard from.
            return false;
        }
        let snapshot = match self.raft_log.snapshot(request_index) {
            Ok(s) => s,
            Err(StorageError::SnapshotTemporarilyUnavailable) => return false,
            Err(e) => {
                tracing::error!(error = %e, to, "cannot get snapshot");
                return false;
            }
        };
        let index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        if index == 0 {
            return false;
        }
        if let Some(pr) = self.trk.progress.get_mut(&to) {
            pr.become_snapshot(index);
        }
        self.send(Message {
            r#type: MessageType::MsgSnap as i32,
            to,
            snapshot: Some(snapshot),
            ..Default::default()
        });
        true
    }

    /// Heartbeats carry `min(match, commit)` so a follower never commits past what it holds.
    pub(crate) fn bcast_heartbeat(&mut self, ctx: Option<Bytes>) {
        let ctx = ctx
            .or_else(|| self.read_only.last_pending_ctx())
            .unwrap_or_default();
        let committed = self.raft_log.committed;
        let targets: Vec<(u64, u64)> = self
            .trk
            .progress
            .iter()
            .filter(|(id, _)| **id != self.id)
            .map(|(&id, p)| (id, p.matched.min(committed)))
            .collect();
        for (to, commit) in targets {
            self.send(Message {
                r#type: MessageType::MsgHeartbeat as i32,
                to,
                commit,
                context: ctx.clone(),
                ..Default::default()
            });
        }
    }
}
