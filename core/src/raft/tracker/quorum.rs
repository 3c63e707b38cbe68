//! Majority and joint quorums: commit indexes and election outcomes.

use std::collections::{BTreeMap, BTreeSet};

/// The outcome of counting votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteResult {
    Pending,
    Lost,
    Won,
}

/// A set of voters deciding by simple majority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MajorityConfig(pub BTreeSet<u64>);

impl MajorityConfig {
    /// The largest index acknowledged by a majority. An empty config returns `u64::MAX` so that
    /// it never restricts a joint config.
    pub fn committed_index(&self, acked: impl Fn(u64) -> u64) -> u64 {
        if self.0.is_empty() {
            return u64::MAX;
        }
        let mut matched: Vec<u64> = self.0.iter().map(|&id| acked(id)).collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        matched[self.0.len() / 2]
    }

    pub fn vote_result(&self, votes: &BTreeMap<u64, bool>) -> VoteResult {
        if self.0.is_empty() {
            return VoteResult::Won;
        }
        let (mut yes, mut missing) = (0, 0);
        for id in &self.0 {
            match votes.get(id) {
                Some(true) => yes += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let quorum = self.0.len() / 2 + 1;
        if yes >= quorum {
            VoteResult::Won
        } else if yes + missing >= quorum {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

/// The incoming and (during a joint change) outgoing voter sets; decisions need both majorities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JointConfig {
    pub incoming: MajorityConfig,
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    pub fn is_joint(&self) -> bool {
        !self.outgoing.0.is_empty()
    }

    pub fn ids(&self) -> BTreeSet<u64> {
        self.incoming.0.union(&self.outgoing.0).copied().collect()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.incoming.0.contains(&id) || self.outgoing.0.contains(&id)
    }

    pub fn committed_index(&self, acked: impl Fn(u64) -> u64) -> u64 {
        self.incoming
            .committed_index(&acked)
            .min(self.outgoing.committed_index(&acked))
    }

    pub fn vote_result(&self, votes: &BTreeMap<u64, bool>) -> VoteResult {
        let a = self.incoming.vote_result(votes);
        let b = self.outgoing.vote_result(votes);
        if a == b {
            a
        } else if a == VoteResult::Lost || b == VoteResult::Lost {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }
}
