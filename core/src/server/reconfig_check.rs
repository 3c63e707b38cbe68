//! etcd's strict reconfiguration check (`--strict-reconfig-check`, on by default in etcd):
//! a member add, remove or promote that would leave the cluster without a quorum of started,
//! connected voting members is refused where the request enters, before anything is proposed —
//! etcd's `mayAddMember`, `mayRemoveMember` and `mayPromoteMember`, with their conditions and
//! errors:
//!
//! - "started" members are those whose name is known (given by `--initial-cluster`, or
//!   published by the member once it ran — etcd's `IsStarted`): too few started voters after
//!   the change → `etcdserver: re-configuration failed due to not enough started members`;
//! - "connected" peers are those this member's transport has been connected to for at least
//!   [`HEALTH_INTERVAL_MS`] (etcd's `ActiveSince` before `now − HealthInterval`); this member
//!   always counts. Too few for a quorum after the change → `etcdserver: unhealthy cluster`.
//!
//! The core owns the decision; the shell only reports its transport's view of each peer
//! ([`Server::peer_active_since`]), stamped with the clock it gives the core, so the decision
//! is reproducible from the inputs.

use std::collections::BTreeMap;

use qraft_proto::qraftpb::MemberRecord;

use crate::backend::Backend;
use crate::error::Error;
use crate::raft::Storage;

use super::state_machine::Server;

/// etcd's `HealthInterval`: a peer counts as connected once this member has been connected to
/// it for this long without a break.
pub const HEALTH_INTERVAL_MS: u64 = 5_000;

/// When this member's transport last became connected to each peer (the shell's clock, as
/// given to the core); a peer it is not connected to has no entry.
#[derive(Debug, Default)]
pub(crate) struct PeerActivity {
    since_ms: BTreeMap<u64, u64>,
}

impl PeerActivity {
    fn set(&mut self, peer: u64, since_ms: Option<u64>) {
        match since_ms {
            Some(since) => {
                self.since_ms.insert(peer, since);
            }
            None => {
                self.since_ms.remove(&peer);
            }
        }
    }

    fn is_active(&self, peer: u64) -> bool {
        self.since_ms.contains_key(&peer)
    }

    /// Connected without a break since before `cutoff_ms` (etcd's `isConnectedSince`).
    fn connected_before(&self, peer: u64, cutoff_ms: Option<u64>) -> bool {
        match (self.since_ms.get(&peer), cutoff_ms) {
            (Some(&since), Some(cutoff)) => since < cutoff,
            _ => false,
        }
    }
}

fn is_voter(record: &MemberRecord) -> bool {
    record.raft_attrs.as_ref().is_some_and(|r| !r.is_learner)
}

/// etcd's `Member.IsStarted`: its name is known.
fn is_started(record: &MemberRecord) -> bool {
    record
        .member_attrs
        .as_ref()
        .is_some_and(|a| !a.name.is_empty())
}

fn quorum(members: usize) -> usize {
    members / 2 + 1
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// The shell's transport view of `peer`: connected since `since_ms` (the clock it gives
    /// the core), or not connected (`None`). Report every change; the strict reconfiguration
    /// check reads it.
    pub fn peer_active_since(&mut self, peer: u64, since_ms: Option<u64>) {
        self.peer_activity.set(peer, since_ms);
    }

    fn voters(&self) -> impl Iterator<Item = &MemberRecord> {
        self.state.members.values().filter(|m| is_voter(m))
    }

    /// Voters this member counts as connected: itself, and the peers connected for at least
    /// [`HEALTH_INTERVAL_MS`] (etcd's `numConnectedSince`).
    fn connected_voters(&self) -> usize {
        let cutoff = self.now_ms.checked_sub(HEALTH_INTERVAL_MS);
        let me = self.config.member_id;
        self.voters()
            .filter(|m| m.id == me || self.peer_activity.connected_before(m.id, cutoff))
            .count()
    }

    /// etcd's `mayAddMember`.
    pub(super) fn may_add_member(&self, is_learner: bool) -> Result<(), Error> {
        if !self.config.strict_reconfig_check {
            return Ok(());
        }
        let voters = self.voters().count();
        if !is_learner {
            // The new member counts, not started.
            let members = voters + 1;
            let started = self.voters().filter(|m| is_started(m)).count();
            // Adding a member to a one-member cluster (etcd: restoring a cluster's data).
            let restoring = started == 1 && members == 2;
            if !restoring && started < quorum(members) {
                return Err(Error::MemberNotEnoughStarted);
            }
        }
        // The new member counts as not connected.
        if voters != 1 && self.connected_voters() < quorum(voters + 1) {
            return Err(Error::Unhealthy);
        }
        Ok(())
    }

    /// etcd's `mayRemoveMember`.
    pub(super) fn may_remove_member(&self, id: u64) -> Result<(), Error> {
        if !self.config.strict_reconfig_check {
            return Ok(());
        }
        if self.state.members.get(&id).is_some_and(|m| !is_voter(m)) {
            return Ok(());
        }
        let remaining = self.voters().filter(|m| m.id != id);
        let (members, started) = remaining.fold((0, 0), |(members, started), m| {
            (members + 1, started + usize::from(is_started(m)))
        });
        if started < quorum(members) {
            return Err(Error::MemberNotEnoughStarted);
        }
        // A peer this member is not connected to is not part of the active quorum.
        if id != self.config.member_id && !self.peer_activity.is_active(id) {
            return Ok(());
        }
        let voters = self.voters().count();
        if self.connected_voters().saturating_sub(1) < 1 + voters.saturating_sub(1) / 2 {
            return Err(Error::Unhealthy);
        }
        Ok(())
    }

    /// etcd's `mayPromoteMember` after its learner-readiness check: the learner counts as a
    /// started voter.
    pub(super) fn may_promote_member(&self) -> Result<(), Error> {
        if !self.config.strict_reconfig_check {
            return Ok(());
        }
        let members = self.voters().count() + 1;
        let started = self.voters().filter(|m| is_started(m)).count() + 1;
        if started < quorum(members) {
            return Err(Error::MemberNotEnoughStarted);
        }
        Ok(())
    }
}
