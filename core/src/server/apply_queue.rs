//! What `ready()` handed out for applying and `advance()` has not applied yet: the committed
//! entries, a snapshot from the leader to install, and whether applying is paused
//! ([`super::Server::pause_apply`]). Owned by the raft cycle (`super::ready`); nothing else
//! touches it.
//!
//! Invariants: entries wait in commit order (those held back by a pause in front of newer
//! ones); none is handed out for the shell's own transaction while paused or while a snapshot
//! waits (installing it reopens the state, so `advance` does all of that turn itself).

use qraft_proto::raftpb::{Entry, Snapshot};

#[derive(Debug, Default)]
pub(super) struct ApplyQueue {
    /// Committed entries of the last `ready()`s, applied by `advance()`.
    entries: Vec<Entry>,
    /// A snapshot from the leader in the last `ready()`, installed by `advance()`.
    snapshot: Option<Snapshot>,
    /// Entries were applied since the last `advance()` (`advance_in` or `advance` itself):
    /// storage migration and the periodic snapshot are due a look.
    applied_in_batch: bool,
    /// Applying is held back; `entries` keeps what waits.
    paused: bool,
}

impl ApplyQueue {
    /// A ready's committed entries (behind any that wait) and its snapshot, if any.
    pub fn push_ready(&mut self, committed: Vec<Entry>, snapshot: Option<Snapshot>) {
        self.entries.extend(committed);
        self.snapshot = snapshot;
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn pause(&mut self) {
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    pub fn has_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }

    pub fn take_snapshot(&mut self) -> Option<Snapshot> {
        self.snapshot.take()
    }

    /// Every waiting entry, to apply now.
    pub fn take_entries(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.entries)
    }

    /// The entries the shell's own transaction may apply (`advance_in`): none while paused or
    /// while a snapshot waits.
    pub fn take_for_shell_txn(&mut self) -> Vec<Entry> {
        if self.paused || self.snapshot.is_some() {
            return Vec::new();
        }
        self.take_entries()
    }

    /// Whether entries wait to be applied at the next advance (none while paused).
    pub fn has_entries_to_apply(&self) -> bool {
        !self.paused && !self.entries.is_empty()
    }

    /// Entries were applied in this batch.
    pub fn mark_applied(&mut self) {
        self.applied_in_batch = true;
    }

    /// Whether entries were applied since the last call.
    pub fn take_applied(&mut self) -> bool {
        std::mem::take(&mut self.applied_in_batch)
    }
}
