//! The read behind the health probes (`/health`, `/livez`, `/readyz`): a range of the key
//! "health", serializable or linearizable as the probe asks, made by the member itself. Auth
//! does not gate it — probes must report health, not credentials (etcd 3.4 reads internally;
//! 3.5+ ignore the auth errors of the probe's read). The answer never leaves the member: the
//! shell only looks at whether it is an error.

use qraft_proto::etcdserverpb::RangeRequest;

use crate::backend::Backend;
use crate::raft::Storage;

use super::output::RequestId;
use super::pending::ReadKind;
use super::state_machine::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// Answered through [`Server::take_outputs`] as `Output::Respond { id, .. }`, as a client
    /// range would be (a linearizable one after its ReadIndex round).
    pub fn health_read(&mut self, id: RequestId, serializable: bool) {
        if self.is_reopening() {
            let held = super::reopen::HeldRequest::health_read(id, serializable);
            return self.hold_request(id, held);
        }
        let read = ReadKind::Range(RangeRequest {
            key: b"health".to_vec().into(),
            serializable,
            keys_only: true,
            limit: 1,
            ..Default::default()
        });
        if serializable {
            match self.read_locally(&read) {
                Ok(response) => self.reply(id, response),
                Err(err) => self.respond_error(id, &err, 0),
            }
        } else if let Err((err, hint)) = self.linearizable_read(id, read) {
            self.respond_error(id, &err, hint);
        }
    }
}
