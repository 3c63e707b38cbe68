//! Snapshots of the application state: taken periodically so the raft log can be compacted,
//! and installed when a lagging member receives one from the leader.
//!
//! The image is every row of every backend table (key space, leases, auth, members, meta with
//! the applied index), encoded as protobuf. It goes through the `Backend` trait only, so it
//! works for any backend; a durable shell may instead ship its database file, as long as
//! installing it leaves the same rows.

use prost::Message as _;
use qraft_proto::raftpb::Snapshot;

use crate::backend::{Backend, BackendError, ReadTxn, Table, Visit, WriteTxn, meta};
use crate::error::Result;
use crate::raft::Storage;

use super::output::Output;
use super::state_machine::Server;

#[derive(Clone, PartialEq, prost::Message)]
struct SnapshotRow {
    #[prost(string, tag = "1")]
    table: String,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SnapshotImage {
    #[prost(message, repeated, tag = "1")]
    rows: Vec<SnapshotRow>,
}

/// Every row of every table, as of `txn`.
pub fn encode_image<T: ReadTxn + ?Sized>(txn: &T) -> Result<Vec<u8>, BackendError> {
    let mut image = SnapshotImage::default();
    for table in Table::ALL {
        txn.scan(table, &[], None, &mut |key, value| {
            image.rows.push(SnapshotRow {
                table: table.name().to_string(),
                key: key.to_vec(),
                value: value.to_vec(),
            });
            Visit::Continue(())
        })?;
    }
    Ok(image.encode_to_vec())
}

/// Replaces every table's content with the image's, in the caller's write transaction.
pub fn install_image<T: WriteTxn + ?Sized>(txn: &mut T, data: &[u8]) -> Result<(), BackendError> {
    let image = SnapshotImage::decode(data).map_err(|err| BackendError::Corrupt {
        table: Table::Meta,
        reason: format!("snapshot image: {err}"),
    })?;
    for table in Table::ALL {
        let mut keys = Vec::new();
        txn.scan(table, &[], None, &mut |key, _| {
            keys.push(key.to_vec());
            Visit::Continue(())
        })?;
        for key in keys {
            txn.delete(table, &key)?;
        }
    }
    for row in image.rows {
        let table = Table::ALL
            .into_iter()
            .find(|t| t.name() == row.table)
            .ok_or_else(|| BackendError::Corrupt {
                table: Table::Meta,
                reason: format!("snapshot image names unknown table {:?}", row.table),
            })?;
        txn.put(table, &row.key, &row.value)?;
    }
    Ok(())
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Installs a snapshot received from the leader (already persisted to the raft storage by
    /// the shell): the backend takes the image's rows in one transaction, with the snapshot's
    /// index as the applied index, and the in-memory state is dropped, for the shell to reopen
    /// off its loop thread (`super::reopen`). Without `snapshot_images` the shell streams
    /// snapshots itself and has already put their data in the backend (checked: its applied
    /// index must be the snapshot's); only the in-memory state is reopened.
    pub(crate) fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        let metadata = snapshot.metadata.clone().unwrap_or_default();
        if metadata.index <= self.state.applied_index {
            return Ok(());
        }
        if self.config.snapshot_images {
            let mut txn = self.backend.write_txn()?;
            install_image(&mut txn, &snapshot.data)?;
            meta::put_u64(&mut txn, meta::CONSISTENT_INDEX, metadata.index)?;
            meta::put_u64(&mut txn, meta::TERM, metadata.term)?;
            txn.commit()?;
        } else {
            // The shell streamed the data in and swapped it into the backend already.
            let txn = self.backend.read_txn()?;
            let installed = meta::get_u64(&txn, meta::CONSISTENT_INDEX)?.unwrap_or(0);
            if installed != metadata.index {
                return Err(BackendError::Corrupt {
                    table: Table::Meta,
                    reason: format!(
                        "the installed snapshot data is at index {installed}, not {}",
                        metadata.index
                    ),
                }
                .into());
            }
        }
        self.last_snapshot_index = metadata.index;
        self.begin_reopen(metadata.index, metadata.term);
        Ok(())
    }

    /// Every `snapshot_count` applied entries, an image of the state for the shell to store as
    /// the raft snapshot (then it may compact the log, keeping `snapshot_catch_up_entries`).
    /// `snapshot_count` entries were applied since the last snapshot.
    pub(crate) fn snapshot_due(&self) -> bool {
        self.config.snapshot_count != 0
            && self.state.applied_index >= self.last_snapshot_index + self.config.snapshot_count
    }

    pub(crate) fn maybe_snapshot(&mut self) -> Result<()> {
        if !self.snapshot_due() {
            return Ok(());
        }
        let applied = self.state.applied_index;
        let data = if self.config.snapshot_images {
            let txn = self.backend.read_txn()?;
            encode_image(&txn)?
        } else {
            Vec::new()
        };
        let conf_state = self.node.status().conf_state;
        self.last_snapshot_index = applied;
        self.outputs.push(Output::Snapshot {
            index: applied,
            conf_state,
            data: data.into(),
            compact_to: applied.saturating_sub(self.config.snapshot_catch_up_entries),
        });
        Ok(())
    }
}
