//! Watch requests from client streams, checked against the auth store. The shell owns the
//! [`WatchHub`] (it drives the streams); the decision which watch a stream's user may create
//! or keep is made here and in `crate::watch`, so both client protocols (QUIC and gRPC) get
//! the same answers.

use qraft_proto::etcdserverpb::WatchRequest;
use qraft_proto::qraftpb::TokenClaims;

use crate::backend::Backend;
use crate::raft::Storage;
use crate::watch::{StreamId, WatchHub};

use super::server::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// One watch request of `stream`, made by `(token, cert_common_name, claims)` (what the
    /// stream's client sent, empty for none, and with signed tokens what the embedder found
    /// in the token): resolved as for any call, then the hub creates the watch or answers it
    /// `created`, `canceled` with etcd's reason.
    pub fn watch_request(
        &mut self,
        hub: &mut WatchHub,
        stream: StreamId,
        (token, cert_common_name, claims): (&str, &str, Option<&TokenClaims>),
        request: WatchRequest,
    ) {
        let who = self
            .state
            .auth
            .auth_info(token, cert_common_name, claims, self.now_ms);
        hub.request_as(stream, request, &self.state.mvcc, &self.state.auth, who);
    }

    /// Cancels the watchers whose user lost read permission on their keys; call after every
    /// batch of applied entries, before handing their events to the hub (cheap when the auth
    /// store did not change).
    pub fn recheck_watchers(&self, hub: &mut WatchHub) {
        hub.recheck_permissions(&self.state.mvcc, &self.state.auth);
    }
}
