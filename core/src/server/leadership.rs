//! This member's view of the cluster's leadership, as raft last reported it: the leader it
//! knows (0 for none), the term, the highest commit index, the leader last announced to the
//! shell, and, as a new leader, how far lease catch-up must apply. The raft cycle
//! (`super::ready`) alone changes it, through the methods below; everything else reads it.
//!
//! Invariants: `committed` never decreases; a leader change is announced once per change of
//! the leader's ID (a new term under the same leader, or a term without one after a term
//! without one, is no change: etcd's `leader_changes_seen` counts the same way);
//! `lease_catch_up` is set only while this member leads.

#[derive(Debug)]
pub(super) struct Leadership {
    leader: u64,
    term: u64,
    committed: u64,
    /// The leader last announced with `Output::LeaderChanged` (0: none).
    reported: u64,
    /// As a new leader: the log index up to which entries of earlier terms may still be
    /// unapplied. Once applied, lease deadlines are recomputed from the checkpoints they held.
    lease_catch_up: Option<u64>,
}

impl Leadership {
    /// Opened with raft's `term` and `committed` (the applied index); no leader known yet.
    pub fn new(term: u64, committed: u64) -> Self {
        Leadership {
            leader: 0,
            term,
            committed,
            reported: 0,
            lease_catch_up: None,
        }
    }

    /// The leader this member knows, 0 for none.
    pub fn leader(&self) -> u64 {
        self.leader
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    /// The highest log index known to be committed.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Raft's hard state changed.
    pub fn on_hard_state(&mut self, term: u64, commit: u64) {
        self.committed = self.committed.max(commit);
        self.term = term;
    }

    /// Raft's soft state named `leader`.
    pub fn set_leader(&mut self, leader: u64) {
        self.leader = leader;
    }

    /// The (leader, term) to announce, once per change of the leader's ID (including to
    /// none, 0).
    pub fn take_change(&mut self) -> Option<(u64, u64)> {
        (self.leader != self.reported).then(|| {
            self.reported = self.leader;
            (self.leader, self.term)
        })
    }

    /// This member became leader with its log ending at `last_index`: leases wait for the
    /// earlier terms' entries up to there to be applied.
    pub fn start_lease_catch_up(&mut self, last_index: u64) {
        self.lease_catch_up = Some(last_index);
    }

    /// This member stopped leading.
    pub fn end_lease_catch_up(&mut self) {
        self.lease_catch_up = None;
    }

    /// Whether lease catch-up just finished, now that `applied` is applied (true once).
    pub fn lease_catch_up_done(&mut self, applied: u64) -> bool {
        match self.lease_catch_up {
            Some(index) if applied >= index => {
                self.lease_catch_up = None;
                true
            }
            _ => false,
        }
    }
}
