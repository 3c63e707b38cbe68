//! `--force-new-cluster` (etcd's meaning), decided: after quorum is lost, a surviving member
//! restarts as the only member of its cluster with its data. The shell reads the member's
//! raft log, hands it to [`plan_force_new_cluster`] and persists the plan (append
//! `entries`, then store `hard_state`, durably) before the member starts.
//!
//! As etcd does at start, the membership is rewritten through raft: for every other member of
//! the configuration the log ends with (the applied configuration, then every conf change still
//! in the log after it), one `RemoveNode` conf change is appended in the current term, and the
//! commit index is set to the new last entry. The member then applies those entries like any
//! others — the members table, the removed-members table and the raft configuration all change
//! through the usual apply path — and, alone in its configuration, elects itself.
//!
//! One deliberate difference: etcd first drops the entries past its commit index. A follower's
//! commit index can lag the leader's by a heartbeat, so entries it holds may have been committed
//! and acknowledged by the lost leader; qraft keeps every entry and commits them all (an entry
//! that was never committed had no acknowledged outcome, so committing it breaks no promise).
//!
//! The cluster ID and the member's ID stay. Running with the flag again repeats the procedure
//! (removing members added since), as in etcd: remove the flag once the member runs.

use std::collections::BTreeSet;

use prost::Message as _;
use qraft_proto::raftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState};

use crate::raft::ConfChangeProposal;

/// The member's raft log as the plan needs it.
#[derive(Debug, Clone, Copy)]
pub struct ForceNewClusterLog<'a> {
    /// The configuration as of the applied index.
    pub applied_conf: &'a ConfState,
    /// The log's entries after the applied index, in order (the others are in
    /// `applied_conf` already).
    pub after_applied: &'a [Entry],
    /// The index and term of the log's last entry.
    pub last_index: u64,
    pub last_term: u64,
    pub hard_state: HardState,
}

/// What to persist: `entries` appended after the log's last entry, then `hard_state`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForceNewClusterPlan {
    /// The members removed by the appended conf changes, in their order: the voters, then
    /// the learners, each in ID order.
    pub removed: Vec<u64>,
    pub entries: Vec<Entry>,
    /// Commit index on the new last entry, in the term of the entries.
    pub hard_state: HardState,
}

/// Why the member cannot continue its cluster alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForceNewClusterError {
    #[error(
        "--force-new-cluster: member {member_id:x} {} of its last configuration; only a voting member can continue the cluster",
        if *.is_learner { "is a learner" } else { "is not a member" }
    )]
    NotAVoter { member_id: u64, is_learner: bool },
    #[error("raft log entry {index}: {reason}")]
    BadEntry { index: u64, reason: String },
}

/// The conf changes that leave `member_id` alone in its configuration, and the hard state
/// that commits the whole log with them (see the module doc).
pub fn plan_force_new_cluster(
    member_id: u64,
    log: ForceNewClusterLog<'_>,
) -> Result<ForceNewClusterPlan, ForceNewClusterError> {
    let (voters, learners) = final_configuration(log.applied_conf, log.after_applied)?;
    if !voters.contains(&member_id) {
        return Err(ForceNewClusterError::NotAVoter {
            member_id,
            is_learner: learners.contains(&member_id),
        });
    }
    let term = log.hard_state.term.max(log.last_term);
    // Voters first, then learners, each in ID order.
    let removed: Vec<u64> = voters
        .iter()
        .chain(&learners)
        .copied()
        .filter(|&id| id != member_id)
        .collect();
    let entries: Vec<Entry> = removed
        .iter()
        .zip(log.last_index + 1..)
        .map(|(&node_id, index)| Entry {
            term,
            index,
            r#type: EntryType::EntryConfChange as i32,
            data: ConfChange {
                r#type: ConfChangeType::ConfChangeRemoveNode as i32,
                node_id,
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        })
        .collect();
    let hard_state = HardState {
        term,
        commit: log.last_index + entries.len() as u64,
        ..log.hard_state
    };
    Ok(ForceNewClusterPlan {
        removed,
        entries,
        hard_state,
    })
}

/// Voters and learners once every conf change in `later` has been applied over `applied`.
fn final_configuration(
    applied: &ConfState,
    later: &[Entry],
) -> Result<(BTreeSet<u64>, BTreeSet<u64>), ForceNewClusterError> {
    let mut voters: BTreeSet<u64> = applied.voters.iter().copied().collect();
    let mut learners: BTreeSet<u64> = applied.learners.iter().copied().collect();
    for entry in later {
        let proposal = ConfChangeProposal::from_entry(entry).map_err(|err| {
            ForceNewClusterError::BadEntry {
                index: entry.index,
                reason: err.to_string(),
            }
        })?;
        let Some(proposal) = proposal else {
            continue;
        };
        for change in proposal.as_v2().changes {
            match change.r#type() {
                ConfChangeType::ConfChangeAddNode => {
                    learners.remove(&change.node_id);
                    voters.insert(change.node_id);
                }
                ConfChangeType::ConfChangeAddLearnerNode => {
                    voters.remove(&change.node_id);
                    learners.insert(change.node_id);
                }
                ConfChangeType::ConfChangeRemoveNode => {
                    voters.remove(&change.node_id);
                    learners.remove(&change.node_id);
                }
                ConfChangeType::ConfChangeUpdateNode => {}
            }
        }
    }
    Ok((voters, learners))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf_change(index: u64, kind: ConfChangeType, node_id: u64) -> Entry {
        Entry {
            term: 2,
            index,
            r#type: EntryType::EntryConfChange as i32,
            data: ConfChange {
                r#type: kind as i32,
                node_id,
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        }
    }

    fn removed_by(entries: &[Entry]) -> Vec<u64> {
        entries
            .iter()
            .map(|e| {
                let change = ConfChange::decode(e.data.clone()).unwrap();
                assert_eq!(change.r#type(), ConfChangeType::ConfChangeRemoveNode);
                change.node_id
            })
            .collect()
    }

    #[test]
    fn the_other_members_of_the_last_configuration_are_removed_and_everything_committed() {
        let applied = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            ..Default::default()
        };
        // After the applied index: 5 joins as a learner, 2 leaves, and a normal entry.
        let later = [
            conf_change(11, ConfChangeType::ConfChangeAddLearnerNode, 5),
            conf_change(12, ConfChangeType::ConfChangeRemoveNode, 2),
            Entry {
                term: 3,
                index: 13,
                ..Default::default()
            },
        ];
        let hard_state = HardState {
            term: 4,
            vote: 3,
            commit: 11,
        };
        let plan = plan_force_new_cluster(
            1,
            ForceNewClusterLog {
                applied_conf: &applied,
                after_applied: &later,
                last_index: 13,
                last_term: 3,
                hard_state,
            },
        )
        .unwrap();
        assert_eq!(plan.removed, vec![3, 4, 5]);
        assert_eq!(removed_by(&plan.entries), vec![3, 4, 5]);
        assert_eq!(
            plan.entries
                .iter()
                .map(|e| (e.index, e.term))
                .collect::<Vec<_>>(),
            vec![(14, 4), (15, 4), (16, 4)]
        );
        assert_eq!(
            plan.hard_state,
            HardState {
                term: 4,
                vote: 3,
                commit: 16
            }
        );
    }

    #[test]
    fn a_learner_or_a_removed_member_cannot_continue_the_cluster() {
        let applied = ConfState {
            voters: vec![1, 2],
            learners: vec![3],
            ..Default::default()
        };
        let later = [conf_change(6, ConfChangeType::ConfChangeRemoveNode, 2)];
        let hard_state = HardState::default();
        let plan = |member| {
            plan_force_new_cluster(
                member,
                ForceNewClusterLog {
                    applied_conf: &applied,
                    after_applied: &later,
                    last_index: 6,
                    last_term: 2,
                    hard_state,
                },
            )
        };
        assert_eq!(
            plan(3).unwrap_err().to_string(),
            "--force-new-cluster: member 3 is a learner of its last configuration; only a voting member can continue the cluster"
        );
        assert_eq!(
            plan(2),
            Err(ForceNewClusterError::NotAVoter {
                member_id: 2,
                is_learner: false
            })
        );
        // The term of the log's last entry when the hard state's is older.
        let alone = plan(1).unwrap();
        assert_eq!(alone.removed, vec![3]);
        assert_eq!(alone.hard_state.term, 2);
        assert_eq!(alone.hard_state.commit, 7);
    }
}
