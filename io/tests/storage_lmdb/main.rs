//! LMDB-specific behaviour, one module per concept: snapshot streams, the file's space (map
//! growth, the quota, defrag), and batches (directory locking, schema versions, group commit
//! atomicity, the journal). This file holds the fixtures they share.

mod batches;
mod snapshot_stream;
mod space;

use std::ops::ControlFlow;
use std::time::Duration;

use prost::bytes::Bytes;
use qraft_core::backend::{Backend, meta};
use qraft_core::raft::Storage;
use qraft_io::storage::{
    ChunksReader, JOURNAL_SUBDIR, LmdbStorage, NO_SPACE_MESSAGE, StorageConfig, StorageError,
    Table, snapshot::SnapshotExporter,
};
use qraft_proto::raftpb::{ConfState, Entry};
use tempfile::TempDir;

fn open(dir: &TempDir) -> LmdbStorage {
    LmdbStorage::open(StorageConfig::new(dir.path())).expect("open")
}

/// A store whose raft state holds a one-voter configuration.
fn open_bootstrapped(dir: &TempDir) -> LmdbStorage {
    let storage = open(dir);
    storage
        .write(|b| {
            b.bootstrap(ConfState {
                voters: vec![1],
                ..Default::default()
            })
        })
        .expect("boot");
    storage
}

fn fill(storage: &LmdbStorage, n: u64, value_len: usize) {
    storage
        .write(|b| {
            for i in 0..n {
                b.put(Table::Key, &i.to_be_bytes(), &vec![i as u8; value_len])?;
            }
            b.put(Table::Members, b"m1", b"member one")?;
            b.put(Table::Meta, meta::TERM, &7u64.to_be_bytes())?;
            b.set_applied_index(n)
        })
        .expect("fill");
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn dump(storage: &LmdbStorage) -> Vec<(Table, Pairs)> {
    let read = storage.read().expect("read");
    Table::ALL
        .iter()
        .map(|&t| {
            let mut pairs = Vec::new();
            read.scan(t, b"", None, &mut |k, v| {
                pairs.push((k.to_vec(), v.to_vec()));
                ControlFlow::Continue(())
            })
            .expect("scan");
            (t, pairs)
        })
        .collect()
}

fn export(storage: &LmdbStorage, chunk: usize) -> Vec<Vec<u8>> {
    let mut exporter: SnapshotExporter = storage.export_snapshot().expect("export");
    let mut chunks = Vec::new();
    while let Some(c) = exporter.next_chunk(chunk).expect("chunk") {
        chunks.push(c);
    }
    chunks
}
