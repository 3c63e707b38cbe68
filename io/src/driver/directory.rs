//! Keeps the transport's view of the configuration current with what the core lists
//! ([`qraft_core::server::PeerDirectory`]): the peers it connects to, the applied member list
//! (which joining members ask for) and the removed members (whose connections are refused).

use std::collections::BTreeMap;

use qraft_proto::qraftpb::MemberRecord;

use super::run::Loop;
use super::storage_contract::DriverStorage;

/// The member records last handed to the transport.
#[derive(Default)]
pub(super) struct PublishedMembers(Option<BTreeMap<u64, MemberRecord>>);

impl<S: DriverStorage> Loop<'_, S> {
    /// Hands the transport the core's member list and removed members if the members changed
    /// since the last call (cheap otherwise: the list is a handful of records).
    pub(super) fn publish_members(&mut self) {
        let Some(directory) = self.server.peer_directory() else {
            return;
        };
        if self.published_members.0.as_ref() == Some(directory.members()) {
            return;
        }
        self.transport
            .publish_members(directory.members_response(), directory.removed());
        self.published_members.0 = Some(directory.members().clone());
    }

    /// Registers the peers the core lists with the transport and forgets the others (lookups
    /// happen off the loop, see [`super::peer_resolver`]).
    pub(super) fn reconcile_peers(&mut self) {
        if let Some(directory) = self.server.peer_directory() {
            self.peers.want(directory.peers_to_dial());
        }
    }
}
