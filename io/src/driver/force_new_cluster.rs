//! `--force-new-cluster` (etcd's meaning): after quorum is lost, a surviving member restarts as
//! the only member of its cluster with its data, so new members can then be added to it.
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
use qraft_core::raft::ConfChangeProposal;
use qraft_proto::raftpb::{ConfChange, ConfChangeType, Entry, EntryType};

use crate::storage::{LmdbStorage, StorageError};

/// What [`force_new_cluster`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcedConfiguration {
    /// The members removed (by the appended conf changes).
    pub removed: Vec<u64>,
    /// The commit index the member now starts with (the last entry).
    pub commit: u64,
}

/// Appends the conf changes that leave `member_id` alone in its configuration and commits the
/// whole log, durably, before the member starts (see the module doc).
pub fn force_new_cluster(
    storage: &LmdbStorage,
    member_id: u64,
) -> Result<ForcedConfiguration, StorageError> {
    let raft = storage.raft_state();
    let (voters, learners) = final_configuration(storage)?;
    if !voters.contains(&member_id) {
        let what = if learners.contains(&member_id) {
            "is a learner"
        } else {
            "is not a member"
        };
        return Err(StorageError::Config(format!(
            "--force-new-cluster: member {member_id:x} {what} of its last configuration; only a voting member can continue the cluster"
        )));
    }
    let term = raft.hard_state.term.max(storage.term(raft.last_index)?);
    let removed: Vec<u64> = voters
        .iter()
        .chain(&learners)
        .copied()
        .filter(|&id| id != member_id)
        .collect();
    let entries: Vec<Entry> = removed
        .iter()
        .zip(raft.last_index + 1..)
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
    let commit = raft.last_index + entries.len() as u64;
    let mut hard_state = raft.hard_state;
    hard_state.term = term;
    hard_state.commit = commit;
    storage.write(|batch| {
        batch.append(&entries)?;
        batch.set_hard_state(&hard_state)
    })?;
    Ok(ForcedConfiguration { removed, commit })
}

/// Voters and learners once every conf change in the log has been applied: the applied
/// configuration, then the changes of the entries after the applied index.
fn final_configuration(
    storage: &LmdbStorage,
) -> Result<(BTreeSet<u64>, BTreeSet<u64>), StorageError> {
    let raft = storage.raft_state();
    let mut voters: BTreeSet<u64> = raft.conf_state.voters.iter().copied().collect();
    let mut learners: BTreeSet<u64> = raft.conf_state.learners.iter().copied().collect();
    let from = storage.applied_index().max(raft.log_start.index) + 1;
    if from > raft.last_index {
        return Ok((voters, learners));
    }
    for entry in storage.entries(from, raft.last_index + 1, u64::MAX)? {
        let proposal = ConfChangeProposal::from_entry(&entry)
            .map_err(|err| StorageError::corrupt("raft log", err.to_string()))?;
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
