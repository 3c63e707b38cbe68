//! The node's view of the log: persisted entries (through [`Storage`]) followed by unstable ones.

use super::storage::{Storage, StorageError, entry_size, fitting_prefix};
use super::unstable::Unstable;
use qraft_proto::raftpb::{Entry, Snapshot};

/// The combined log. Invariant: `applied <= committed <= last_index()`.
#[derive(Debug)]
pub struct RaftLog<S> {
    pub storage: S,
    pub unstable: Unstable,
    /// Highest index known to be stored on a quorum.
    pub committed: u64,
    /// Highest index handed to the embedder for application.
    pub applied: u64,
}

impl<S: Storage> RaftLog<S> {
    pub fn new(storage: S) -> Result<Self, StorageError> {
        let first = storage.first_index()?;
        let last = storage.last_index()?;
        Ok(Self {
            storage,
            unstable: Unstable::new(last + 1),
            committed: first - 1,
            applied: first - 1,
        })
    }

    pub fn first_index(&self) -> u64 {
        self.unstable
            .maybe_first_index()
            .unwrap_or_else(|| self.storage.first_index().unwrap_or(1))
    }

    pub fn last_index(&self) -> u64 {
        self.unstable
            .maybe_last_index()
            .unwrap_or_else(|| self.storage.last_index().unwrap_or(0))
    }

    /// The term of entry `index`: `Compacted` below `first_index() - 1`, `Unavailable` above the
    /// last index.
    pub fn term(&self, index: u64) -> Result<u64, StorageError> {
        let dummy = self.first_index() - 1;
        if index < dummy {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        if let Some(t) = self.unstable.maybe_term(index) {
            return Ok(t);
        }
        self.storage.term(index)
    }

    /// Term of `index`, 0 when unknown (compacted or beyond the log).
    pub fn term_or_zero(&self, index: u64) -> u64 {
        self.term(index).unwrap_or(0)
    }

    pub fn last_term(&self) -> u64 {
        self.term_or_zero(self.last_index())
    }

    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index).is_ok_and(|t| t == term)
    }

    /// Whether a candidate whose log ends at `(last_index, term)` is at least as up to date.
    pub fn is_up_to_date(&self, last_index: u64, term: u64) -> bool {
        let my_term = self.last_term();
        term > my_term || (term == my_term && last_index >= self.last_index())
    }

    /// The index of the first entry in `entries` that conflicts with (or extends) the log, or 0.
    pub fn find_conflict(&self, entries: &[Entry]) -> u64 {
        let last = self.last_index();
        entries
            .iter()
            .find(|e| e.index > last || !self.match_term(e.index, e.term))
            .map_or(0, |e| e.index)
    }

    /// For fast back-off: the largest `(i, t)` with `i <= index` and `t <= term` in this log.
    /// A leader that receives it as a rejection hint can skip a whole term per round trip.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut index = index.min(self.last_index());
        loop {
            match self.term(index) {
                Ok(t) if t > term && index > 0 => index -= 1,
                Ok(t) => return (index, t),
                Err(_) => return (index, 0),
            }
        }
    }

    /// Follower side of `MsgApp`: if the log matches at `(index, log_term)`, appends the new
    /// entries (truncating a conflicting suffix) and advances the commit index. Returns the index
    /// of the last new entry, or `None` when the log does not match (or the leader tried to
    /// overwrite a committed entry, which a correct leader never does).
    pub fn maybe_append(
        &mut self,
        index: u64,
        log_term: u64,
        committed: u64,
        mut entries: Vec<Entry>,
    ) -> Option<u64> {
        if !self.match_term(index, log_term) {
            return None;
        }
        let last_new = index + entries.len() as u64;
        let conflict = self.find_conflict(&entries);
        if conflict != 0 {
            if conflict <= self.committed {
                tracing::error!(
                    conflict,
                    committed = self.committed,
                    "refusing to overwrite committed entry"
                );
                return None;
            }
            let start = (conflict - (index + 1)) as usize;
            entries.drain(..start);
            self.append(entries);
        }
        self.commit_to(committed.min(last_new));
        Some(last_new)
    }

    pub fn append(&mut self, entries: Vec<Entry>) -> u64 {
        if let Some(first) = entries.first() {
            debug_assert!(first.index > self.committed);
            self.unstable.truncate_and_append(entries);
        }
        self.last_index()
    }

    pub fn commit_to(&mut self, index: u64) {
        let index = index.min(self.last_index());
        if index > self.committed {
            self.committed = index;
        }
    }

    /// Leader side: commits `max_index` if it is in `term` (the current term). Entries from
    /// earlier terms commit only indirectly, when a current-term entry after them commits.
    pub fn maybe_commit(&mut self, max_index: u64, term: u64) -> bool {
        if max_index > self.committed && self.term_or_zero(max_index) == term {
            self.commit_to(max_index);
            return true;
        }
        false
    }

    pub fn applied_to(&mut self, index: u64) {
        if index > self.applied && index <= self.committed {
            self.applied = index;
        }
    }

    pub fn stable_to(&mut self, index: u64, term: u64) {
        self.unstable.stable_to(index, term);
    }

    pub fn stable_snap_to(&mut self, index: u64) {
        self.unstable.stable_snap_to(index);
    }

    /// Entries `[lo, hi)` limited to `max_bytes`, from storage and/or the unstable tail.
    pub fn slice(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        if lo < self.first_index() {
            return Err(StorageError::Compacted);
        }
        if hi > self.last_index() + 1 {
            return Err(StorageError::Unavailable);
        }
        let offset = self.unstable.offset;
        let mut out = if lo < offset {
            self.storage.entries(lo, hi.min(offset), max_bytes)?
        } else {
            Vec::new()
        };
        if lo < offset && (out.len() as u64) < hi.min(offset) - lo {
            return Ok(out);
        }
        if hi > offset {
            let unstable = self.unstable.slice(lo.max(offset), hi);
            if out.is_empty() {
                return Ok(unstable[..fitting_prefix(unstable, max_bytes)].to_vec());
            }
            let mut size: u64 = out.iter().map(entry_size).sum();
            for e in unstable {
                size += entry_size(e);
                if size > max_bytes {
                    break;
                }
                out.push(e.clone());
            }
        }
        Ok(out)
    }

    pub fn entries_from(&self, lo: u64, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        self.slice(lo, self.last_index() + 1, max_bytes)
    }

    pub fn has_next_committed_entries(&self) -> bool {
        self.committed > self.applied.max(self.first_index() - 1)
    }

    /// The committed entries not yet handed out for application.
    pub fn next_committed_entries(&self, max_bytes: u64) -> Vec<Entry> {
        let lo = self.applied.max(self.first_index() - 1) + 1;
        if self.committed < lo {
            return Vec::new();
        }
        self.slice(lo, self.committed + 1, max_bytes)
            .unwrap_or_default()
    }

    pub fn has_pending_snapshot(&self) -> bool {
        self.unstable.snapshot.is_some()
    }

    pub fn snapshot(&self, request_index: u64) -> Result<Snapshot, StorageError> {
        if let Some(s) = &self.unstable.snapshot {
            return Ok(s.clone());
        }
        self.storage.snapshot(request_index)
    }

    /// Replaces the log with a snapshot received from the leader.
    pub fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.as_ref().map_or(0, |m| m.index);
        self.committed = index;
        self.unstable.restore(snapshot);
    }
}
