//! What the leader knows about every member: the configuration, per-follower progress, votes.

mod inflights;
mod progress;
mod quorum;

pub use inflights::Inflights;
pub use progress::{Progress, ProgressState};
pub use quorum::{JointConfig, MajorityConfig, VoteResult};

use qraft_proto::raftpb::ConfState;
use std::collections::{BTreeMap, BTreeSet};

/// A membership configuration. Invariants: `learners` and the voters are disjoint;
/// `learners_next` holds outgoing voters being demoted to learners, which become learners when
/// the joint configuration is left (a node can't be voter and learner at the same time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerConfig {
    pub voters: JointConfig,
    pub learners: BTreeSet<u64>,
    pub learners_next: BTreeSet<u64>,
    /// Leave the joint configuration automatically once it is committed and applied.
    pub auto_leave: bool,
}

impl TrackerConfig {
    pub fn to_conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.0.iter().copied().collect(),
            learners: self.learners.iter().copied().collect(),
            voters_outgoing: self.voters.outgoing.0.iter().copied().collect(),
            learners_next: self.learners_next.iter().copied().collect(),
            auto_leave: self.auto_leave,
        }
    }
}

pub type ProgressMap = BTreeMap<u64, Progress>;

#[derive(Debug, Clone)]
pub struct ProgressTracker {
    pub config: TrackerConfig,
    pub progress: ProgressMap,
    pub votes: BTreeMap<u64, bool>,
    pub max_inflight: usize,
    pub max_inflight_bytes: u64,
}

impl ProgressTracker {
    pub fn new(max_inflight: usize, max_inflight_bytes: u64) -> Self {
        Self {
            config: TrackerConfig::default(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            max_inflight,
            max_inflight_bytes,
        }
    }

    /// The index committed by the voters' quorum(s), from their match indexes.
    pub fn committed(&self) -> u64 {
        self.config
            .voters
            .committed_index(|id| self.progress.get(&id).map_or(0, |p| p.matched))
    }

    pub fn is_singleton(&self) -> bool {
        self.config.voters.incoming.0.len() == 1 && !self.config.voters.is_joint()
    }

    pub fn record_vote(&mut self, id: u64, granted: bool) {
        self.votes.entry(id).or_insert(granted);
    }

    pub fn reset_votes(&mut self) {
        self.votes.clear();
    }

    /// Granted and rejected counts among voters, and the outcome.
    pub fn tally_votes(&self) -> (usize, usize, VoteResult) {
        let (mut granted, mut rejected) = (0, 0);
        for id in self.config.voters.ids() {
            match self.votes.get(&id) {
                Some(true) => granted += 1,
                Some(false) => rejected += 1,
                None => {}
            }
        }
        (
            granted,
            rejected,
            self.config.voters.vote_result(&self.votes),
        )
    }

    /// Whether a quorum was heard from recently (check-quorum); `self_id` always counts.
    pub fn quorum_active(&self, self_id: u64) -> bool {
        let votes: BTreeMap<u64, bool> = self
            .progress
            .iter()
            .filter(|(_, p)| !p.is_learner)
            .map(|(&id, p)| (id, id == self_id || p.recent_active))
            .collect();
        self.config.voters.vote_result(&votes) == VoteResult::Won
    }

    pub fn voter_ids(&self) -> BTreeSet<u64> {
        self.config.voters.ids()
    }
}
