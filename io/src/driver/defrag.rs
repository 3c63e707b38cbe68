//! Carrying out the core's `Output::Defragment`: the store is rewritten without its free pages
//! on a blocking thread, and the end goes back to the core (`Server::defragment_done`).
//!
//! Rewriting the data file takes the LMDB writer lock for as long as the copy runs — seconds
//! at gigabytes — so it never runs on the loop: a loop that waited for that lock would send no
//! heartbeats and answer no votes. What the member does meanwhile is the core's decision
//! (`qraft_core::server`'s defragmentation: applying paused, raft going on); the loop keeps
//! turning and appending to the journal, which does not wait behind a defrag (see
//! `DriverStorage::defrag`), and applies what waited in the turn after the core resumes.
//!
//! Invariant: while the copy runs the held batch is closed (the core had it committed,
//! `Backend::commit_batched`) and nothing on the loop opens one, since the core applies
//! nothing — except installing a snapshot from the leader, which then waits for the copy like
//! any writer.

use std::time::Duration;

use futures::channel::mpsc;
use qraft_core::server::RequestId;

use super::run::Loop;
use super::storage_contract::DriverStorage;
use crate::runtime;
use crate::storage::{SizeInfo, StorageError};

/// How long a defrag waits for open read transactions (snapshot streams, watch catch-up) to end
/// before it gives up and leaves the file as it was.
const READER_WAIT: Duration = Duration::from_secs(5);

/// A copy that ended: the core's request ID, and the sizes before and after or why the file was
/// left as it was.
pub(super) type DefragEnd = (RequestId, Result<(SizeInfo, SizeInfo), StorageError>);

/// Where copies tell the loop they ended.
pub(super) type DefragEnds = mpsc::UnboundedReceiver<DefragEnd>;

pub(super) fn defrag_channel() -> (mpsc::UnboundedSender<DefragEnd>, DefragEnds) {
    mpsc::unbounded()
}

impl<S: DriverStorage> Loop<'_, S> {
    /// Starts the copy the core asked for; its end comes back through [`DefragEnds`].
    pub(super) fn start_defrag(&self, id: RequestId) {
        let storage = self.storage.clone();
        let ended = self.defrag_ends.clone();
        // Detached: it ends by telling the loop, or finds the loop gone.
        drop(runtime::spawn(async move {
            let result = runtime::spawn_blocking(move || storage.defrag(READER_WAIT)).await;
            let _ = ended.unbounded_send((id, result));
        }));
    }

    /// The copy is in place (or failed, leaving the old file): the core resumes and answers.
    pub(super) fn finish_defrag(&mut self, (id, result): DefragEnd) {
        if let Ok((before, after)) = &result {
            tracing::info!(
                before = before.file_bytes,
                after = after.file_bytes,
                "defragmented the backend"
            );
        }
        self.server
            .defragment_done(id, result.map(|_| ()).map_err(Into::into));
    }
}
