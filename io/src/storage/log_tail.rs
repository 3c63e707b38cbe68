//! What the raft journal holds that LMDB does not yet: the entries and hard state appended
//! since the last write batch, which folds them into LMDB (see `WriteBatch::new`).
//!
//! Raft reads see the log as LMDB's entries below the tail's first index followed by the
//! tail's: a tail starting at or below LMDB's last entry replaces that suffix (the conflict
//! truncation), exactly as the batch that folds it in will.
//!
//! Invariants: `entries` are consecutive and start past the log start; the published
//! `PersistedRaftState` (its `last_index` and `hard_state`) already includes the tail; the tail
//! changes only under the storage's writer lock, together with that state.

use prost::Message;
use qraft_proto::raftpb::{Entry, HardState};

use super::error::{Result, StorageError};
use super::journal::JournalPosition;
use super::raft_state::{LogBounds, PersistedRaftState};

#[derive(Debug, Default)]
pub(crate) struct LogTail {
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
    /// The journal position after the last record folded into this tail.
    journal_end: JournalPosition,
    /// The journal position LMDB holds (as of its last commit).
    lmdb_position: JournalPosition,
}

impl LogTail {
    pub fn new(position: JournalPosition) -> Self {
        LogTail {
            journal_end: position,
            lmdb_position: position,
            ..LogTail::default()
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn hard_state(&self) -> Option<&HardState> {
        self.hard_state.as_ref()
    }

    /// Whether a write batch has anything to fold into LMDB.
    pub fn is_pending(&self) -> bool {
        !self.entries.is_empty()
            || self.hard_state.is_some()
            || self.journal_end != self.lmdb_position
    }

    pub fn journal_end(&self) -> JournalPosition {
        self.journal_end
    }

    pub fn lmdb_position(&self) -> JournalPosition {
        self.lmdb_position
    }

    fn first_index(&self) -> Option<u64> {
        self.entries.first().map(|e| e.index)
    }

    /// Checks that `entries` can follow the log `state` describes (consecutive, no gap).
    pub fn check(state: &PersistedRaftState, entries: &[Entry]) -> Result<()> {
        for pair in entries.windows(2) {
            if pair[1].index != pair[0].index + 1 {
                return Err(StorageError::NotConsecutive(pair[1].index));
            }
        }
        match entries.first() {
            Some(first) if first.index > state.last_index + 1 => Err(StorageError::LogGap {
                first_new: first.index,
                last_index: state.last_index,
            }),
            _ => Ok(()),
        }
    }

    /// Folds in a record [`Self::check`] accepted, updating the published `state` with it.
    /// `journal_end` is the position after the record (`None`: kept in memory only — a
    /// commit index, which a crash may lose).
    pub fn absorb(
        &mut self,
        state: &mut PersistedRaftState,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        journal_end: Option<JournalPosition>,
    ) {
        let live = entries
            .iter()
            .skip_while(|e| e.index <= state.log_start.index);
        let mut live = live.peekable();
        if let Some(first) = live.peek().map(|e| e.index) {
            match self.first_index() {
                Some(tail_first) if first > tail_first => {
                    self.entries.truncate((first - tail_first) as usize);
                }
                _ => self.entries.clear(),
            }
            self.entries.extend(live.cloned());
            state.last_index = self.entries.last().map_or(state.last_index, |e| e.index);
        }
        if let Some(hard_state) = hard_state {
            state.hard_state = *hard_state;
            self.hard_state = Some(*hard_state);
        }
        if let Some(end) = journal_end {
            self.journal_end = end;
        }
    }

    /// After a write batch folded the tail into LMDB and committed.
    pub fn folded(&mut self) {
        self.entries.clear();
        self.hard_state = None;
        self.lmdb_position = self.journal_end;
    }

    /// The part of the log LMDB serves: everything before the tail.
    pub fn lmdb_bounds(&self, state: &PersistedRaftState) -> LogBounds {
        let mut bounds = state.bounds();
        if let Some(first) = self.first_index() {
            bounds.last_index = first - 1;
        }
        bounds
    }

    /// The term of `index` if the tail holds it.
    pub fn term(&self, index: u64) -> Option<u64> {
        let first = self.first_index()?;
        let offset = index.checked_sub(first)?;
        self.entries.get(offset as usize).map(|e| e.term)
    }

    /// Whether `index` is at or past the tail's first entry (so only the tail can hold it).
    pub fn covers(&self, index: u64) -> bool {
        self.first_index().is_some_and(|first| index >= first)
    }

    /// Appends the tail's entries from `lo` (which it covers) up to `hi` to `out`, while
    /// `budget` bytes last — but always one when `out` is empty.
    pub fn extend_entries(&self, out: &mut Vec<Entry>, lo: u64, hi: u64, budget: &mut u64) {
        let Some(first) = self.first_index() else {
            return;
        };
        let start = lo.saturating_sub(first) as usize;
        let end = hi.saturating_sub(first).min(self.entries.len() as u64) as usize;
        for entry in self.entries.get(start..end).unwrap_or_default() {
            let size = entry.encoded_len() as u64;
            if !out.is_empty() && size > *budget {
                *budget = 0;
                return;
            }
            *budget = budget.saturating_sub(size);
            out.push(entry.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LogPosition;

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range
            .map(|index| Entry {
                index,
                term,
                ..Entry::default()
            })
            .collect()
    }

    fn state(last_index: u64) -> PersistedRaftState {
        PersistedRaftState {
            log_start: LogPosition { index: 2, term: 1 },
            last_index,
            ..PersistedRaftState::default()
        }
    }

    #[test]
    fn a_later_record_truncates_the_tail_where_it_starts() {
        let mut state = state(10);
        let mut tail = LogTail::default();
        tail.absorb(&mut state, &entries(11..=15, 2), None, None);
        assert_eq!(state.last_index, 15);
        assert_eq!(tail.lmdb_bounds(&state).last_index, 10);
        tail.absorb(&mut state, &entries(13..=13, 3), None, None);
        assert_eq!(state.last_index, 13);
        assert_eq!(tail.term(12), Some(2));
        assert_eq!(tail.term(13), Some(3));
        assert_eq!(tail.term(14), None);
        // Starting below LMDB's last entry shadows that suffix of LMDB too.
        tail.absorb(&mut state, &entries(8..=9, 4), None, None);
        assert_eq!(state.last_index, 9);
        assert_eq!(tail.lmdb_bounds(&state).last_index, 7);
        assert!(tail.covers(8) && !tail.covers(7));
    }

    #[test]
    fn entries_below_the_log_start_are_skipped_and_gaps_refused() {
        let mut state = state(5);
        let mut tail = LogTail::default();
        assert!(LogTail::check(&state, &entries(7..=8, 1)).is_err());
        let mut broken = entries(6..=7, 1);
        broken[1].index = 9;
        assert!(LogTail::check(&state, &broken).is_err());
        tail.absorb(&mut state, &entries(1..=3, 1), None, None);
        assert_eq!(tail.entries().len(), 1);
        assert_eq!(tail.lmdb_bounds(&state).last_index, 2);
    }

    #[test]
    fn entries_are_handed_out_within_the_byte_budget() {
        let mut state = state(2);
        let mut tail = LogTail::default();
        tail.absorb(&mut state, &entries(3..=8, 1), None, None);
        let one = entries(3..=3, 1)[0].encoded_len() as u64;
        let mut out = Vec::new();
        let mut budget = one * 2;
        tail.extend_entries(&mut out, 4, 9, &mut budget);
        assert_eq!(out.iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 5]);
        let mut out = Vec::new();
        let mut budget = 0;
        tail.extend_entries(&mut out, 4, 9, &mut budget);
        assert_eq!(out.len(), 1, "at least one entry");
    }
}
