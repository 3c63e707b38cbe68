//! Linearizable reads through ReadIndex, batched: one round confirms every read that arrived
//! before it was issued.
//!
//! A read may only be served from state that includes every write committed before the read
//! arrived. Raft's ReadIndex gives the leader's commit index once a quorum confirmed the
//! leadership; the read is served when this member has applied up to it. Reads arriving while
//! a round is in flight wait for the next round (issued as soon as the current one returns),
//! so a burst of reads costs one heartbeat round, not one each.

use qraft_proto::etcdserverpb::{LeaseCheckpoint, LeaseCheckpointRequest};
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::internal_request::Request as Propose;

use crate::backend::Backend;
use crate::error::Error;
use crate::raft::Storage;

use super::output::{Output, RequestId};
use super::pending::{PendingRead, ReadBatch, ReadKind};
use super::propose::read_ctx_bytes;
use super::response::error_response;
use super::state_machine::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// Renews a lease once leadership in `term` was confirmed (etcd's `ensureLeadership`).
    fn keep_alive_confirmed(
        &mut self,
        client: RequestId,
        lease: i64,
        term: u64,
    ) -> Result<(), (Error, u64)> {
        if !self.is_leader() || self.leadership.term() != term {
            let err = if self.leadership.leader() == 0 {
                Error::NoLeader
            } else {
                Error::NotLeader
            };
            return Err((err, self.leadership.leader()));
        }
        let response = self
            .state
            .lessor
            .keep_alive(lease, self.now_ms)
            .map_err(|err| (err, self.leadership.leader()))?;
        self.stats.leases_renewed += 1;
        if self.state.lessor.take_urgent_checkpoint(lease) && self.lease_checkpoints_enabled() {
            // The lease had a checkpointed remainder. Answer only once "no remainder" is
            // replicated, or a new leader could still start the renewed lease from the old,
            // shorter remainder and expire it before the client expects.
            let clear = LeaseCheckpointRequest {
                checkpoints: vec![LeaseCheckpoint {
                    id: lease,
                    remaining_ttl: 0,
                }],
            };
            return self.propose_with_reply(
                Some(client),
                Propose::LeaseCheckpoint(clear),
                crate::auth::ROOT.to_string(),
                Some(Out::LeaseKeepAlive(response)),
            );
        }
        self.reply(client, Out::LeaseKeepAlive(response));
        Ok(())
    }

    /// Queues a linearizable read (permission was checked when the request arrived).
    pub(crate) fn linearizable_read(
        &mut self,
        id: RequestId,
        request: ReadKind,
    ) -> Result<(), (Error, u64)> {
        if self.leadership.leader() == 0 {
            return Err((Error::NoLeader, 0));
        }
        self.pending.reads_waiting.push(PendingRead {
            client: id,
            request,
            deadline_ms: self.now_ms + self.config.request_timeout_ms,
        });
        self.issue_read_round();
        Ok(())
    }

    /// Starts a ReadIndex round for the waiting reads unless one is in flight.
    pub(crate) fn issue_read_round(&mut self) {
        let in_flight = self
            .pending
            .read_batches
            .values()
            .any(|b| b.read_index.is_none());
        if in_flight || self.pending.reads_waiting.is_empty() || self.leadership.leader() == 0 {
            return;
        }
        let ctx = self.next_read_ctx();
        let wire = read_ctx_bytes(self.config.member_id, ctx);
        if self.node.read_index(wire.into()).is_err() {
            return; // retried on the next leader change or read; the reads time out otherwise
        }
        let reads = std::mem::take(&mut self.pending.reads_waiting);
        self.pending.read_batches.insert(
            ctx,
            ReadBatch {
                reads,
                read_index: None,
            },
        );
    }

    /// Raft answered the round `ctx` with `index`.
    pub(crate) fn read_round_done(&mut self, ctx: u64, index: u64) {
        if let Some(batch) = self.pending.read_batches.get_mut(&ctx) {
            batch.read_index = Some(index);
        }
        self.issue_read_round();
    }

    /// After a leader change an in-flight round may never be answered: its reads go back to
    /// waiting and a new round is issued (to the new leader).
    pub(crate) fn reissue_unanswered_reads(&mut self) {
        let unanswered: Vec<u64> = self
            .pending
            .read_batches
            .iter()
            .filter(|(_, b)| b.read_index.is_none())
            .map(|(ctx, _)| *ctx)
            .collect();
        for ctx in unanswered {
            if let Some(batch) = self.pending.read_batches.remove(&ctx) {
                self.pending.reads_waiting.extend(batch.reads);
            }
        }
        self.issue_read_round();
    }

    /// Serves every read whose round's index has been applied.
    pub(crate) fn serve_reads(&mut self) {
        let applied = self.state.applied_index;
        let ready: Vec<u64> = self
            .pending
            .read_batches
            .iter()
            .filter(|(_, b)| b.read_index.is_some_and(|index| index <= applied))
            .map(|(ctx, _)| *ctx)
            .collect();
        for ctx in ready {
            let Some(batch) = self.pending.read_batches.remove(&ctx) else {
                continue;
            };
            for read in batch.reads {
                if let ReadKind::KeepAlive { lease, term } = read.request {
                    if let Err((err, hint)) = self.keep_alive_confirmed(read.client, lease, term) {
                        self.respond_error(read.client, &err, hint);
                    }
                    continue;
                }
                if let ReadKind::Downgrade(request) = read.request {
                    self.decide_downgrade(read.client, request);
                    continue;
                }
                if let ReadKind::Authenticate { name, password } = read.request {
                    if let Err((err, hint)) = self.sign_in(read.client, name, password, true) {
                        self.respond_error(read.client, &err, hint);
                    }
                    continue;
                }
                match self.read_locally(&read.request) {
                    Ok(response) => self.reply(read.client, response),
                    Err(err) => self.outputs.push(Output::Respond {
                        id: read.client,
                        response: error_response(&err, 0),
                    }),
                }
            }
        }
    }
}
