//! Linearizable reads without writing to the log (ReadIndex, Raft thesis §6.4).

use prost::bytes::Bytes;
use qraft_proto::raftpb::Message;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How the leader confirms it is still the leader before serving a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadOnlyOption {
    /// Confirm with a heartbeat round to a quorum (safe regardless of clock drift). Every read
    /// that arrived before the round is answered by it.
    #[default]
    Safe,
    /// Rely on the leader lease that check-quorum maintains: answer immediately. Only as safe as
    /// the bound on clock drift between members; requires `check_quorum`.
    LeaseBased,
}

/// A read that can be served once the local state machine has applied `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    pub index: u64,
    pub request_ctx: Bytes,
}

#[derive(Debug, Clone)]
pub struct ReadIndexStatus {
    pub request: Message,
    pub index: u64,
    pub acks: BTreeSet<u64>,
}

/// Reads waiting for their heartbeat round, keyed by request context, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct ReadOnly {
    pub option: ReadOnlyOption,
    pending: BTreeMap<Bytes, ReadIndexStatus>,
    queue: VecDeque<Bytes>,
}

impl ReadOnly {
    pub fn new(option: ReadOnlyOption) -> Self {
        Self {
            option,
            ..Default::default()
        }
    }

    /// Queues a read at commit index `index`. A duplicate context is ignored (first one wins).
    pub fn add_request(&mut self, index: u64, request: Message, ctx: Bytes) {
        if self.pending.contains_key(&ctx) {
            return;
        }
        self.pending.insert(
            ctx.clone(),
            ReadIndexStatus {
                request,
                index,
                acks: BTreeSet::new(),
            },
        );
        self.queue.push_back(ctx);
    }

    /// Records a heartbeat acknowledgement for the round that carried `ctx`.
    pub fn recv_ack(&mut self, id: u64, ctx: &[u8]) -> Option<&BTreeSet<u64>> {
        let status = self.pending.get_mut(ctx)?;
        status.acks.insert(id);
        Some(&status.acks)
    }

    /// Dequeues every read up to and including `ctx`: a quorum acknowledging a later round also
    /// confirms leadership for the reads queued before it.
    pub fn advance(&mut self, ctx: &[u8]) -> Vec<ReadIndexStatus> {
        let Some(pos) = self.queue.iter().position(|c| c.as_ref() == ctx) else {
            return Vec::new();
        };
        self.queue
            .drain(..=pos)
            .filter_map(|c| self.pending.remove(&c))
            .collect()
    }

    pub fn last_pending_ctx(&self) -> Option<Bytes> {
        self.queue.back().cloned()
    }

    pub fn pending_count(&self) -> usize {
        self.queue.len()
    }
}
