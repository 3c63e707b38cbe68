//! An in-memory [`Storage`] for tests, simulations and embedders that keep the log elsewhere.

use super::storage::{RaftState, Storage, StorageError, fitting_prefix};
use qraft_proto::raftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};

/// The raft log held in memory: a snapshot (possibly empty, index 0) followed by the entries
/// `snapshot.index + 1 ..= last_index`.
///
/// Write methods mirror what an embedder does with a `Ready`: `append` the entries,
/// `set_hard_state`, `apply_snapshot` a received snapshot; and, for log compaction,
/// `create_snapshot` followed by `compact`.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    hard_state: HardState,
    /// The configuration in force at the applied index, reported on restart.
    conf_state: ConfState,
    /// The latest snapshot (its conf state is the configuration at the snapshot's index).
    snapshot: Snapshot,
    /// Index and term of the last compacted entry (`first_index() - 1`). Never above the
    /// snapshot index, so every compacted entry is covered by the snapshot.
    compacted_index: u64,
    compacted_term: u64,
    /// `entries[i]` has index `compacted_index + 1 + i`.
    entries: Vec<Entry>,
}

impl MemStorage {
    /// An empty log with no configuration: a node started on it waits to receive a snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// A freshly bootstrapped log whose configuration is `conf_state`. The configuration lives in
    /// a snapshot at index 1, term 1 (and the hard state is term 1, commit 1), so members added
    /// later with an empty log receive the configuration by snapshot.
    pub fn new_with_conf_state(conf_state: ConfState) -> Self {
        Self {
            hard_state: HardState {
                term: 1,
                vote: 0,
                commit: 1,
            },
            conf_state: conf_state.clone(),
            snapshot: Snapshot {
                data: Default::default(),
                metadata: Some(SnapshotMetadata {
                    conf_state: Some(conf_state),
                    index: 1,
                    term: 1,
                }),
            },
            compacted_index: 1,
            compacted_term: 1,
            entries: Vec::new(),
        }
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.metadata.as_ref().map_or(0, |m| m.index)
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// Persists the hard state (term, vote, commit).
    pub fn set_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    /// Records the configuration in force after the embedder applied a conf change, so a restart
    /// resumes with it. (Persist it together with the applied index.)
    pub fn set_conf_state(&mut self, conf_state: ConfState) {
        self.conf_state = conf_state;
    }

    /// Appends entries, replacing any existing suffix they overlap (a leader's log wins).
    /// Entries already compacted are skipped. Fails if the entries would leave a gap.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.append_with(entries, |dst, src| dst.extend_from_slice(src))
    }

    /// [`MemStorage::append`] taking ownership of the entries, which saves cloning them
    /// (`Ready::entries` is owned by the embedder).
    pub fn append_owned(&mut self, mut entries: Vec<Entry>) -> Result<(), StorageError> {
        let skip = self.append_skip(&entries);
        entries.drain(..skip);
        self.place(entries)
    }

    /// How many leading entries are already compacted.
    fn append_skip(&self, entries: &[Entry]) -> usize {
        let first = self.compacted_index + 1;
        match entries.first() {
            Some(e) if e.index < first => ((first - e.index) as usize).min(entries.len()),
            _ => 0,
        }
    }

    fn append_with(
        &mut self,
        entries: &[Entry],
        extend: impl FnOnce(&mut Vec<Entry>, &[Entry]),
    ) -> Result<(), StorageError> {
        let entries = &entries[self.append_skip(entries)..];
        let Some(start) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        self.truncate_for(start)?;
        extend(&mut self.entries, entries);
        Ok(())
    }

    fn place(&mut self, mut entries: Vec<Entry>) -> Result<(), StorageError> {
        let Some(start) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        self.truncate_for(start)?;
        self.entries.append(&mut entries);
        Ok(())
    }

    /// Drops the entries from `start` on, refusing a gap.
    fn truncate_for(&mut self, start: u64) -> Result<(), StorageError> {
        let first = self.compacted_index + 1;
        let next = first + self.entries.len() as u64;
        if start > next {
            return Err(StorageError::Other(format!(
                "append would leave a gap: last index {}, appending at {start}",
                next - 1
            )));
        }
        self.entries.truncate((start - first) as usize);
        Ok(())
    }

    /// Replaces the log with a snapshot received from the leader.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        let meta = snapshot.metadata.clone().unwrap_or_default();
        if meta.index < self.snapshot_index() {
            return Err(StorageError::SnapshotOutOfDate);
        }
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.conf_state = meta.conf_state.clone().unwrap_or_default();
        self.snapshot = snapshot;
        self.compacted_index = meta.index;
        self.compacted_term = meta.term;
        self.entries.clear();
        Ok(())
    }

    /// Records the application's snapshot `data` taken at applied index `index` (which must be in
    /// the log). `conf_state` is the configuration at that index (`None`: the current one, which
    /// is right when `index` is the applied index).
    /// Entries stay until [`MemStorage::compact`].
    pub fn create_snapshot(
        &mut self,
        index: u64,
        conf_state: Option<ConfState>,
        data: prost::bytes::Bytes,
    ) -> Result<&Snapshot, StorageError> {
        if index <= self.snapshot_index() {
            return Err(StorageError::SnapshotOutOfDate);
        }
        let term = self.term(index)?;
        let conf_state = conf_state.or_else(|| Some(self.conf_state.clone()));
        self.snapshot = Snapshot {
            data,
            metadata: Some(SnapshotMetadata {
                conf_state,
                index,
                term,
            }),
        };
        Ok(&self.snapshot)
    }

    /// Discards entries up to and including `compact_index`. It must not exceed the snapshot
    /// index, so that a lagging follower can always be caught up by the snapshot.
    pub fn compact(&mut self, compact_index: u64) -> Result<(), StorageError> {
        if compact_index <= self.compacted_index {
            return Err(StorageError::Compacted);
        }
        if compact_index > self.snapshot_index() {
            return Err(StorageError::Other(format!(
                "compact to {compact_index} beyond the snapshot at {}; create a snapshot first",
                self.snapshot_index()
            )));
        }
        let term = self.term(compact_index)?;
        let drop = (compact_index - self.compacted_index) as usize;
        self.entries.drain(..drop);
        self.compacted_index = compact_index;
        self.compacted_term = term;
        Ok(())
    }

    fn last(&self) -> u64 {
        self.compacted_index + self.entries.len() as u64
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<RaftState, StorageError> {
        Ok(RaftState {
            hard_state: self.hard_state,
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        let first = self.compacted_index + 1;
        if lo < first {
            return Err(StorageError::Compacted);
        }
        if hi > self.last() + 1 {
            return Err(StorageError::Unavailable);
        }
        if lo >= hi {
            return Ok(Vec::new());
        }
        let range = &self.entries[(lo - first) as usize..(hi - first) as usize];
        Ok(range[..fitting_prefix(range, max_bytes)].to_vec())
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        let snap = self.compacted_index;
        if index == snap {
            return Ok(self.compacted_term);
        }
        if index < snap {
            return Err(StorageError::Compacted);
        }
        self.entries
            .get((index - snap - 1) as usize)
            .map(|e| e.term)
            .ok_or(StorageError::Unavailable)
    }

    fn first_index(&self) -> Result<u64, StorageError> {
        Ok(self.compacted_index + 1)
    }

    fn last_index(&self) -> Result<u64, StorageError> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64) -> Result<Snapshot, StorageError> {
        Ok(self.snapshot.clone())
    }
}
