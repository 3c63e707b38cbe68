//! Keeps the transport's view of the configuration current: the applied member list (which
//! joining members ask for) and the removed members (whose connections are refused).

use std::collections::BTreeMap;
use std::ops::Bound;

use qraft_core::backend::Table;
use qraft_proto::qraftpb::{MemberRecord, MembersResponse};
use qraft_proto::raftpb::ConfState;

use super::handle::DriverError;
use crate::storage::LmdbStorage;
use crate::transport::PeerTransport;

/// The member list last handed to the transport.
#[derive(Default)]
pub(super) struct PublishedMembers(Option<BTreeMap<u64, MemberRecord>>);

impl PublishedMembers {
    /// Publishes `members` if they changed since the last call (cheap otherwise: the list is
    /// a handful of records).
    pub fn update(
        &mut self,
        transport: &dyn PeerTransport,
        storage: &LmdbStorage,
        cluster_id: u64,
        members: &BTreeMap<u64, MemberRecord>,
    ) -> Result<(), DriverError> {
        if members.is_empty() || self.0.as_ref() == Some(members) {
            return Ok(());
        }
        let removed = removed_members(storage)?;
        transport.publish_members(
            MembersResponse {
                cluster_id,
                members: members.values().cloned().collect(),
            },
            removed,
        );
        self.0 = Some(members.clone());
        Ok(())
    }
}

fn removed_members(storage: &LmdbStorage) -> Result<Vec<u64>, DriverError> {
    let txn = storage.read()?;
    let mut removed = Vec::new();
    for row in txn.range(Table::MembersRemoved, Bound::Unbounded, Bound::Unbounded)? {
        if let Ok(bytes) = <[u8; 8]>::try_from(row?.0) {
            removed.push(u64::from_be_bytes(bytes));
        }
    }
    Ok(removed)
}

/// Whether an applied configuration leaves `me` out: this member was removed.
pub(super) fn removes(conf_state: &ConfState, me: u64) -> bool {
    let in_config = conf_state
        .voters
        .iter()
        .chain(&conf_state.learners)
        .chain(&conf_state.voters_outgoing)
        .chain(&conf_state.learners_next)
        .any(|&id| id == me);
    !in_config && !conf_state.voters.is_empty()
}
