//! The driver's storage contract (`crate::driver::DriverStorage`) on LMDB: the journal, the
//! write batch, snapshots streamed from and received into LMDB environments, defrag. Each
//! method is the [`LmdbStorage`] or [`WriteBatch`] method of the same purpose.

use std::time::Duration;

use qraft_core::mvcc::KeyIndexBuilder;
use qraft_proto::raftpb::{ConfState, Entry, HardState, SnapshotMetadata};

use super::{LmdbStorage, ReadTxn, Result, SizeInfo, SnapshotExporter, WriteBatch};
use crate::driver::{DriverBatch, DriverStorage, SnapshotChunks};
use crate::transport::PeerTransport;

impl DriverStorage for LmdbStorage {
    type Read = ReadTxn;
    type Batch<'s> = WriteBatch<'s>;
    type Exporter = SnapshotExporter;

    fn read(&self) -> Result<ReadTxn> {
        LmdbStorage::read(self)
    }

    fn begin_write(&self) -> Result<WriteBatch<'_>> {
        LmdbStorage::begin_write(self)
    }

    fn journal_append(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<()> {
        LmdbStorage::journal_append(self, entries, hard_state, sync)
    }

    fn fold_journal(&self) -> Result<()> {
        LmdbStorage::fold_journal(self)
    }

    fn install_received_snapshot(
        &self,
        meta: &SnapshotMetadata,
        hard_state: Option<&HardState>,
    ) -> Result<()> {
        LmdbStorage::install_received_snapshot(self, meta, hard_state)
    }

    fn discard_received_snapshots(&self, index: u64) {
        LmdbStorage::discard_received_snapshots(self, index)
    }

    fn set_index_while_receiving(&self, on: bool) {
        LmdbStorage::set_index_while_receiving(self, on)
    }

    fn take_received_index(&self, index: u64) -> Option<KeyIndexBuilder> {
        LmdbStorage::take_received_index(self, index)
    }

    fn export_snapshot(&self) -> Result<SnapshotExporter> {
        LmdbStorage::export_snapshot(self)
    }

    fn serve_snapshots(&self, transport: &dyn PeerTransport) {
        transport.serve_snapshots(self.clone());
    }

    fn size_info(&self) -> Result<SizeInfo> {
        LmdbStorage::size_info(self)
    }

    fn defrag(&self, reader_wait: Duration) -> Result<(SizeInfo, SizeInfo)> {
        LmdbStorage::defrag(self, reader_wait)
    }
}

impl DriverBatch for WriteBatch<'_> {
    fn journal_append(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<()> {
        WriteBatch::journal_append(self, entries, hard_state, sync)
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<()> {
        WriteBatch::append(self, entries)
    }

    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<()> {
        WriteBatch::set_hard_state(self, hard_state)
    }

    fn set_conf_state(&mut self, conf_state: &ConfState) -> Result<()> {
        WriteBatch::set_conf_state(self, conf_state)
    }

    fn create_snapshot(&mut self, index: u64, conf_state: Option<ConfState>) -> Result<()> {
        WriteBatch::create_snapshot(self, index, conf_state).map(|_| ())
    }

    fn log_start_index(&self) -> u64 {
        self.raft_state().log_start.index
    }

    fn compact(&mut self, index: u64) -> Result<()> {
        WriteBatch::compact(self, index)
    }

    fn commit_durably(self) -> Result<()> {
        WriteBatch::commit(self)
    }

    fn commit_unsynced(self) -> Result<()> {
        WriteBatch::commit_unsynced_meta(self)
    }
}

impl SnapshotChunks for SnapshotExporter {
    fn next_chunk(&mut self, target_bytes: usize) -> Result<Option<Vec<u8>>> {
        SnapshotExporter::next_chunk(self, target_bytes)
    }
}
