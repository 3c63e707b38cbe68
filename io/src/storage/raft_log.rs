//! The raft log in LMDB: reads bounded by the persisted log positions, appends that replace a
//! conflicting suffix, compaction and snapshot installation.
//!
//! Every function takes the [`PersistedRaftState`] that matches the transaction it runs in; the
//! write functions update it so the caller can publish it once the transaction commits.

use std::ops::Bound;

use heed::{PutFlags, RoTxn, RwTxn};
use prost::Message;
use qraft_proto::raftpb::{ConfState, Entry, SnapshotMetadata};

use super::codec::decode;
use super::error::{Result, StorageError};
use super::raft_state::{
    LogBounds, LogPosition, PersistedRaftState, store_conf_state, store_hard_state,
    store_log_start, store_snapshot_meta,
};
use super::tables::Tables;

/// Entries `lo..hi` (hi exclusive), at most `max_bytes` of encoded entries but always at least
/// one when the range is not empty — etcd's `Storage::Entries` contract.
pub(crate) fn entries(
    txn: &RoTxn<'_>,
    tables: &Tables,
    state: LogBounds,
    lo: u64,
    hi: u64,
    max_bytes: u64,
) -> Result<Vec<Entry>> {
    if lo <= state.log_start.index {
        return Err(StorageError::Compacted);
    }
    if hi > state.last_index + 1 {
        return Err(StorageError::Unavailable);
    }
    let mut out = Vec::new();
    if lo >= hi {
        return Ok(out);
    }
    let mut total: u64 = 0;
    let mut next = lo;
    for item in tables.log.range(txn, &(lo..hi))? {
        let (index, bytes) = item?;
        if index != next {
            break;
        }
        let size = bytes.len() as u64;
        if !out.is_empty() && total.saturating_add(size) > max_bytes {
            return Ok(out);
        }
        out.push(decode_entry(index, bytes)?);
        total = total.saturating_add(size);
        next += 1;
    }
    if next < hi {
        // The table disagrees with the persisted bounds.
        return Err(StorageError::corrupt(
            "raft log",
            format!("missing entry {next}"),
        ));
    }
    Ok(out)
}

pub(crate) fn term(txn: &RoTxn<'_>, tables: &Tables, state: LogBounds, index: u64) -> Result<u64> {
    if index == state.log_start.index {
        return Ok(state.log_start.term);
    }
    if index < state.log_start.index {
        return Err(StorageError::Compacted);
    }
    if index > state.last_index {
        return Err(StorageError::Unavailable);
    }
    match tables.log.get(txn, &index)? {
        Some(bytes) => Ok(decode_entry(index, bytes)?.term),
        None => Err(StorageError::corrupt(
            "raft log",
            format!("missing entry {index}"),
        )),
    }
}

fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry> {
    let entry: Entry = decode("raft entry", bytes)?;
    if entry.index != index {
        return Err(StorageError::corrupt(
            "raft entry",
            format!("entry stored at {index} says index {}", entry.index),
        ));
    }
    Ok(entry)
}

/// Appends `new` (consecutive indexes). Entries already compacted are skipped; any stored entry
/// at or after the first new index is deleted first, so the log ends with `new` — raft only
/// hands over entries after checking where they diverge, so this is the conflict truncation.
pub(crate) fn append(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    state: &mut PersistedRaftState,
    new: &[Entry],
) -> Result<()> {
    let Some(first) = new.first() else {
        return Ok(());
    };
    for pair in new.windows(2) {
        if pair[1].index != pair[0].index + 1 {
            return Err(StorageError::NotConsecutive(pair[1].index));
        }
    }
    if first.index > state.last_index + 1 {
        return Err(StorageError::LogGap {
            first_new: first.index,
            last_index: state.last_index,
        });
    }
    let compacted = if first.index > state.log_start.index {
        0
    } else {
        usize::try_from(state.log_start.index - first.index + 1).unwrap_or(usize::MAX)
    };
    let Some(new) = new.get(compacted..) else {
        return Ok(());
    };
    let Some(first) = new.first() else {
        return Ok(());
    };
    if first.index <= state.last_index {
        let range = (Bound::Included(first.index), Bound::Unbounded);
        tables.log.delete_range(txn, &range)?;
    }
    let mut buf = Vec::new();
    for entry in new {
        buf.clear();
        entry
            .encode(&mut buf)
            .map_err(|err| StorageError::corrupt("raft entry", err))?;
        // Keys are increasing and past every remaining key: APPEND skips the B-tree search.
        tables
            .log
            .put_with_flags(txn, PutFlags::APPEND, &entry.index, &buf)?;
    }
    state.last_index = new.last().map_or(state.last_index, |e| e.index);
    Ok(())
}

/// Discards entries up to and including `index`; `index` becomes the new log start.
pub(crate) fn compact(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    state: &mut PersistedRaftState,
    index: u64,
) -> Result<()> {
    if index <= state.log_start.index {
        return Err(StorageError::Compacted);
    }
    if index > state.last_index {
        return Err(StorageError::Unavailable);
    }
    if index > state.snapshot.index {
        return Err(StorageError::CompactBeyondSnapshot {
            index,
            snapshot: state.snapshot.index,
        });
    }
    let term = term(txn, tables, state.bounds(), index)?;
    tables.log.delete_range(txn, &(..=index))?;
    state.log_start = LogPosition { index, term };
    store_log_start(txn, tables, state.log_start)?;
    Ok(())
}

/// Records a snapshot of the local state at `index` (in the log, past the latest snapshot)
/// with `conf_state` (`None`: the current one) — the driver calls it after applying `index`.
pub(crate) fn create_snapshot(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    state: &mut PersistedRaftState,
    index: u64,
    conf_state: Option<ConfState>,
) -> Result<SnapshotMetadata> {
    if index <= state.snapshot.index {
        return Err(StorageError::SnapshotOutOfDate {
            given: index,
            stored: state.snapshot.index,
        });
    }
    let term = term(txn, tables, state.bounds(), index)?;
    let conf_state = conf_state.unwrap_or_else(|| state.conf_state.clone());
    let meta = SnapshotMetadata {
        conf_state: Some(conf_state),
        index,
        term,
    };
    store_snapshot_meta(txn, tables, &meta)?;
    state.snapshot = meta.clone();
    Ok(meta)
}

/// Installs a snapshot received from the leader: the whole log is replaced by the snapshot's
/// position, its conf state becomes the current one, and the hard state's term and commit are
/// raised to the snapshot's. The key space is restored separately (in the same write batch)
/// from the streamed snapshot data.
pub(crate) fn apply_snapshot(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    state: &mut PersistedRaftState,
    meta: &SnapshotMetadata,
) -> Result<()> {
    if meta.index < state.snapshot.index {
        return Err(StorageError::SnapshotOutOfDate {
            given: meta.index,
            stored: state.snapshot.index,
        });
    }
    tables.log.clear(txn)?;
    let conf_state = meta.conf_state.clone().unwrap_or_default();
    state.log_start = LogPosition {
        index: meta.index,
        term: meta.term,
    };
    state.last_index = meta.index;
    state.snapshot = meta.clone();
    state.conf_state = conf_state;
    state.hard_state.term = state.hard_state.term.max(meta.term);
    state.hard_state.commit = state.hard_state.commit.max(meta.index);
    store_hard_state(txn, tables, &state.hard_state)?;
    store_log_start(txn, tables, state.log_start)?;
    store_snapshot_meta(txn, tables, &state.snapshot)?;
    store_conf_state(txn, tables, &state.conf_state)?;
    Ok(())
}
