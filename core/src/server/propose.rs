//! Proposing: a request becomes a `qraftpb::InternalRequest` entry with an ID unique to this
//! member, carrying the proposer's user and auth revision for the checks at apply; the client
//! waits among the pending proposals until the entry is applied or its deadline passes. Refused before
//! raft sees it when there is no leader or too much is committed but not yet applied (etcd's
//! "too many requests"). Accepted proposals reach raft together at the next `ready()`, one
//! `MsgProp` per turn ([`Server::propose_accepted`]).

use prost::Message as _;
use qraft_proto::qraftpb::client_response::Response;
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::qraftpb::{InternalRequest, RequestHeader};
use qraft_proto::raftpb::Entry;

use crate::backend::Backend;
use crate::error::Error;
use crate::raft::Storage;

use super::output::RequestId;
use super::passwords::SignInRetry;
use super::pending::PendingProposal;
use super::state_machine::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// Proposes a request; `client` is answered when it is applied (or times out).
    pub(crate) fn propose(
        &mut self,
        client: Option<RequestId>,
        request: Request,
        username: String,
    ) -> std::result::Result<(), (Error, u64)> {
        self.propose_with_reply(client, request, username, None)
    }

    /// As [`Server::propose`], with the auth revision the request was checked at (rather than
    /// the current one), for checks made before proposing that apply compares; `retry` is the
    /// sign-in to start again if apply refuses the entry for that revision.
    pub(crate) fn propose_at_revision(
        &mut self,
        client: Option<RequestId>,
        request: Request,
        username: String,
        auth_revision: u64,
        retry: Option<SignInRetry>,
    ) -> std::result::Result<(), (Error, u64)> {
        let result = self.submit_proposal(
            client,
            request,
            username,
            None,
            Some((auth_revision, retry)),
        );
        if result.is_err() {
            self.stats.proposals_failed += 1;
        }
        result
    }

    /// As [`Server::propose`], answering `client` with `reply` once the request is applied.
    pub(crate) fn propose_with_reply(
        &mut self,
        client: Option<RequestId>,
        request: Request,
        username: String,
        reply: Option<Response>,
    ) -> std::result::Result<(), (Error, u64)> {
        let result = self.submit_proposal(client, request, username, reply, None);
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
        checked_at: Option<(u64, Option<SignInRetry>)>,
    ) -> std::result::Result<(), (Error, u64)> {
        let (auth_revision, sign_in_retry) = match checked_at {
            Some((revision, retry)) => (revision, retry),
            None => (self.state.auth.revision(), None),
        };
        if self.leadership.leader() == 0 {
            return Err((Error::NoLeader, 0));
        }
        if self
            .leadership
            .committed()
            .saturating_sub(self.state.applied_index)
            > self.config.max_unapplied_entries
        {
            return Err((Error::TooManyRequests, 0));
        }
        let id = self.ids.next_id();
        let internal = InternalRequest {
            header: Some(RequestHeader {
                id,
                username,
                auth_revision,
            }),
            id,
            request: Some(request),
        };
        let entry = Entry {
            data: internal.encode_to_vec().into(),
            ..Default::default()
        };
        self.pending.unproposed.push((id, entry));
        self.pending.proposals.insert(
            id,
            PendingProposal {
                client,
                deadline_ms: self.now_ms + self.config.request_timeout_ms,
                reply,
                sign_in_retry,
            },
        );
        Ok(())
    }

    /// Hands the proposals accepted since the last call to raft in one message (see
    /// `Pending::unproposed`). If raft drops them (no leader known, a leadership transfer
    /// under way, this member removed), each is answered as a refused proposal would have
    /// been: `no leader` or `not leader` with the leader's hint.
    pub(super) fn propose_accepted(&mut self) {
        if self.pending.unproposed.is_empty() {
            return;
        }
        let (ids, entries): (Vec<u64>, Vec<Entry>) = std::mem::take(&mut self.pending.unproposed)
            .into_iter()
            .unzip();
        let (err, hint) = match self.node.propose_entries(entries) {
            Ok(()) => return,
            Err(crate::raft::RaftError::ProposalDropped { leader_hint }) => (
                if leader_hint == 0 {
                    Error::NoLeader
                } else {
                    Error::NotLeader
                },
                leader_hint,
            ),
            Err(err) => (Error::Raft(err.to_string()), 0),
        };
        for id in ids {
            let Some(pending) = self.pending.proposals.remove(&id) else {
                continue;
            };
            self.stats.proposals_failed += 1;
            if let Some(client) = pending.client {
                self.respond_error(client, &err, hint);
            }
        }
    }

    /// Proposals the member makes on its own behalf run with root authority, as etcd's.
    pub(super) fn propose_internal(&mut self, request: Request) {
        let _ = self.propose(None, request, crate::auth::ROOT.to_string());
    }

    /// The number of the next ReadIndex round of this member. Its context on the wire is
    /// [`read_ctx_bytes`]: unique cluster-wide, as etcd's request IDs.
    pub(crate) fn next_read_ctx(&mut self) -> u64 {
        self.next_read_ctx += 1;
        self.next_read_ctx
    }
}

/// A ReadIndex context: the member ID then the member's round number, both big-endian, so two
/// members never issue the same context (the leader keeps one round per context).
pub(crate) fn read_ctx_bytes(member_id: u64, round: u64) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(16);
    ctx.extend_from_slice(&member_id.to_be_bytes());
    ctx.extend_from_slice(&round.to_be_bytes());
    ctx
}

/// The round number of a context from [`read_ctx_bytes`] if `member_id` issued it.
pub(crate) fn read_ctx_round(member_id: u64, ctx: &[u8]) -> Option<u64> {
    let (member, round) = ctx.split_first_chunk::<8>()?;
    let round: [u8; 8] = round.try_into().ok()?;
    (u64::from_be_bytes(*member) == member_id).then_some(u64::from_be_bytes(round))
}
