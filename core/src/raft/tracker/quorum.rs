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

#[cfg(test)]
mod tests {
    use super::*;

    fn majority(ids: &[u64]) -> MajorityConfig {
        MajorityConfig(ids.iter().copied().collect())
    }

    fn votes(v: &[(u64, bool)]) -> BTreeMap<u64, bool> {
        v.iter().copied().collect()
    }

    #[test]
    fn committed_index_is_the_quorum_median() {
        let acked = |id: u64| [0, 5, 3, 9, 1, 7][id as usize];
        assert_eq!(majority(&[1, 2, 3]).committed_index(acked), 5);
        assert_eq!(majority(&[1, 2, 3, 4]).committed_index(acked), 3);
        assert_eq!(majority(&[1, 2, 3, 4, 5]).committed_index(acked), 5);
        assert_eq!(majority(&[]).committed_index(acked), u64::MAX);
    }

    #[test]
    fn joint_commit_needs_both_majorities() {
        let acked = |id: u64| [0, 9, 9, 1, 1, 1][id as usize];
        let joint = JointConfig {
            incoming: majority(&[3, 4, 5]),
            outgoing: majority(&[1, 2, 3]),
        };
        assert_eq!(joint.committed_index(acked), 1);
        let simple = JointConfig {
            incoming: majority(&[1, 2, 3]),
            outgoing: majority(&[]),
        };
        assert_eq!(simple.committed_index(acked), 9);
    }

    #[test]
    fn vote_results() {
        let c = majority(&[1, 2, 3]);
        assert_eq!(c.vote_result(&votes(&[(1, true)])), VoteResult::Pending);
        assert_eq!(
            c.vote_result(&votes(&[(1, true), (2, true)])),
            VoteResult::Won
        );
        assert_eq!(
            c.vote_result(&votes(&[(1, true), (2, false), (3, false)])),
            VoteResult::Lost
        );
        let joint = JointConfig {
            incoming: majority(&[1, 2, 3]),
            outgoing: majority(&[3, 4, 5]),
        };
        // Wins the incoming half, loses the outgoing one.
        let v = votes(&[(1, true), (2, true), (3, false), (4, false)]);
        assert_eq!(joint.vote_result(&v), VoteResult::Lost);
        let v = votes(&[(1, true), (2, true), (3, true)]);
        assert_eq!(joint.vote_result(&v), VoteResult::Pending);
        let v = votes(&[(1, true), (3, true), (4, true)]);
        assert_eq!(joint.vote_result(&v), VoteResult::Won);
    }
}
