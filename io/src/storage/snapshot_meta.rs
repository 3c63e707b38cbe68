//! The raft snapshot metadata that matches an exported key space.
//!
//! A snapshot sent to a follower is the key space read in one transaction, so its metadata must
//! describe exactly that point: the applied index in the data (meta `consistent_index`), the term
//! of that entry (meta `term`) and the configuration applied with it (meta `confState`). The
//! follower then resets its log to that index with a commit index equal to its applied index,
//! keeping raft's `applied <= committed <= last` invariant — which metadata from an older
//! stored snapshot, paired with newer data, would break.

use qraft_core::backend::meta::{CONF_STATE, TERM};
use qraft_proto::raftpb::{ConfState, SnapshotMetadata};

use super::codec::{decode, decode_u64};
use super::error::Result;
use super::raft_log;
use super::raft_state::PersistedRaftState;
use super::read_txn::ReadTxn;
use super::tables::Table;

/// The metadata of the state `read` sees. `raft` is the raft state published together with
/// that transaction; its snapshot is used while nothing past it has been applied.
pub(crate) fn applied_snapshot_metadata(
    read: &ReadTxn,
    raft: &PersistedRaftState,
) -> Result<SnapshotMetadata> {
    let index = read.applied_index()?;
    if index <= raft.snapshot.index {
        return Ok(raft.snapshot.clone());
    }
    let term = match read.get(Table::Meta, TERM)? {
        Some(bytes) => decode_u64("applied term", bytes)?,
        None => raft_log::term(read.raw(), read.tables(), raft.bounds(), index)?,
    };
    let conf_state = match read.get(Table::Meta, CONF_STATE)? {
        Some(bytes) => decode::<ConfState>("applied conf state", bytes)?,
        None => raft.conf_state.clone(),
    };
    Ok(SnapshotMetadata {
        conf_state: Some(conf_state),
        index,
        term,
    })
}
