//! Who this member's peers are and what the peer transport tells others, as the applied
//! configuration says: the peers to keep connections to (every other member, at its first
//! peer URL), the member list a joining
//! member asks for, and the removed members whose connections are refused. The shell only
//! dials and publishes what [`PeerDirectory`] lists.
//!
//! Invariant: the lists come from the applied state (`AppState::members`,
//! `AppState::removed_members`), never from flags, so every member that applied the same
//! entries lists the same peers.

use std::collections::{BTreeMap, BTreeSet};

use qraft_proto::qraftpb::{MemberRecord, MembersResponse};

use crate::backend::Backend;
use crate::raft::Storage;

use super::state_machine::Server;

/// The applied configuration as the peer transport needs it (borrowed from the state).
#[derive(Debug, Clone, Copy)]
pub struct PeerDirectory<'a> {
    me: u64,
    cluster_id: u64,
    members: &'a BTreeMap<u64, MemberRecord>,
    removed: &'a BTreeSet<u64>,
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// The applied configuration's directory, or `None` while there is none to go by: before
    /// the first configuration arrives (a joining member: the shell keeps the flag-given
    /// peers) and while the state reopens after a snapshot (it keeps the last ones).
    pub fn peer_directory(&self) -> Option<PeerDirectory<'_>> {
        let state = self.state()?;
        if state.members.is_empty() {
            return None;
        }
        Some(PeerDirectory {
            me: self.config.member_id,
            cluster_id: self.config.cluster_id,
            members: &state.members,
            removed: &state.removed_members,
        })
    }
}

impl<'a> PeerDirectory<'a> {
    /// The applied member records (for a shell to tell whether they changed since it last
    /// published them).
    pub fn members(&self) -> &'a BTreeMap<u64, MemberRecord> {
        self.members
    }

    /// The peers to keep connections to: every other member with a peer URL, at its first.
    pub fn peers_to_dial(&self) -> BTreeMap<u64, String> {
        self.members
            .values()
            .filter(|m| m.id != self.me)
            .filter_map(|m| {
                let url = m.raft_attrs.as_ref()?.peer_urls.first()?.clone();
                Some((m.id, url))
            })
            .collect()
    }

    /// The member list a joining member gets when it asks this one.
    pub fn members_response(&self) -> MembersResponse {
        MembersResponse {
            cluster_id: self.cluster_id,
            members: self.members.values().cloned().collect(),
        }
    }

    /// The removed members, in ID order: peers refuse their connections.
    pub fn removed(&self) -> Vec<u64> {
        self.removed.iter().copied().collect()
    }
}
