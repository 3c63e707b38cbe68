//! What `ready()` handed out for applying and `advance()` has not applied yet: the committed
//! entries, a snapshot from the leader to install, and whether applying is held back (paused
//! for a defragmentation, `super::defragment`, or the state reopening after a snapshot:
//! `super::reopen`). Owned by the raft cycle (`super::ready`), which alone takes from it;
//! `super::defragment` pauses and resumes it.
//!
//! Invariants: entries wait in commit order (those held back by a pause in front of newer
//! ones); none is handed out for the shell's own transaction while held back or while a
//! snapshot waits (installing it drops the state, so `advance` does all of that turn itself).

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
    /// Applying is held back for a defragmentation (`super::defragment`); `entries` keeps
    /// what waits.
    paused: bool,
    /// Applying is held back while the state reopens after a snapshot (`super::reopen`).
    reopening: bool,
}

impl ApplyQueue {
    /// A ready's committed entries (behind any that wait) and its snapshot, if any.
    pub fn push_ready(&mut self, committed: Vec<Entry>, snapshot: Option<Snapshot>) {
        self.entries.extend(committed);
        self.snapshot = snapshot;
    }

    /// Whether applying is held back, by the shell or for the state to reopen.
    pub fn is_held(&self) -> bool {
        self.paused || self.reopening
    }

    pub fn hold_for_reopen(&mut self, reopening: bool) {
        self.reopening = reopening;
    }

    pub fn pause(&mut self) {
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.paused = false;
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
        if self.is_held() || self.snapshot.is_some() {
            return Vec::new();
        }
        self.take_entries()
    }

    /// Whether entries wait to be applied at the next advance (none while paused).
    pub fn has_entries_to_apply(&self) -> bool {
        !self.is_held() && !self.entries.is_empty()
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
