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

/// Reads waiting for their heartbeat round, keyed by the context their round carries (the
/// request's own unless it was taken, see [`ReadOnly::add_request`]), in arrival order.
#[derive(Debug, Clone, Default)]
pub struct ReadOnly {
    pub option: ReadOnlyOption,
    pending: BTreeMap<Bytes, ReadIndexStatus>,
    queue: VecDeque<Bytes>,
    /// Distinguishes the rounds of reads whose requests carried a context already pending.
    renamed: u64,
}

impl ReadOnly {
    pub fn new(option: ReadOnlyOption) -> Self {
        Self {
            option,
            ..Default::default()
        }
    }

    /// Queues a read at commit index `index`; returns the context its heartbeat round carries.
    ///
    /// Every read gets its own round and its own answer, even when its context is already
    /// pending (members choose contexts independently; a clash must not lose a read, and
    /// the second read must not share the first's round: that round's index and acks predate
    /// it). Such a round carries the context extended with a leader-local number; the answer
    /// still carries the request's own context (it is taken from `request`).
    pub fn add_request(&mut self, index: u64, request: Message, ctx: Bytes) -> Bytes {
        let original = ctx;
        let mut ctx = original.clone();
        // Ends: each turn tries a number never tried before, and finitely many are pending.
        while self.pending.contains_key(&ctx) {
            self.renamed += 1;
            let mut unique = original.to_vec();
            unique.push(b'#');
            unique.extend_from_slice(&self.renamed.to_be_bytes());
            ctx = Bytes::from(unique);
        }
        self.pending.insert(
            ctx.clone(),
            ReadIndexStatus {
                request,
                index,
                acks: BTreeSet::new(),
            },
        );
        self.queue.push_back(ctx.clone());
        ctx
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
