//! Hooks the IO shell needs beyond requests and ticks: the commit index for status reports and
//! leadership transfer (MoveLeader).

use crate::backend::Backend;
use crate::raft::{StateRole, Storage};

use super::server::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// The highest log index known to be committed.
    pub fn committed_index(&self) -> u64 {
        self.committed
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
