//! Hooks the IO shell needs beyond requests and ticks: transport feedback (unreachable peers,
//! snapshot delivery) and leadership transfer.

use crate::backend::Backend;
use crate::raft::{SnapshotStatus, StateRole, Storage};

use super::server::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// The highest log index known to be committed.
    pub fn committed_index(&self) -> u64 {
        self.committed
    }

    /// A message to `id` could not be delivered (raft probes it again instead of pipelining).
    pub fn report_unreachable(&mut self, id: u64) {
        self.node.report_unreachable(id);
    }

    /// A snapshot stream to `id` ended; on failure raft retries later.
    pub fn report_snapshot(&mut self, id: u64, ok: bool) {
        let status = if ok {
            SnapshotStatus::Finish
        } else {
            SnapshotStatus::Failure
        };
        self.node.report_snapshot(id, status);
    }

    /// Starts a leadership transfer to `to` (etcd's MoveLeader). Only the leader can.
    pub fn transfer_leader(&mut self, to: u64) -> std::result::Result<(), String> {
        if self.node.raft.role != StateRole::Leader {
            return Err("etcdserver: not leader".to_string());
        }
        if !self.state.members.contains_key(&to) {
            return Err("etcdserver: bad leader transferee".to_string());
        }
        self.node.transfer_leader(to).map_err(|e| e.to_string())
    }
}
