//! Lease permissions that need both the auth store and the lessor (etcd 3.6 after
//! GHSA-q8m4-xhhv-38mg): a lease's keys belong to whoever may write them, so keeping the lease
//! alive or attaching another key to it (a put with `lease`) needs write access to every key
//! already attached. Without it, anyone could keep any lease alive forever, or attach a key to
//! someone else's lease so that its owner could no longer revoke it.

use qraft_proto::etcdserverpb::request_op::Request as Op;
use qraft_proto::etcdserverpb::{PutRequest, TxnRequest};

use crate::auth::AuthInfo;
use crate::error::Error;

use super::state::AppState;

impl AppState {
    /// Write access to every key attached to lease `id` (none if the lease is unknown).
    pub(crate) fn check_lease_keys(&self, auth: Option<&AuthInfo>, id: i64) -> Result<(), Error> {
        if !self.auth.is_enabled() || id == 0 {
            return Ok(());
        }
        match self.lessor.get(id) {
            Some(lease) => self
                .auth
                .check_lease_revoke(auth, lease.keys.iter().map(|k| k.as_ref())),
            None => Ok(()),
        }
    }

    /// etcd's checkLeasePuts for a put.
    pub(crate) fn check_lease_put(
        &self,
        auth: Option<&AuthInfo>,
        put: &PutRequest,
    ) -> Result<(), Error> {
        self.check_lease_keys(auth, put.lease)
    }

    /// etcd's checkLeasePuts for every put of a txn, both branches, nested txns included.
    pub(crate) fn check_lease_txn(
        &self,
        auth: Option<&AuthInfo>,
        txn: &TxnRequest,
    ) -> Result<(), Error> {
        for op in txn.success.iter().chain(&txn.failure) {
            match &op.request {
                Some(Op::RequestPut(put)) => self.check_lease_put(auth, put)?,
                Some(Op::RequestTxn(inner)) => self.check_lease_txn(auth, inner)?,
                _ => {}
            }
        }
        Ok(())
    }
}
