//! The raft bookkeeping kept beside the log: hard state, conf state, the latest snapshot's
//! metadata and the log's start position. Loaded once at open and kept in memory (the copy a
//! write batch edits is published only after its transaction commits).

use heed::{RoTxn, RwTxn};
use qraft_proto::raftpb::{ConfState, HardState, SnapshotMetadata};

use super::codec::{decode, decode_pair, encode_pair};
use super::error::{Result, StorageError};
use super::tables::{KEY_CONF_STATE, KEY_HARD_STATE, KEY_LOG_START, KEY_SNAPSHOT, Tables};

/// An (index, term) position in the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogPosition {
    pub index: u64,
    pub term: u64,
}

/// The log's extent: entries `log_start.index + 1 ..= last_index` are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogBounds {
    pub log_start: LogPosition,
    pub last_index: u64,
}

/// Everything raft needs to restart, plus the log bounds.
///
/// Invariants: `log_start.index <= last_index`; the log table holds exactly the entries
/// `log_start.index + 1 ..= last_index`; `log_start.index <= snapshot.index` — the log is only
/// compacted up to the latest snapshot, so a follower that needs a compacted entry can always be
/// sent that snapshot instead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistedRaftState {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    /// Metadata of the latest snapshot (index 0 when there is none).
    pub snapshot: SnapshotMetadata,
    /// The position just before the first retained entry.
    pub log_start: LogPosition,
    pub last_index: u64,
}

impl PersistedRaftState {
    pub fn first_index(&self) -> u64 {
        self.log_start.index + 1
    }

    pub(crate) fn bounds(&self) -> LogBounds {
        LogBounds {
            log_start: self.log_start,
            last_index: self.last_index,
        }
    }

    pub(crate) fn load(txn: &RoTxn<'_>, tables: &Tables) -> Result<Self> {
        let state = tables.raft_state;
        let hard_state = match state.get(txn, KEY_HARD_STATE)? {
            Some(bytes) => decode("hard state", bytes)?,
            None => HardState::default(),
        };
        let conf_state = match state.get(txn, KEY_CONF_STATE)? {
            Some(bytes) => decode("conf state", bytes)?,
            None => ConfState::default(),
        };
        let snapshot = match state.get(txn, KEY_SNAPSHOT)? {
            Some(bytes) => decode("snapshot metadata", bytes)?,
            None => SnapshotMetadata::default(),
        };
        let log_start = match state.get(txn, KEY_LOG_START)? {
            Some(bytes) => {
                let (index, term) = decode_pair("log start", bytes)?;
                LogPosition { index, term }
            }
            None => LogPosition::default(),
        };
        let last_index = match tables.log.last(txn)? {
            Some((index, _)) => index,
            None => log_start.index,
        };
        if last_index < log_start.index {
            return Err(StorageError::corrupt(
                "raft log",
                format!(
                    "last entry {last_index} precedes log start {}",
                    log_start.index
                ),
            ));
        }
        if let Some((first, _)) = tables.log.first(txn)?
            && first != log_start.index + 1
        {
            return Err(StorageError::corrupt(
                "raft log",
                format!(
                    "first entry {first} does not follow log start {}",
                    log_start.index
                ),
            ));
        }
        Ok(PersistedRaftState {
            hard_state,
            conf_state,
            snapshot,
            log_start,
            last_index,
        })
    }
}

pub(crate) fn store_hard_state(txn: &mut RwTxn<'_>, tables: &Tables, hs: &HardState) -> Result<()> {
    use prost::Message;
    tables
        .raft_state
        .put(txn, KEY_HARD_STATE, &hs.encode_to_vec())?;
    Ok(())
}

pub(crate) fn store_conf_state(txn: &mut RwTxn<'_>, tables: &Tables, cs: &ConfState) -> Result<()> {
    use prost::Message;
    tables
        .raft_state
        .put(txn, KEY_CONF_STATE, &cs.encode_to_vec())?;
    Ok(())
}

pub(crate) fn store_snapshot_meta(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    meta: &SnapshotMetadata,
) -> Result<()> {
    use prost::Message;
    tables
        .raft_state
        .put(txn, KEY_SNAPSHOT, &meta.encode_to_vec())?;
    Ok(())
}

pub(crate) fn store_log_start(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    pos: LogPosition,
) -> Result<()> {
    tables
        .raft_state
        .put(txn, KEY_LOG_START, &encode_pair(pos.index, pos.term))?;
    Ok(())
}
