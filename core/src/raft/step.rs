//! Message handling common to all roles, and the follower and candidate roles.

use super::errors::RaftError;
use super::machine::{CAMPAIGN_TRANSFER, CampaignType, NONE, Raft, StateRole};
use super::read_only::{ReadOnlyOption, ReadState};
use super::storage::Storage;
use super::tracker::VoteResult;
use qraft_proto::raftpb::{Message, MessageType};

impl<S: Storage> Raft<S> {
    /// Processes one message (from a peer, or a local one such as `MsgHup` or `MsgProp`).
    pub fn step(&mut self, m: Message) -> Result<(), RaftError> {
        let t = m.r#type();
        if m.term == 0 {
            // Local message.
        } else if m.term > self.term {
            if matches!(t, MessageType::MsgVote | MessageType::MsgPreVote) {
                let force = m.context.as_ref() == CAMPAIGN_TRANSFER;
                let in_lease = self.cfg.check_quorum
                    && self.leader_id != NONE
                    && self.election_elapsed < self.cfg.election_tick;
                if !force && in_lease {
                    // We heard from a leader within the election timeout: don't let a node that
                    // is merely partitioned from it depose it.
                    return Ok(());
                }
            }
            match t {
                MessageType::MsgPreVote => {}
                MessageType::MsgPreVoteResp if !m.reject => {}
                MessageType::MsgApp | MessageType::MsgHeartbeat | MessageType::MsgSnap => {
                    self.become_follower(m.term, m.from)
                }
                _ => self.become_follower(m.term, NONE),
            }
        } else if m.term < self.term {
            if (self.cfg.check_quorum || self.cfg.pre_vote)
                && matches!(t, MessageType::MsgHeartbeat | MessageType::MsgApp)
            {
                // A stale leader (e.g. healed from a partition): tell it about the new term so
                // it steps down. Without this, with check-quorum/pre-vote, it could keep a
                // follower of ours from ever voting again.
                self.send(Message {
                    r#type: MessageType::MsgAppResp as i32,
                    to: m.from,
                    ..Default::default()
                });
            } else if t == MessageType::MsgPreVote {
                self.send(Message {
                    r#type: MessageType::MsgPreVoteResp as i32,
                    to: m.from,
                    term: self.term,
                    reject: true,
                    ..Default::default()
                });
            }
            return Ok(());
        }

        match t {
            MessageType::MsgHup => {
                let ct = if self.cfg.pre_vote {
                    CampaignType::PreElection
                } else {
                    CampaignType::Election
                };
                self.hup(ct);
                Ok(())
            }
            MessageType::MsgVote | MessageType::MsgPreVote => {
                self.handle_vote_request(m);
                Ok(())
            }
            _ => match self.role {
                StateRole::Leader => self.step_leader(m),
                StateRole::Candidate | StateRole::PreCandidate => self.step_candidate(m),
                StateRole::Follower => self.step_follower(m),
            },
        }
    }

    fn handle_vote_request(&mut self, m: Message) {
        let pre = m.r#type() == MessageType::MsgPreVote;
        let can_vote = self.vote == m.from
            || (self.vote == NONE && self.leader_id == NONE)
            || (pre && m.term > self.term);
        let resp_type = if pre {
            MessageType::MsgPreVoteResp
        } else {
            MessageType::MsgVoteResp
        };
        if can_vote && self.raft_log.is_up_to_date(m.index, m.log_term) {
            // The response carries the request's term so the candidate counts it (for a
            // pre-vote our own term may be lower).
            self.send(Message {
                r#type: resp_type as i32,
                to: m.from,
                term: m.term,
                ..Default::default()
            });
            if !pre {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            self.send(Message {
                r#type: resp_type as i32,
                to: m.from,
                term: self.term,
                reject: true,
                ..Default::default()
            });
        }
    }

    fn step_candidate(&mut self, m: Message) -> Result<(), RaftError> {
        let my_resp = if self.role == StateRole::PreCandidate {
            MessageType::MsgPreVoteResp
        } else {
            MessageType::MsgVoteResp
        };
        match m.r#type() {
            MessageType::MsgProp => {
                return Err(RaftError::ProposalDropped { leader_hint: NONE });
            }
            MessageType::MsgApp => {
                self.become_follower(m.term, m.from);
                self.handle_append(m);
            }
            MessageType::MsgHeartbeat => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(m);
            }
            MessageType::MsgSnap => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
            }
            t if t == my_resp => {
                self.trk.record_vote(m.from, !m.reject);
                let (_, _, result) = self.trk.tally_votes();
                match result {
                    VoteResult::Won => {
                        if self.role == StateRole::PreCandidate {
                            self.campaign(CampaignType::Election);
                        } else {
                            self.become_leader();
                            self.bcast_append();
                        }
                    }
                    VoteResult::Lost => self.become_follower(self.term, NONE),
                    VoteResult::Pending => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn step_follower(&mut self, mut m: Message) -> Result<(), RaftError> {
        match m.r#type() {
            MessageType::MsgProp => {
                if self.leader_id == NONE || self.cfg.disable_proposal_forwarding {
                    return Err(RaftError::ProposalDropped {
                        leader_hint: self.leader_id,
                    });
                }
                m.to = self.leader_id;
                self.send(m);
            }
            MessageType::MsgApp => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_append(m);
            }
            MessageType::MsgHeartbeat => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_heartbeat(m);
            }
            MessageType::MsgSnap => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_snapshot(m);
            }
            MessageType::MsgTransferLeader | MessageType::MsgReadIndex => {
                if self.leader_id == NONE {
                    return Err(RaftError::ProposalDropped { leader_hint: NONE });
                }
                m.to = self.leader_id;
                self.send(m);
            }
            MessageType::MsgTimeoutNow => {
                // The leader asks us to take over: campaign at once, even within its lease.
                self.hup(CampaignType::Transfer);
            }
            MessageType::MsgForgetLeader if self.read_only.option != ReadOnlyOption::LeaseBased => {
                self.leader_id = NONE;
            }
            MessageType::MsgReadIndexResp => {
                if let [entry] = m.entries.as_slice() {
                    self.read_states.push(ReadState {
                        index: m.index,
                        request_ctx: entry.data.clone(),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn handle_append(&mut self, m: Message) {
        if m.index < self.raft_log.committed {
            self.send(Message {
                r#type: MessageType::MsgAppResp as i32,
                to: m.from,
                index: self.raft_log.committed,
                ..Default::default()
            });
            return;
        }
        if let Some(last) = self
            .raft_log
            .maybe_append(m.index, m.log_term, m.commit, m.entries)
        {
            self.send(Message {
                r#type: MessageType::MsgAppResp as i32,
                to: m.from,
                index: last,
                ..Default::default()
            });
            return;
        }
        // Mismatch: hint the largest index whose term is <= the leader's term at m.index, so the
        // leader skips every entry of conflicting terms in one round trip.
        let hint = m.index.min(self.raft_log.last_index());
        let (hint_index, hint_term) = self.raft_log.find_conflict_by_term(hint, m.log_term);
        self.send(Message {
            r#type: MessageType::MsgAppResp as i32,
            to: m.from,
            index: m.index,
            reject: true,
            reject_hint: hint_index,
            log_term: hint_term,
            ..Default::default()
        });
    }

    fn handle_heartbeat(&mut self, m: Message) {
        self.raft_log.commit_to(m.commit);
        self.send(Message {
            r#type: MessageType::MsgHeartbeatResp as i32,
            to: m.from,
            context: m.context,
            ..Default::default()
        });
    }

    fn handle_snapshot(&mut self, m: Message) {
        let Some(snapshot) = m.snapshot else {
            return;
        };
        let index = if self.restore(snapshot) {
            self.raft_log.last_index()
        } else {
            self.raft_log.committed
        };
        self.send(Message {
            r#type: MessageType::MsgAppResp as i32,
            to: m.from,
            index,
            ..Default::default()
        });
    }

    /// Installs a snapshot from the leader. Returns false when it is stale or already covered
    /// by the log (then the log's commit index is just moved forward).
    fn restore(&mut self, snapshot: qraft_proto::raftpb::Snapshot) -> bool {
        let Some(meta) = snapshot.metadata.clone() else {
            return false;
        };
        if meta.index <= self.raft_log.committed {
            return false;
        }
        if self.role != StateRole::Follower {
            self.become_follower(self.term + 1, NONE);
            return false;
        }
        // The snapshot's configuration need not include us: a member added after the snapshot
        // was taken learns of its membership from the log entries that follow it.
        let cs = meta.conf_state.clone().unwrap_or_default();
        if self.raft_log.match_term(meta.index, meta.term) {
            self.raft_log.commit_to(meta.index);
            return false;
        }
        self.raft_log.restore(snapshot);
        if let Err(e) = self.apply_conf_state(&cs) {
            tracing::error!(error = %e, "snapshot carries an invalid configuration");
        }
        true
    }
}
