//! Online defragmentation with raft going on.
//!
//! Rewriting the data file takes the LMDB writer lock for as long as the copy runs — seconds
//! at gigabytes. A loop that waited for that lock would send no heartbeats and answer no votes,
//! and a defragmenting leader would lose its leadership. So the loop runs it as etcd does:
//! the copy runs on a blocking thread, the core holds back applying
//! (`Server::pause_apply`), and the loop goes on stepping raft and appending to the journal
//! (which does not wait behind a defrag, see `DriverStorage::defrag`). Writes and
//! linearizable reads wait for the entries they need; serializable reads are served from the
//! last commit, which is exactly the applied state while nothing is applied. When the copy is
//! in place the core resumes, and the loop's next turn applies what waited.
//!
//! Invariant: while `Loop::defragging` is set the held batch is closed (committed before the
//! pause) and nothing on the loop opens one, except installing a snapshot from the leader,
//! which then waits for the copy like any writer.

use std::time::Duration;

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};

use super::handle::{Command, DriverError};
use super::run::Loop;
use super::storage_contract::DriverStorage;
use crate::runtime;
use crate::storage::{SizeInfo, StorageError};

/// How long a defrag waits for open read transactions (snapshot streams, watch catch-up) to end
/// before it gives up and leaves the file as it was.
const READER_WAIT: Duration = Duration::from_secs(5);

/// Sizes before and after, or why the file was left as it was.
pub(crate) type DefragResult = Result<(SizeInfo, SizeInfo), StorageError>;

impl<S: DriverStorage> Loop<'_, S> {
    /// Starts a defragmentation; `done` carries its end back to the loop as
    /// [`Command::DefragDone`].
    pub(super) fn start_defrag(
        &mut self,
        reply: oneshot::Sender<DefragResult>,
        mut done: mpsc::Sender<Command>,
    ) -> Result<(), DriverError> {
        if self.defragging {
            let _ = reply.send(Err(StorageError::Busy(
                "a defragmentation is already running",
            )));
            return Ok(());
        }
        self.backend.held().commit()?;
        self.server.pause_apply();
        self.defragging = true;
        let storage = self.storage.clone();
        // Detached: it ends by telling the loop, or finds the loop gone (its reply then drops).
        drop(runtime::spawn(async move {
            let result = runtime::spawn_blocking(move || storage.defrag(READER_WAIT)).await;
            let _ = done.send(Command::DefragDone { result, reply }).await;
        }));
        Ok(())
    }

    /// The copy is in place (or failed, leaving the old file): applying resumes, and the
    /// loop's next turn applies what waited.
    pub(super) fn finish_defrag(
        &mut self,
        result: DefragResult,
        reply: oneshot::Sender<DefragResult>,
    ) {
        self.defragging = false;
        self.server.resume_apply();
        if let Ok((before, after)) = &result {
            tracing::info!(
                before = before.file_bytes,
                after = after.file_bytes,
                "defragmented the backend"
            );
        }
        let _ = reply.send(result);
    }
}
