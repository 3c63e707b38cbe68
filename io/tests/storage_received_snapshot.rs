//! Snapshots from the leader received as a stream into a fresh environment and swapped in
//! whole (`LmdbStorage::receive_snapshot`, `install_received_snapshot`): the old state stays
//! until the swap, a bad stream or a crash before it leaves nothing behind, and the new file
//! is the size of the data.

use std::ops::ControlFlow;
use std::path::Path;

use qraft_core::backend::{Backend, meta};
use qraft_core::mvcc::MvccStore;
use qraft_core::raft::Storage;
use qraft_io::storage::{ChunksReader, LmdbStorage, StorageConfig, StorageError, Table};
use qraft_proto::etcdserverpb::{DeleteRangeRequest, PutRequest};
use qraft_proto::raftpb::{ConfState, HardState, SnapshotMetadata};
use tempfile::TempDir;

fn open(dir: &TempDir) -> LmdbStorage {
    LmdbStorage::open(StorageConfig::new(dir.path())).expect("open")
}

fn fill(storage: &LmdbStorage, n: u64, value_len: usize, applied: u64) {
    storage
        .write(|b| {
            b.bootstrap(ConfState {
                voters: vec![1, 2, 3],
                ..Default::default()
            })?;
            // As the MVCC store writes its history: each revision after the last.
            for i in 0..n {
                b.put_at_end(Table::Key, &i.to_be_bytes(), &vec![i as u8; value_len])?;
            }
            b.put(Table::Members, b"m1", b"member one")?;
            b.put(Table::Meta, meta::TERM, &7u64.to_be_bytes())?;
            b.set_applied_index(applied)
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

/// The leader's stream, chunked, and the metadata of exactly its data.
fn export(leader: &LmdbStorage) -> (SnapshotMetadata, Vec<Vec<u8>>) {
    let mut exporter = leader.export_snapshot().expect("export");
    let meta = exporter.metadata().expect("metadata");
    let mut chunks = Vec::new();
    while let Some(chunk) = exporter.next_chunk(64 * 1024).expect("chunk") {
        chunks.push(chunk);
    }
    (meta, chunks)
}

fn reader(chunks: Vec<Vec<u8>>) -> impl std::io::Read {
    ChunksReader::new(chunks.into_iter().map(Ok::<_, StorageError>))
}

fn staged_dirs(data_dir: &Path) -> Vec<String> {
    std::fs::read_dir(data_dir.join("member"))
        .expect("member dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("snapshot-"))
        .collect()
}

#[test]
fn a_received_snapshot_is_invisible_until_installed_then_replaces_log_and_data() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 200, 30, 200);
    let (meta, chunks) = export(&leader);
    assert_eq!((meta.index, meta.term), (200, 7));
    assert!(
        Storage::snapshot(&leader, 0)
            .expect("raft snapshot")
            .data
            .is_empty(),
        "raft's snapshot carries metadata only"
    );

    let follower = open(&b);
    fill(&follower, 3, 10, 3);
    let before = dump(&follower);
    let records = follower
        .receive_snapshot(&meta, reader(chunks))
        .expect("receive");
    assert!(records > 200);
    assert_eq!(
        dump(&follower),
        before,
        "nothing visible before the install"
    );
    assert_eq!(staged_dirs(b.path()), vec!["snapshot-200".to_string()]);

    let hard_state = HardState {
        term: 9,
        vote: 2,
        commit: 200,
    };
    follower
        .install_received_snapshot(&meta, Some(&hard_state))
        .expect("install");
    assert_eq!(dump(&follower), dump(&leader));
    assert_eq!(follower.applied_index(), 200);
    let state = follower.raft_state();
    assert_eq!((state.log_start.index, state.last_index), (200, 200));
    assert_eq!(state.hard_state, hard_state);
    assert!(staged_dirs(b.path()).is_empty());

    drop(follower);
    let reopened = open(&b);
    assert_eq!(dump(&reopened), dump(&leader));
    assert_eq!(reopened.raft_state(), state);
}

#[test]
fn a_bad_or_cut_stream_leaves_nothing_and_cannot_be_installed() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 100, 30, 100);
    let (meta, chunks) = export(&leader);
    let follower = open(&b);
    fill(&follower, 3, 10, 3);
    let before = (follower.raft_state(), dump(&follower));

    let mut cut = chunks.clone();
    cut.pop();
    let mut flipped = chunks.clone();
    let middle = flipped.len() / 2;
    flipped[middle][10] ^= 0xff;
    let mut wrong_index = meta.clone();
    wrong_index.index = 99;
    for (meta, stream) in [
        (&meta, cut),
        (&meta, flipped),
        (&wrong_index, chunks.clone()),
    ] {
        let result = follower.receive_snapshot(meta, reader(stream));
        assert!(
            matches!(result, Err(StorageError::BadSnapshot(_))),
            "{result:?}"
        );
        assert!(staged_dirs(b.path()).is_empty());
    }
    let result = follower.install_received_snapshot(&meta, None);
    assert!(
        matches!(result, Err(StorageError::BadSnapshot(_))),
        "{result:?}"
    );
    assert_eq!((follower.raft_state(), dump(&follower)), before);
}

/// A member that stops (or crashes) after receiving a snapshot but before installing it
/// restarts on its old state; the received copy is removed.
#[test]
fn a_snapshot_received_but_not_installed_is_dropped_at_the_next_open() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 100, 30, 100);
    let (meta, chunks) = export(&leader);
    let follower = open(&b);
    fill(&follower, 3, 10, 3);
    let before = (follower.raft_state(), dump(&follower));
    follower
        .receive_snapshot(&meta, reader(chunks))
        .expect("receive");
    std::fs::create_dir_all(b.path().join("member/snapshot-100.partial-7")).expect("partial");
    drop(follower);
    let reopened = open(&b);
    assert!(staged_dirs(b.path()).is_empty());
    assert_eq!((reopened.raft_state(), dump(&reopened)), before);
}

/// The installed file is written from scratch: its size follows the data, not the old file
/// plus a copy (the old in-place install left followers at 2.8x the leader's size).
#[test]
fn the_installed_file_is_the_size_of_the_data() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 20_000, 1024, 20_000);
    let (meta, chunks) = export(&leader);
    let follower = open(&b);
    fill(&follower, 18_000, 1024, 18_000);
    follower
        .receive_snapshot(&meta, reader(chunks))
        .expect("receive");
    follower
        .install_received_snapshot(&meta, None)
        .expect("install");
    let file = |dir: &TempDir| {
        std::fs::metadata(dir.path().join("member/lmdb/data.mdb"))
            .expect("data file")
            .len() as f64
    };
    let (leader_bytes, follower_bytes) = (file(&a), file(&b));
    assert!(
        (follower_bytes / leader_bytes - 1.0).abs() < 0.15,
        "leader {leader_bytes} bytes, follower {follower_bytes}"
    );
}

/// A leader whose key space is a real MVCC history: puts, a lease, a delete, a compaction.
fn mvcc_leader(dir: &TempDir) -> (LmdbStorage, SnapshotMetadata, Vec<Vec<u8>>) {
    let leader = open(dir);
    fill(&leader, 0, 0, 1);
    let mut store = MvccStore::default();
    let mut txn = Backend::write_txn(&leader).expect("write");
    for i in 0..3000u32 {
        let req = PutRequest {
            key: format!("key-{:05}", i % 1200).into_bytes().into(),
            value: vec![b'v'; 40].into(),
            lease: if i % 7 == 0 { 5 } else { 0 },
            ..Default::default()
        };
        store.put(&mut txn, &req, &|_| true).expect("put");
    }
    let req = DeleteRangeRequest {
        key: b"key-00100".to_vec().into(),
        range_end: b"key-00200".to_vec().into(),
        ..Default::default()
    };
    store.delete_range(&mut txn, &req).expect("delete");
    store.compact_to(&mut txn, 1500).expect("compact");
    txn.set_applied_index(3000).expect("applied");
    txn.commit().expect("commit");
    let (meta, chunks) = export(&leader);
    (leader, meta, chunks)
}

/// The key index built as a snapshot arrives (when the core asks for it) is the one opening
/// the installed state builds from the stored key space — so the state reopened after the
/// install can take it instead of reading the key space again.
#[test]
fn the_key_index_built_while_receiving_equals_the_one_rebuilt_from_the_installed_data() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let (_leader, meta, chunks) = mvcc_leader(&a);
    let follower = open(&b);
    fill(&follower, 3, 10, 3);
    follower.set_index_while_receiving(true);
    follower
        .receive_snapshot(&meta, reader(chunks))
        .expect("receive");
    follower
        .install_received_snapshot(&meta, None)
        .expect("install");
    let built = follower
        .take_received_index(meta.index)
        .expect("an index built while receiving");
    assert!(
        follower.take_received_index(meta.index).is_none(),
        "taken once"
    );

    let read = follower.read().expect("read");
    let (received, received_leases) = built.finish(&read).expect("finish");
    let (rebuilt, rebuilt_leases) = MvccStore::open_reporting_leases(&read).expect("open");
    assert_eq!(received, rebuilt);
    assert_eq!(received_leases, rebuilt_leases);
    assert_eq!(received.indexed_keys(), 1200);
    assert_eq!(received.compact_revision(), 1500);
    assert!(!received_leases.is_empty());
}

/// Unless the core asks for it, nothing is built (a member whose own key index is large must
/// not hold two at once); and an index is handed only to the state of its own snapshot.
#[test]
fn a_key_index_is_built_while_receiving_only_when_asked_and_for_its_snapshot_only() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let (_leader, meta, chunks) = mvcc_leader(&a);
    let follower = open(&b);
    fill(&follower, 3, 10, 3);
    follower
        .receive_snapshot(&meta, reader(chunks.clone()))
        .expect("receive");
    assert!(follower.take_received_index(meta.index).is_none());

    let c = TempDir::new().expect("dir");
    let other = open(&c);
    fill(&other, 3, 10, 3);
    other.set_index_while_receiving(true);
    other
        .receive_snapshot(&meta, reader(chunks))
        .expect("receive");
    assert!(other.take_received_index(meta.index + 1).is_none());
    assert!(
        other.take_received_index(meta.index).is_none(),
        "asked for another snapshot, it was dropped"
    );
}
