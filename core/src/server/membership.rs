//! Membership requests: add, remove, update and promote members through raft conf changes.
//!
//! A change is proposed as a raft `ConfChange` whose `context` carries the member's record
//! (`qraftpb.ConfChangeContext`), so every member learns the new member's attributes when it
//! applies the change; `ConfChange.id` is the proposal ID the proposer answers its client by.

use prost::Message as _;
use qraft_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberPromoteResponse, MemberRemoveResponse,
    MemberUpdateResponse,
};
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{ConfChangeContext, MemberRecord, RaftAttributes};
use qraft_proto::raftpb::{ConfChange, ConfChangeType};
use rand::Rng;

use crate::backend::Backend;
use crate::error::Error;
use crate::raft::{RaftError, Storage};

use super::output::RequestId;
use super::pending::PendingProposal;
use super::state::AppState;
use super::state_machine::Server;

/// etcd allows one learner at a time.
const MAX_LEARNERS: usize = 1;

/// The client-facing view of a member record.
pub fn to_wire_member(record: &MemberRecord) -> Member {
    let attrs = record.member_attrs.clone().unwrap_or_default();
    let raft = record.raft_attrs.clone().unwrap_or_default();
    Member {
        id: record.id,
        name: attrs.name,
        peer_ur_ls: raft.peer_urls,
        client_ur_ls: attrs.client_urls,
        is_learner: raft.is_learner,
    }
}

/// What a membership request waits for, to build its response at apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Add(u64),
    Remove,
    Update,
    Promote,
}

impl AppState {
    pub fn wire_members(&self) -> Vec<Member> {
        self.members.values().map(to_wire_member).collect()
    }

    /// The response to a membership change once applied.
    pub fn member_change_response(&self, change: MemberChange) -> Out {
        let members = self.wire_members();
        match change {
            MemberChange::Add(id) => Out::MemberAdd(MemberAddResponse {
                header: None,
                member: self.members.get(&id).map(to_wire_member),
                members,
            }),
            MemberChange::Remove => Out::MemberRemove(MemberRemoveResponse {
                header: None,
                members,
            }),
            MemberChange::Update => Out::MemberUpdate(MemberUpdateResponse {
                header: None,
                members,
            }),
            MemberChange::Promote => Out::MemberPromote(MemberPromoteResponse {
                header: None,
                members,
            }),
        }
    }
}

impl<S: Storage, B: Backend> Server<S, B> {
    pub(crate) fn member_add(
        &mut self,
        client: RequestId,
        request: MemberAddRequest,
    ) -> Result<(), (Error, u64)> {
        self.may_add_member(request.is_learner)
            .map_err(|err| (err, 0))?;
        let urls_taken = self.state.members.values().any(|m| {
            m.raft_attrs
                .as_ref()
                .is_some_and(|r| r.peer_urls.iter().any(|u| request.peer_ur_ls.contains(u)))
        });
        if urls_taken {
            return Err((Error::PeerUrlExists, 0));
        }
        let learners = self
            .state
            .members
            .values()
            .filter(|m| m.raft_attrs.as_ref().is_some_and(|r| r.is_learner))
            .count();
        if request.is_learner && learners >= MAX_LEARNERS {
            return Err((Error::TooManyLearners, 0));
        }
        // The generator is seeded alike at every start of this member, so it draws again the
        // IDs it issued before a restart: skip those still in use and those removed (a member
        // with a removed ID would be refused by every peer and could never join).
        let id = loop {
            let id = self.rng.random::<u64>();
            if id != 0
                && !self.state.members.contains_key(&id)
                && !self.state.removed_members.contains(&id)
            {
                break id;
            }
        };
        let member = MemberRecord {
            id,
            raft_attrs: Some(RaftAttributes {
                peer_urls: request.peer_ur_ls,
                is_learner: request.is_learner,
            }),
            ..Default::default()
        };
        let kind = if request.is_learner {
            ConfChangeType::ConfChangeAddLearnerNode
        } else {
            ConfChangeType::ConfChangeAddNode
        };
        self.propose_member_change(client, kind, member, false, MemberChange::Add(id))
    }

    pub(crate) fn member_remove(&mut self, client: RequestId, id: u64) -> Result<(), (Error, u64)> {
        self.may_remove_member(id).map_err(|err| (err, 0))?;
        let member = self
            .state
            .members
            .get(&id)
            .cloned()
            .ok_or((Error::MemberNotFound, 0))?;
        self.propose_member_change(
            client,
            ConfChangeType::ConfChangeRemoveNode,
            member,
            false,
            MemberChange::Remove,
        )
    }

    pub(crate) fn member_update(
        &mut self,
        client: RequestId,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<(), (Error, u64)> {
        let mut member = self
            .state
            .members
            .get(&id)
            .cloned()
            .ok_or((Error::MemberNotFound, 0))?;
        let is_learner = member.raft_attrs.as_ref().is_some_and(|r| r.is_learner);
        member.raft_attrs = Some(RaftAttributes {
            peer_urls,
            is_learner,
        });
        self.propose_member_change(
            client,
            ConfChangeType::ConfChangeUpdateNode,
            member,
            false,
            MemberChange::Update,
        )
    }

    /// Promotes a learner to voter, only on the leader (which knows how far the learner got)
    /// and only once it has caught up to 90 % of the leader's log, as etcd.
    pub(crate) fn member_promote(
        &mut self,
        client: RequestId,
        id: u64,
    ) -> Result<(), (Error, u64)> {
        let mut member = self
            .state
            .members
            .get(&id)
            .cloned()
            .ok_or((Error::MemberNotFound, 0))?;
        if !member.raft_attrs.as_ref().is_some_and(|r| r.is_learner) {
            return Err((Error::MemberNotLearner, 0));
        }
        if !self.is_leader() {
            let err = if self.leadership.leader() == 0 {
                Error::NoLeader
            } else {
                Error::NotLeader
            };
            return Err((err, self.leadership.leader()));
        }
        let status = self.node.status();
        let matched = status.progress.get(&id).map_or(0, |p| p.matched);
        let leader_last = status
            .progress
            .get(&self.config.member_id)
            .map_or(0, |p| p.matched);
        if (matched as f64) < (leader_last as f64) * 0.9 {
            return Err((Error::LearnerNotReady, 0));
        }
        self.may_promote_member().map_err(|err| (err, 0))?;
        if let Some(raft) = member.raft_attrs.as_mut() {
            raft.is_learner = false;
        }
        self.propose_member_change(
            client,
            ConfChangeType::ConfChangeAddNode,
            member,
            true,
            MemberChange::Promote,
        )
    }

    fn propose_member_change(
        &mut self,
        client: RequestId,
        kind: ConfChangeType,
        member: MemberRecord,
        is_promote: bool,
        change: MemberChange,
    ) -> Result<(), (Error, u64)> {
        if self.leadership.leader() == 0 {
            return Err((Error::NoLeader, 0));
        }
        let id = self.ids.next_id();
        let node_id = member.id;
        let context = ConfChangeContext {
            member: Some(member),
            is_promote,
        };
        let cc = ConfChange {
            id,
            r#type: kind as i32,
            node_id,
            context: context.encode_to_vec().into(),
        };
        match self.node.propose_conf_change(cc) {
            Ok(()) => {
                let reply = None;
                self.pending.proposals.insert(
                    id,
                    PendingProposal {
                        client: Some(client),
                        deadline_ms: self.now_ms + self.config.request_timeout_ms,
                        reply,
                        sign_in_retry: None,
                    },
                );
                self.pending.member_changes.insert(id, change);
                Ok(())
            }
            Err(RaftError::ProposalDropped { leader_hint }) => Err((
                if leader_hint == 0 {
                    Error::NoLeader
                } else {
                    Error::NotLeader
                },
                leader_hint,
            )),
            // An unsafe change (e.g. one that would lose quorum) is refused up front.
            Err(RaftError::ConfChangeRefused(_)) => Err((Error::MemberNotEnoughStarted, 0)),
            Err(err) => Err((Error::Raft(err.to_string()), 0)),
        }
    }
}
