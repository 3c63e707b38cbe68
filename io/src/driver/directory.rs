//! Keeps the transport's view of the configuration current: the peers it connects to (from
//! the applied member list), the applied member list (which joining members ask for) and the
//! removed members (whose connections are refused).

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use qraft_core::backend::{ReadTxn, Table};
use qraft_proto::qraftpb::{MemberRecord, MembersResponse};

use super::handle::DriverError;
use super::held::HeldBatch;
use super::run::Loop;
use super::storage_contract::DriverStorage;
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
        applied: &HeldBatch<'_, impl DriverStorage>,
        cluster_id: u64,
        members: &BTreeMap<u64, MemberRecord>,
    ) -> Result<(), DriverError> {
        if members.is_empty() || self.0.as_ref() == Some(members) {
            return Ok(());
        }
        let removed = removed_members(applied)?;
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

fn removed_members(applied: &HeldBatch<'_, impl DriverStorage>) -> Result<Vec<u64>, DriverError> {
    let view = applied.view()?;
    let mut removed = Vec::new();
    view.scan(Table::MembersRemoved, &[], None, &mut |key, _| {
        if let Ok(bytes) = <[u8; 8]>::try_from(key) {
            removed.push(u64::from_be_bytes(bytes));
        }
        ControlFlow::Continue(())
    })
    .map_err(qraft_core::error::Error::from)?;
    Ok(removed)
}

impl<S: DriverStorage> Loop<'_, S> {
    /// Registers every member of the current configuration with the transport and forgets
    /// removed ones (lookups happen off the loop, see [`super::peer_resolver`]).
    pub(super) fn reconcile_peers(&mut self) {
        // Before the first configuration arrives (a joining member), keep the flag-given peers;
        // while the state reopens after a snapshot, the last ones.
        let Some(state) = self.server.state() else {
            return;
        };
        if state.members.is_empty() {
            return;
        }
        let me = self.server.member_id();
        let wanted: BTreeMap<u64, String> = state
            .members
            .values()
            .filter(|m| m.id != me)
            .filter_map(|m| {
                let url = m.raft_attrs.as_ref()?.peer_urls.first()?.clone();
                Some((m.id, url))
            })
            .collect();
        self.peers.want(wanted);
    }
}
