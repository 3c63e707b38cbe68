//! The cluster's stand-in for the shell's worker threads: bcrypt jobs and state opens run
//! inline, or wait until the script (or the clock) releases them, as on a busy worker.

use std::fmt::Write as _;

use qraft_core::backend::Backend;
use qraft_core::mvcc::KeyIndexBuilder;
use qraft_core::server::StateOpenJob;
use qraft_core::watch::{WatchConfig, WatchHub};

use super::{Cluster, Node};

impl Cluster {
    /// Runs the `count` oldest (`newest`: most recent) held bcrypt jobs and hands their
    /// results back.
    pub fn release_bcrypt(&mut self, count: usize, newest: bool) {
        for _ in 0..count {
            let next = if newest {
                self.held_bcrypt.pop_back()
            } else {
                self.held_bcrypt.pop_front()
            };
            let Some((id, work)) = next else {
                break;
            };
            if let Some(server) = self.members.get_mut(&id).and_then(|m| m.server.as_mut()) {
                server.password_done(work.run());
            }
            self.stabilize();
        }
    }

    /// Hands member `member`'s held state opens back (`None`: every member's), running each
    /// job over the member's backend as a worker would.
    pub fn release_state_opens(&mut self, member: Option<u64>) {
        let (released, kept) = std::mem::take(&mut self.held_state_opens)
            .into_iter()
            .partition(|(id, _, _)| member.is_none_or(|m| m == *id));
        self.held_state_opens = kept;
        self.open_states(released);
    }

    fn open_states(&mut self, jobs: Vec<(u64, StateOpenJob, Option<u64>)>) {
        for (id, job, _) in jobs {
            self.state_opens_delayed += 1;
            let Some(member) = self.members.get_mut(&id) else {
                continue;
            };
            // A member that crashed meanwhile lost the job with its memory.
            let Some(server) = member.server.as_mut() else {
                continue;
            };
            writeln!(self.out, "n{id} state opened at index {}", job.index()).unwrap();
            if let Err(err) = open_state(server, &job) {
                writeln!(self.out, "n{id} stopped: {err}").unwrap();
                member.server = None;
            }
            self.stabilize();
        }
    }

    /// Hands back the delayed state opens that are done by now.
    pub(super) fn release_due_state_opens(&mut self) {
        let now = self.now_ms;
        let (due, kept) = std::mem::take(&mut self.held_state_opens)
            .into_iter()
            .partition(|(_, _, due)| due.is_some_and(|due| due <= now));
        self.held_state_opens = kept;
        self.open_states(due);
    }
}

/// Carries out `Output::OpenState` as a shell's worker does (here on the test's thread): the
/// job over a read of the member's backend, the result back to the core, then the entries
/// that waited applied. The job gets the key index a receiving thread would have built from
/// the snapshot's history records (here fed from the installed history, record by record):
/// the transcripts then show that the state reopened with it is the one a scan gives (every
/// start opens by scanning).
pub(super) fn open_state(
    server: &mut Node,
    job: &StateOpenJob,
) -> Result<(), qraft_core::error::Error> {
    let read = server.backend().read_txn()?;
    let builder = KeyIndexBuilder::from_stored_history(&read)?;
    let opened = job.run(&read, Some(builder));
    drop(read);
    // These members serve no watches: a hub of their own for the call.
    let mut hub = WatchHub::new(WatchConfig::default());
    server.state_opened(opened, &mut hub)?;
    server.apply_waiting()
}
