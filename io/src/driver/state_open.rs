//! Carries out the core's `Output::OpenState`: after a snapshot from the leader is installed,
//! the core's in-memory state is rebuilt from the backend — one pass over the key history,
//! seconds at millions of keys — on a blocking thread, never on the loop (which goes on
//! stepping raft meanwhile: heartbeats, votes, appends). The result comes back to the loop
//! through [`OpenedStates`], which it selects on with its other inputs, and goes to
//! `Server::state_opened`. What waits meanwhile, and whether a result is still wanted, is the
//! core's business (`qraft_core::server::StateOpenJob`).

use std::time::Instant;

use futures::channel::mpsc;
use qraft_core::backend::BackendError;
use qraft_core::server::{OpenedState, StateOpenJob};

use super::storage_contract::DriverStorage;
use crate::runtime;

/// Where opened states arrive, for the loop to select on.
pub(super) type OpenedStates = mpsc::UnboundedReceiver<OpenedState>;

pub(super) struct StateOpener {
    results: mpsc::UnboundedSender<OpenedState>,
}

impl StateOpener {
    pub fn new() -> (Self, OpenedStates) {
        let (results, opened) = mpsc::unbounded();
        (StateOpener { results }, opened)
    }

    /// Runs `job` over a read of `storage` as last committed (it holds the installed
    /// snapshot) on a blocking thread; its result arrives on [`OpenedStates`].
    pub fn submit<S: DriverStorage>(&self, storage: &S, job: StateOpenJob) {
        let storage = storage.clone();
        let results = self.results.clone();
        // Built as the snapshot arrived, when the core asked for it: then the key space is
        // not read again.
        let indexed = storage.take_received_index(job.index());
        // Detached: it ends by handing the result over, or finds the loop gone.
        drop(runtime::spawn(async move {
            let opened = runtime::spawn_blocking(move || {
                let start = Instant::now();
                let prebuilt = indexed.is_some();
                let opened = match storage.read() {
                    Ok(txn) => job.run(&txn, indexed),
                    Err(err) => job.failed(BackendError::from(err)),
                };
                tracing::info!(
                    index = job.index(),
                    indexed_as_received = prebuilt,
                    took_ms = start.elapsed().as_millis() as u64,
                    "opened the state of the installed snapshot (off the loop)"
                );
                opened
            })
            .await;
            let _ = results.unbounded_send(opened);
        }));
    }
}
