//! Publishing this member's attributes (name and advertised client URLs) through raft, as
//! etcd's `publish`: the initial member records carry only what `--initial-cluster` says (each
//! member knows only its own client URLs; a member added by `member add` has only peer URLs),
//! so after every start each member proposes a `ClusterMemberAttrSet` for itself once it has a
//! leader, and again every election timeout until it has applied its own. Then every member
//! lists every member's client URLs, identically.
//!
//! Applying is idempotent (the record's attributes are replaced), so a retry that races with
//! a slow commit is harmless. A set for a member that is not (or no longer) in the members
//! table is ignored, as etcd ignores attributes of removed members.

use prost::Message as _;
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::qraftpb::{ClusterMemberAttrSetRequest, InternalRequest};

use crate::backend::{Table, WriteTxn};
use crate::error::Result;
use crate::raft::Storage;

use super::config::ServerConfig;
use super::state::AppState;
use super::state_machine::Server;
use crate::backend::Backend;

/// Whether `request` is this member's own attribute set (its applying ends the publishing).
pub(crate) fn is_own_attrs(config: &ServerConfig, request: &InternalRequest) -> bool {
    matches!(&request.request, Some(Request::ClusterMemberAttrSet(r))
        if r.member_id == config.member_id
            && r.member_attributes.is_some()
            && r.member_attributes == config.member_attrs)
}

impl AppState {
    /// Applies a committed `ClusterMemberAttrSet` inside the batch's transaction.
    pub fn apply_member_attrs<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        request: &ClusterMemberAttrSetRequest,
    ) -> Result<()> {
        let Some(member) = self.members.get_mut(&request.member_id) else {
            tracing::debug!(
                member = format_args!("{:x}", request.member_id),
                "attributes of an unknown member ignored"
            );
            return Ok(());
        };
        member.member_attrs = request.member_attributes.clone();
        txn.put(
            Table::Members,
            &member.id.to_be_bytes(),
            &member.encode_to_vec(),
        )?;
        Ok(())
    }
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Whether this member has applied its own attributes since it started (true when it
    /// publishes none).
    pub fn attributes_published(&self) -> bool {
        self.config.member_attrs.is_none() || self.attrs_applied
    }

    /// Every election timeout while a leader is known: propose this member's attributes if
    /// its applied record differs. A member that is not in its own members table yet (a
    /// learner before its first snapshot) waits.
    pub(crate) fn publish_tick(&mut self) {
        let period = self.config.election_ticks as u64;
        if !self
            .schedule
            .publish
            .due(period, self.leadership.leader() != 0)
        {
            return;
        }
        let Some(attrs) = self.config.member_attrs.clone() else {
            return;
        };
        if self.attributes_published() || !self.state.members.contains_key(&self.config.member_id) {
            return;
        }
        let request = Request::ClusterMemberAttrSet(ClusterMemberAttrSetRequest {
            member_id: self.config.member_id,
            member_attributes: Some(attrs),
        });
        if let Err((err, _)) = self.propose(None, request, crate::auth::ROOT.to_string()) {
            tracing::debug!(%err, "attribute publish not proposed; retried later");
        }
    }
}
