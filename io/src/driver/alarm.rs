//! The member's own alarm conditions, checked by the loop: a backend past
//! `--quota-backend-bytes` raises NOSPACE for this member through raft
//! ([`Server::raise_alarm`] proposes it once; the replicated alarm then refuses growing writes
//! on every member until an operator frees space and disarms it).

use qraft_core::backend::Backend;
use qraft_core::raft::Storage;
use qraft_core::server::Server;
use qraft_proto::etcdserverpb::AlarmType;

use crate::storage::LmdbStorage;

/// Ticks between two quota checks: a check reads the size of every table, cheap but not free.
const QUOTA_CHECK_TICKS: u64 = 5;

#[derive(Debug, Default)]
pub(crate) struct QuotaWatch {
    ticks: u64,
}

impl QuotaWatch {
    /// Called on every tick; every few ticks compares the data in use with the quota and
    /// asks the core to raise NOSPACE when it is exceeded.
    pub fn tick<S: Storage, B: Backend>(
        &mut self,
        storage: &LmdbStorage,
        server: &mut Server<S, B>,
    ) {
        self.ticks += 1;
        if self.ticks < QUOTA_CHECK_TICKS {
            return;
        }
        self.ticks = 0;
        match storage.over_quota() {
            Ok(true) => server.raise_alarm(AlarmType::Nospace),
            Ok(false) => {}
            Err(err) => tracing::warn!(%err, "cannot read the backend size for the quota check"),
        }
    }
}
