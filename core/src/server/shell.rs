//! Hooks beyond requests and ticks: the commit index for status reports, leadership transfer
//! (MoveLeader, which `request` serves with it), and taking the storage back to reopen it.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::raft::{StateRole, Storage};

use super::state_machine::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// The highest log index known to be committed.
    pub fn committed_index(&self) -> u64 {
        self.leadership.committed()
    }

    /// Starts a leadership transfer to `to` (etcd's MoveLeader, answered once started). Only
    /// the leader can, and only to a member.
    pub(super) fn transfer_leader(&mut self, to: u64) -> Result<()> {
        if self.node.raft.role != StateRole::Leader {
            return Err(Error::NotLeader);
        }
        // Requests wait while the state reopens (`super::reopen`), so this is only a guard.
        if self.is_reopening() {
            return Err(Error::Raft(
                "the member is installing a snapshot; retry".to_string(),
            ));
        }
        if !self.state.members.contains_key(&to) {
            return Err(Error::BadLeaderTransferee);
        }
        self.node
            .transfer_leader(to)
            .map_err(|e| Error::Raft(e.to_string()))
    }

    /// Closes the member and hands back its raft log storage and backend. For an in-memory
    /// embedder (a [`crate::raft::MemStorage`] the shell persists every
    /// [`super::RaftWork`] into through [`Server::raft_storage_mut`], a
    /// [`crate::backend::MemBackend`]) this is exactly what a crash leaves — everything the
    /// shell persisted and every committed backend transaction, nothing in flight — and
    /// [`Server::new`] over them restarts the member.
    pub fn into_storage(self) -> (S, B) {
        (self.node.into_storage(), self.backend)
    }
}
