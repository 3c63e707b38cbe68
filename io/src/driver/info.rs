//! What the rest of the process (health endpoints, status requests, logs) may know about the
//! member without going through the loop: a small record the loop refreshes every turn.

use std::sync::{Arc, RwLock};

use qraft_core::version::VersionReport;
use qraft_proto::etcdserverpb::{AlarmMember, ResponseHeader};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub member_id: u64,
    pub cluster_id: u64,
    /// 0 when no leader is known.
    pub leader: u64,
    pub term: u64,
    pub applied_index: u64,
    pub committed_index: u64,
    pub revision: i64,
    pub compact_revision: i64,
    pub is_learner: bool,
    /// This member applied its own name and client URLs since it started (etcd's "published
    /// local member to cluster"); the server serves clients only from then on, so no client
    /// sees a member list without them.
    pub published: bool,
    pub leader_changes: u64,
    /// Server, cluster and storage versions and the downgrade state, as the state machine
    /// knows them (`None` before the loop's first turn).
    pub versions: Option<VersionReport>,
    /// The alarms active in the cluster, as this member has applied them.
    pub alarms: Vec<AlarmMember>,
    /// The loop stopped (shutdown or a fatal storage error); the member serves nothing.
    pub stopped: bool,
    /// Why the loop stopped, when it was an error.
    pub fatal_error: Option<String>,
}

impl NodeInfo {
    /// The response header of a call the shell serves itself (move-leader, defragment,
    /// snapshot), from the member's last published state, as the core fills its own answers.
    pub fn header(&self) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision: self.revision,
            raft_term: self.term,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SharedInfo(Arc<RwLock<NodeInfo>>);

impl SharedInfo {
    pub fn get(&self) -> NodeInfo {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut NodeInfo)) {
        let mut guard = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard);
    }
}
