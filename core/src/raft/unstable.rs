//! Entries and a snapshot the node has accepted but the embedder has not yet persisted.

use qraft_proto::raftpb::{Entry, Snapshot};

/// The not-yet-persisted tail of the log. `entries[i]` has index `offset + i`. A pending
/// `snapshot`, if any, precedes the entries (`offset == snapshot.index + 1`).
#[derive(Debug, Default)]
pub struct Unstable {
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub offset: u64,
}

fn snap_index(s: &Snapshot) -> u64 {
    s.metadata.as_ref().map_or(0, |m| m.index)
}

fn snap_term(s: &Snapshot) -> u64 {
    s.metadata.as_ref().map_or(0, |m| m.term)
}

impl Unstable {
    pub fn new(offset: u64) -> Self {
        Self {
            snapshot: None,
            entries: Vec::new(),
            offset,
        }
    }

    /// The first index known only here (when a snapshot is pending).
    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| snap_index(s) + 1)
    }

    pub fn maybe_last_index(&self) -> Option<u64> {
        if !self.entries.is_empty() {
            return Some(self.offset + self.entries.len() as u64 - 1);
        }
        self.snapshot.as_ref().map(snap_index)
    }

    pub fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            let snap = self.snapshot.as_ref()?;
            return (snap_index(snap) == index).then(|| snap_term(snap));
        }
        let last = self.maybe_last_index()?;
        if index > last {
            return None;
        }
        Some(self.entries[(index - self.offset) as usize].term)
    }

    /// The embedder persisted entries up to `(index, term)`; forget them unless they were replaced
    /// meanwhile (then the term no longer matches and they stay to be persisted again).
    pub fn stable_to(&mut self, index: u64, term: u64) {
        if self.maybe_term(index) != Some(term) || index < self.offset {
            return;
        }
        self.entries.drain(..=(index - self.offset) as usize);
        self.offset = index + 1;
    }

    pub fn stable_snap_to(&mut self, index: u64) {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| snap_index(s) == index)
        {
            self.snapshot = None;
        }
    }

    pub fn restore(&mut self, snapshot: Snapshot) {
        self.offset = snap_index(&snapshot) + 1;
        self.entries.clear();
        self.snapshot = Some(snapshot);
    }

    /// Appends `entries`, dropping any existing entries at or after the first new index.
    pub fn truncate_and_append(&mut self, mut entries: Vec<Entry>) {
        let Some(after) = entries.first().map(|e| e.index) else {
            return;
        };
        let next = self.offset + self.entries.len() as u64;
        if after == next {
            self.entries.append(&mut entries);
        } else if after <= self.offset {
            self.offset = after;
            self.entries = entries;
        } else {
            self.entries.truncate((after - self.offset) as usize);
            self.entries.append(&mut entries);
        }
    }

    /// Entries `[lo, hi)`, which the caller guarantees lie within the unstable range.
    pub fn slice(&self, lo: u64, hi: u64) -> &[Entry] {
        &self.entries[(lo - self.offset) as usize..(hi - self.offset) as usize]
    }
}
