//! `--force-new-cluster` (etcd's meaning), carried out on the LMDB store: after quorum is
//! lost, a surviving member restarts as the only member of its cluster with its data. The core
//! decides what that takes ([`qraft_core::server::plan_force_new_cluster`]: which members to
//! remove, the conf-change entries, the new commit index); this reads the raft log for it and
//! persists the plan durably before the member starts.

use qraft_core::server::{ForceNewClusterLog, plan_force_new_cluster};

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
/// whole log, durably, before the member starts.
pub fn force_new_cluster(
    storage: &LmdbStorage,
    member_id: u64,
) -> Result<ForcedConfiguration, StorageError> {
    let raft = storage.raft_state();
    // The applied configuration is in `conf_state`; the entries after it may change it.
    let from = storage.applied_index().max(raft.log_start.index) + 1;
    let after_applied = if from > raft.last_index {
        Vec::new()
    } else {
        storage.entries(from, raft.last_index + 1, u64::MAX)?
    };
    let plan = plan_force_new_cluster(
        member_id,
        ForceNewClusterLog {
            applied_conf: &raft.conf_state,
            after_applied: &after_applied,
            last_index: raft.last_index,
            last_term: storage.term(raft.last_index)?,
            hard_state: raft.hard_state,
        },
    )
    .map_err(|err| match err {
        qraft_core::server::ForceNewClusterError::NotAVoter { .. } => {
            StorageError::Config(err.to_string())
        }
        qraft_core::server::ForceNewClusterError::BadEntry { .. } => {
            StorageError::corrupt("raft log", err.to_string())
        }
    })?;
    storage.write(|batch| {
        batch.append(&plan.entries)?;
        batch.set_hard_state(&plan.hard_state)
    })?;
    Ok(ForcedConfiguration {
        removed: plan.removed,
        commit: plan.hard_state.commit,
    })
}
