//! Watch streams as the core serves them. The shell owns the [`WatchHub`] (it drives the
//! streams); the decisions are made here and in `crate::watch`, so both client protocols
//! (QUIC and gRPC) and every runtime get the same answers: which watch a stream's user may
//! create or keep (checked against the auth store), and what a response's header says.

use qraft_proto::etcdserverpb::{WatchRequest, WatchResponse};
use qraft_proto::qraftpb::TokenClaims;

use crate::backend::Backend;
use crate::raft::Storage;
use crate::watch::{StreamId, WatchConfig, WatchHub};

use super::state_machine::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// The settings of the shell's [`WatchHub`] (`WatchHub::new(server.watch_config())`):
    /// the hub counts time in the core's ticks (`WatchHub::tick` on every tick
    /// [`Server::handle_timeout`] ran), so the progress interval is given in ticks here.
    pub fn watch_config(&self) -> WatchConfig {
        WatchConfig {
            progress_interval_ticks: self
                .config
                .watch_progress_notify_ms
                .div_ceil(self.config.tick_ms.max(1))
                .max(1),
            ..WatchConfig::default()
        }
    }

    /// One watch request of `stream`, made by `(token, cert_common_name, claims)` (what the
    /// stream's client sent, empty for none, and with signed tokens what the embedder found
    /// in the token): resolved as for any call, then the hub creates the watch or answers it
    /// `created`, `canceled` with etcd's reason. While the state reopens after a snapshot
    /// from the leader, the request waits for it (`super::reopen`).
    pub fn watch_request(
        &mut self,
        hub: &mut WatchHub,
        stream: StreamId,
        (token, cert_common_name, claims): (&str, &str, Option<&TokenClaims>),
        request: WatchRequest,
    ) {
        if self.is_reopening() {
            return self.hold_watch(stream, (token, cert_common_name, claims), request);
        }
        let who = self
            .state
            .auth
            .auth_info(token, cert_common_name, claims, self.now_ms);
        hub.request_as(stream, request, &self.state.mvcc, &self.state.auth, who);
    }

    /// Up to `room` encoded bytes of `stream`'s queued responses, as
    /// [`WatchHub::take_responses`] hands them, with etcd's full header: the hub knows
    /// revisions only; etcd's watch headers also name the cluster, the member and the raft
    /// term (etcdctl prints them), as every other response of this member does.
    pub fn take_watch_responses(
        &self,
        hub: &mut WatchHub,
        stream: StreamId,
        room: usize,
    ) -> Vec<WatchResponse> {
        let mut responses = hub.take_responses(stream, room);
        for header in responses.iter_mut().filter_map(|r| r.header.as_mut()) {
            header.cluster_id = self.config.cluster_id;
            header.member_id = self.config.member_id;
            header.raft_term = self.leadership.term();
        }
        responses
    }

    /// Cancels the watchers whose user lost read permission on their keys; call after every
    /// batch of applied entries, before handing their events to the hub (cheap when the auth
    /// store did not change).
    pub fn recheck_watchers(&self, hub: &mut WatchHub) {
        if self.is_reopening() {
            return; // the state is not there; `state_opened` has every watcher catch up
        }
        hub.recheck_permissions(&self.state.mvcc, &self.state.auth);
    }
}
