//! The quota alarm: every few ticks the member compares the space its backend uses with the
//! backend's quota ([`Backend::space`]) and, past it, raises NOSPACE for itself through raft
//! ([`Server::raise_alarm`] proposes it once; the replicated alarm then refuses growing writes
//! on every member until an operator frees space and disarms it). The shell only reports the
//! sizes: the decision is here.

use qraft_proto::etcdserverpb::AlarmType;

use crate::backend::Backend;
use crate::raft::Storage;

use super::state_machine::Server;

/// Ticks between two quota checks: a check reads the size of every table, cheap but not free.
pub(super) const QUOTA_CHECK_TICKS: u64 = 5;

impl<S: Storage, B: Backend> Server<S, B> {
    /// Called on every tick: every [`QUOTA_CHECK_TICKS`] ticks, raises NOSPACE when the
    /// backend uses more than its quota.
    pub(super) fn quota_tick(&mut self) {
        if !self.schedule.quota.due(QUOTA_CHECK_TICKS, true) {
            return;
        }
        match self.backend.space() {
            Ok(Some(space)) if space.in_use_bytes > space.quota_bytes => {
                self.raise_alarm(AlarmType::Nospace)
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "cannot read the backend size for the quota check"),
        }
    }
}
