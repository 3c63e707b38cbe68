//! Requests this member proposed or is reading for, waiting for their outcome.

use std::collections::BTreeMap;

use qraft_proto::etcdserverpb::{DowngradeRequest, RangeRequest, TxnRequest};
use qraft_proto::qraftpb::client_response::Response;
use qraft_proto::raftpb::Entry;

use super::membership::MemberChange;
use super::output::RequestId;
use super::passwords::SignInRetry;
use super::token_wait::TokenWait;

/// A proposal waiting to be applied, keyed by its proposal ID.
#[derive(Debug, Clone)]
pub struct PendingProposal {
    /// `None` for proposals the member makes on its own (lease revokes, checkpoints).
    pub client: Option<RequestId>,
    pub deadline_ms: u64,
    /// The answer once applied, when it is not the applied request's own response.
    pub reply: Option<Response>,
    /// For a token entry: the sign-in to run again if apply refuses it for a stale auth
    /// revision.
    pub sign_in_retry: Option<SignInRetry>,
}

/// A linearizable read waiting for its read index to be applied.
#[derive(Debug, Clone)]
pub enum ReadKind {
    Range(RangeRequest),
    Txn(TxnRequest),
    /// A lease renewal, done only once a quorum confirmed this member still leads in `term`
    /// (an isolated leader must not extend a lease the real leader may expire).
    KeepAlive {
        lease: i64,
        term: u64,
    },
    /// Not a read: a downgrade request decided by the leader once its barrier is applied.
    Downgrade(DowngradeRequest),
    /// Not a read: a sign-in, checked once everything committed before it is applied here
    /// (etcd's Authenticate starts with a linearizable barrier), so a member that has not
    /// applied `auth enable` or a new user yet does not refuse it.
    Authenticate {
        name: String,
        password: String,
    },
}

#[derive(Debug, Clone)]
pub struct PendingRead {
    pub client: RequestId,
    pub request: ReadKind,
    pub deadline_ms: u64,
}

/// Reads that share one ReadIndex round.
#[derive(Debug, Clone, Default)]
pub struct ReadBatch {
    pub reads: Vec<PendingRead>,
    /// Set once raft confirmed the leader's commit index for this round.
    pub read_index: Option<u64>,
}

/// Ordered maps only: expiry walks them, and the core's outputs must not depend on hash order.
#[derive(Debug, Default)]
pub struct Pending {
    pub proposals: BTreeMap<u64, PendingProposal>,
    /// Proposals accepted since the last `ready()` (their IDs and entries, in order), not yet
    /// handed to raft: `Server::ready` proposes them all in one `MsgProp`, so a turn's writes
    /// travel as one append to each follower (and, on a follower, one message to the leader)
    /// instead of one message per write.
    pub unproposed: Vec<(u64, Entry)>,
    /// Requests whose token names a sign-in not applied here yet, in arrival order
    /// (`super::token_wait`).
    pub(super) token_waits: Vec<TokenWait>,
    /// For membership proposals: which response to build once applied.
    pub member_changes: BTreeMap<u64, MemberChange>,
    /// Reads that arrived while a ReadIndex round was in flight; they go in the next round.
    pub reads_waiting: Vec<PendingRead>,
    /// ReadIndex rounds, keyed by their round number (see `read_ctx_bytes`), in issue order.
    pub read_batches: BTreeMap<u64, ReadBatch>,
    /// Sign-ins whose token entry apply refused for a stale auth revision, in apply order,
    /// to start again after the batch (`Server::retry_sign_ins`).
    pub sign_in_retries: Vec<(RequestId, SignInRetry)>,
}

impl Pending {
    /// Removes every request whose deadline passed; returns the client IDs to answer
    /// "request timed out".
    pub fn expire(&mut self, now_ms: u64) -> Vec<RequestId> {
        let mut timed_out = Vec::new();
        self.proposals.retain(|_, p| {
            let keep = p.deadline_ms > now_ms;
            if !keep && let Some(client) = p.client {
                timed_out.push(client);
            }
            keep
        });
        let proposals = &self.proposals;
        self.member_changes
            .retain(|id, _| proposals.contains_key(id));
        let mut keep_read = |r: &PendingRead| {
            let keep = r.deadline_ms > now_ms;
            if !keep {
                timed_out.push(r.client);
            }
            keep
        };
        self.reads_waiting.retain(&mut keep_read);
        for batch in self.read_batches.values_mut() {
            batch.reads.retain(&mut keep_read);
        }
        self.read_batches.retain(|_, b| !b.reads.is_empty());
        timed_out.sort_unstable();
        timed_out
    }
}
