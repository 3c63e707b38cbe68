//! Online defragmentation, etcd's `Maintenance.Defragment`: the member's backend is rewritten
//! without its free pages while the member keeps its place in the cluster. What happens
//! meanwhile is decided here; the copy itself is the runtime's ([`Output::Defragment`]), off
//! the core's thread, since it grows with the data.
//!
//! While the copy runs, applying is paused (`super::apply_queue`): raft goes on — heartbeats,
//! votes, appends — so no election follows from the maintenance; serializable reads are served
//! from the backend's last commit, which is the applied state while nothing is applied; writes
//! and linearizable reads wait for the entries they need, as etcd's apply waits behind its
//! defragmentation. While paused, [`Server::advance`] touches the backend only to install a
//! snapshot from the leader, which then waits for the copy like any writer of the backend. One
//! copy at a time: a second request while one runs is refused as busy.
//!
//! Invariant: `defragmenting` is `Some(id)` exactly while applying is paused for the copy that
//! answers request `id`.

use qraft_proto::etcdserverpb::DefragmentResponse;
use qraft_proto::qraftpb::client_response::Response as Out;

use crate::backend::{Backend, BackendError};
use crate::error::Error;
use crate::raft::Storage;

use super::output::{Output, RequestId};
use super::state_machine::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// `Maintenance.Defragment` `id`, from a caller already allowed to: everything applied
    /// goes into the backend's committed state (`Backend::commit_batched`, so the copy holds
    /// it), applying pauses, and the runtime is asked for the copy.
    pub(super) fn start_defragment(&mut self, id: RequestId) -> Result<(), Error> {
        if self.defragmenting.is_some() {
            return Err(Error::Backend(BackendError::Busy(
                "a defragmentation is already running".into(),
            )));
        }
        self.backend.commit_batched()?;
        self.apply_queue.pause();
        self.defragmenting = Some(id);
        self.outputs.push(Output::Defragment { id });
        Ok(())
    }

    /// The runtime finished the copy [`Output::Defragment`] `id` asked for (`Err`: it failed and
    /// the backend is as it was). Applying resumes — the runtime's next turn applies what
    /// waited ([`Server::has_entries_to_apply`]) — and the caller gets its answer.
    pub fn defragment_done(&mut self, id: RequestId, result: Result<(), BackendError>) {
        if self.defragmenting != Some(id) {
            tracing::warn!(id, "a defragmentation ended that was not running");
            return;
        }
        self.defragmenting = None;
        self.apply_queue.resume();
        match result {
            Ok(()) => self.reply(id, Out::Defragment(DefragmentResponse { header: None })),
            Err(err) => self.respond_error(id, &Error::Backend(err), 0),
        }
    }
}
