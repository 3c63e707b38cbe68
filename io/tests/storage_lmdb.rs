//! LMDB-specific behaviour: snapshot streams, the space quota, defrag, directory locking,
//! schema versions and group commit atomicity.

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

#[test]
fn snapshot_stream_len_is_known_before_the_first_chunk() {
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    fill(&storage, 300, 100);
    let announced = storage
        .export_snapshot()
        .expect("export")
        .stream_len()
        .expect("len");
    for chunk in [64, 4096, 1 << 20] {
        let sent: usize = export(&storage, chunk).iter().map(Vec::len).sum();
        assert_eq!(announced, sent as u64, "chunks of {chunk} bytes");
    }
}

#[test]
fn snapshot_stream_round_trips_the_key_space_in_chunks() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 500, 300);
    let meta = leader
        .export_snapshot()
        .expect("export")
        .metadata()
        .expect("metadata");
    assert_eq!(
        (meta.index, meta.term),
        (500, 7),
        "the metadata describes the exported data"
    );
    assert_eq!(
        Storage::snapshot(&leader, 0)
            .expect("raft snapshot")
            .metadata,
        Some(meta.clone())
    );
    let chunks = export(&leader, 16 * 1024);
    assert!(
        chunks.len() > 5,
        "the stream is cut into chunks: {}",
        chunks.len()
    );
    assert!(
        chunks.iter().all(|c| c.len() < 16 * 1024 + 400),
        "chunks stay near the target"
    );
    let stream: Vec<u8> = chunks.concat();

    let follower = open(&b);
    fill(&follower, 3, 10); // stale data that the snapshot must replace
    follower
        .write(|w| w.put(Table::Alarm, b"stale", b"x"))
        .expect("stale");
    let restored = follower
        .write(|w| {
            w.apply_snapshot(&meta)?;
            w.restore_key_space(&stream[..])
        })
        .expect("restore");
    assert_eq!(
        restored,
        500 + 1 + 2,
        "500 keys, one member, the applied index and term"
    );
    assert_eq!(dump(&follower), dump(&leader));
    assert_eq!(
        follower.applied_index(),
        500,
        "the applied index travels with the data"
    );
    assert_eq!(Storage::first_index(&follower), Ok(501));
    let state = follower.raft_state();
    assert_eq!(
        (state.hard_state.commit, state.hard_state.term),
        (500, 7),
        "commit = applied"
    );
    drop(follower);
    assert_eq!(dump(&open(&b)), dump(&leader), "restored data is durable");
}

#[test]
fn chunks_restore_without_being_joined() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 300, 100);
    let follower = open(&b);
    let exporter = leader.export_snapshot().expect("export");
    assert_eq!(exporter.applied_index(), 300);
    let restored = follower
        .write(|w| w.restore_key_space(ChunksReader::new(exporter)))
        .expect("restore");
    assert_eq!(restored, 300 + 1 + 2);
    assert_eq!(dump(&follower), dump(&leader));
}

#[test]
fn the_map_grows_between_batches() {
    let dir = TempDir::new().expect("dir");
    // 1 MiB quota: a 65 MiB map, grown by 64 MiB whenever less than 32 MiB is left.
    let storage =
        LmdbStorage::open(StorageConfig::new(dir.path()).with_quota_bytes(1 << 20)).expect("open");
    let initial = storage.size_info().expect("size").map_bytes;
    let value = vec![3u8; 1 << 20];
    for batch in 0..25u64 {
        storage
            .write(|b| {
                for i in 0..4u64 {
                    b.put(Table::Key, &(batch * 4 + i).to_be_bytes(), &value)?;
                }
                Ok::<_, StorageError>(())
            })
            .expect("a 4 MiB batch fits after growth");
    }
    let grown = storage.size_info().expect("size");
    assert!(grown.map_bytes > initial, "{initial} -> {grown:?}");
    assert!(grown.in_use_bytes > 100 << 20);
    drop(storage);
    let reopened = LmdbStorage::open(StorageConfig::new(dir.path()).with_quota_bytes(1 << 20))
        .expect("a file larger than quota + headroom reopens");
    assert_eq!(
        reopened
            .read()
            .expect("read")
            .get(Table::Key, &99u64.to_be_bytes())
            .expect("get"),
        Some(&value[..])
    );
}

#[test]
fn a_damaged_snapshot_stream_is_refused_and_changes_nothing() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 50, 20);
    let stream = export(&leader, 1 << 20).concat();
    let follower = open(&b);
    fill(&follower, 7, 7);
    let before = dump(&follower);

    let mut flipped = stream.clone();
    flipped[stream.len() / 2] ^= 0x40;
    let truncated = &stream[..stream.len() - 3];
    let mut trailing = stream.clone();
    trailing.push(0);
    let mut bad_magic = stream.clone();
    bad_magic[0] = b'X';
    for (name, bad) in [
        ("flipped", &flipped[..]),
        ("truncated", truncated),
        ("trailing", &trailing[..]),
        ("magic", &bad_magic[..]),
        ("empty", &[][..]),
    ] {
        let result = follower.write(|w| w.restore_key_space(bad));
        assert!(
            matches!(result, Err(StorageError::BadSnapshot(_))),
            "{name}: expected BadSnapshot, got {result:?}"
        );
        assert_eq!(
            dump(&follower),
            before,
            "{name}: a refused stream wrote something"
        );
    }
}

#[test]
fn save_snapshot_writes_the_stream_to_a_file() {
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    fill(&storage, 20, 5);
    let path = dir.path().join("snap.db");
    let written = storage.save_snapshot(&path).expect("save");
    let file = std::fs::read(&path).expect("read");
    assert_eq!(file.len() as u64, written);
    assert_eq!(file, export(&storage, 1 << 20).concat());
}

#[test]
fn a_write_past_the_map_is_nospace_and_writes_nothing() {
    let dir = TempDir::new().expect("dir");
    // 1 MiB quota: the map is quota + 64 MiB headroom.
    let storage =
        LmdbStorage::open(StorageConfig::new(dir.path()).with_quota_bytes(1 << 20)).expect("open");
    fill(&storage, 10, 100);
    let before = dump(&storage);
    let err = storage
        .write(|b| {
            for i in 0..100u64 {
                b.put(Table::Lease, &i.to_be_bytes(), &vec![1u8; 1 << 20])?;
            }
            Ok::<_, StorageError>(())
        })
        .expect_err("100 MiB does not fit");
    assert!(matches!(err, StorageError::NoSpace), "{err:?}");
    assert_eq!(err.to_string(), NO_SPACE_MESSAGE);
    assert_eq!(err.grpc_code(), 8, "ResourceExhausted");
    assert_eq!(dump(&storage), before);
    // Smaller writes still work, and the space the core's quota check reads shows data over
    // 1 MiB.
    let over = |storage: &LmdbStorage| {
        let space = Backend::space(storage).expect("space").expect("a quota");
        space.in_use_bytes > space.quota_bytes
    };
    assert!(!over(&storage));
    fill(&storage, 2000, 1000);
    assert!(over(&storage));
}

#[test]
fn compaction_frees_pages_and_defrag_shrinks_the_file() {
    let dir = TempDir::new().expect("dir");
    let storage = open_bootstrapped(&dir);
    let entry = |i: u64| Entry {
        index: i,
        term: 1,
        data: Bytes::from(vec![9u8; 4000]),
        ..Default::default()
    };
    let entries: Vec<Entry> = (2..=3001).map(entry).collect();
    storage.write(|b| b.append(&entries)).expect("append");
    let full = storage.size_info().expect("size");
    storage
        .write(|b| {
            b.create_snapshot(3000, None)?;
            b.compact(3000)
        })
        .expect("compact");
    let compacted = storage.size_info().expect("size");
    assert!(
        compacted.in_use_bytes * 4 < full.in_use_bytes,
        "{full:?} -> {compacted:?}"
    );
    assert!(
        compacted.file_bytes >= full.file_bytes,
        "LMDB never shrinks the file by itself"
    );
    let before_state = storage.raft_state();

    let (before, after) = storage.defrag(Duration::ZERO).expect("defrag");
    assert_eq!(before.file_bytes, compacted.file_bytes);
    assert!(
        after.file_bytes * 4 < before.file_bytes,
        "{before:?} -> {after:?}"
    );
    assert_eq!(storage.raft_state(), before_state, "defrag keeps the data");
    assert_eq!(Storage::term(&storage, 3001), Ok(1));
    storage
        .write(|b| b.append(&[entry(3002)]))
        .expect("writes work after defrag");
}

#[test]
fn defrag_gives_up_while_a_read_stays_open_and_changes_nothing() {
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    fill(&storage, 50, 100);
    let read = storage.read().expect("read");
    let before = storage.size_info().expect("size");
    let result = storage.defrag(Duration::from_millis(50));
    assert!(matches!(result, Err(StorageError::Busy(_))), "{result:?}");
    assert_eq!(storage.size_info().expect("size"), before);
    assert!(
        !dir.path().join("member/lmdb/data.mdb.defrag").exists(),
        "the copy is removed"
    );
    assert!(read.get(Table::Key, &[0]).is_ok(), "the reader still works");
    drop(read);
    storage
        .defrag(Duration::ZERO)
        .expect("defrag once the reader ended");
    fill(&storage, 3, 3);
}

/// Online defrag: clones keep working across the swap, and reads and writes running on other
/// threads during it neither fail nor see anything but committed data.
#[test]
fn defrag_runs_while_other_threads_read_and_write() {
    let dir = TempDir::new().expect("dir");
    let storage = open_bootstrapped(&dir);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let storage = storage.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut written = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && written < 2000 {
                let key = written.to_be_bytes();
                storage
                    .write(|w| w.put(Table::Key, &key, &[7u8; 200]))
                    .expect("write during defrag");
                written += 1;
            }
            written
        })
    };
    let reader = {
        let storage = storage.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && reads < 20_000 {
                let read = storage.read().expect("read during defrag");
                assert!(read.get(Table::Key, &0u32.to_be_bytes()).is_ok());
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..5 {
        storage.defrag(Duration::from_secs(5)).expect("defrag");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().expect("writer");
    reader.join().expect("reader");
    let read = storage.read().expect("read");
    for i in 0..written {
        assert!(
            read.get(Table::Key, &i.to_be_bytes())
                .expect("get")
                .is_some(),
            "key {i} of {written} survived"
        );
    }
}

#[test]
fn a_data_dir_is_opened_by_one_storage_at_a_time() {
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    let second = LmdbStorage::open(StorageConfig::new(dir.path()));
    assert!(
        matches!(second, Err(StorageError::Locked(_))),
        "{:?}",
        second.err()
    );
    drop(storage);
    open(&dir);
}

#[test]
fn the_schema_version_is_left_to_the_version_layer() {
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    assert_eq!(
        storage.storage_version().expect("version"),
        None,
        "open writes no version"
    );
    storage
        .write(|b| b.set_storage_version("9.0"))
        .expect("set");
    drop(storage);
    let storage = open(&dir);
    assert_eq!(
        storage.storage_version().expect("version").as_deref(),
        Some("9.0")
    );
    assert_eq!(
        storage
            .write(|b| b.storage_version())
            .expect("version")
            .as_deref(),
        Some("9.0")
    );
}

#[test]
fn a_failed_batch_leaves_log_state_and_data_untouched() {
    let dir = TempDir::new().expect("dir");
    let storage = open_bootstrapped(&dir);
    let before = (storage.raft_state(), dump(&storage));
    let result = storage.write(|b| {
        b.append(&[Entry {
            index: 2,
            term: 1,
            ..Default::default()
        }])?;
        b.put(Table::Key, b"k", b"v")?;
        b.set_applied_index(2)?;
        b.append(&[Entry {
            index: 9,
            term: 1,
            ..Default::default()
        }]) // a gap: fails
    });
    assert!(matches!(result, Err(StorageError::LogGap { .. })));
    assert_eq!((storage.raft_state(), dump(&storage)), before);
    assert_eq!(storage.applied_index(), 0);
}

#[test]
fn read_transactions_move_across_threads_and_stay_snapshots() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LmdbStorage>();
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    fill(&storage, 10, 1);
    let read = storage.read().expect("read");
    let writer = storage.clone();
    let reader = std::thread::spawn(move || {
        // Writes committed meanwhile on the other thread are invisible to this snapshot.
        writer
            .write(|b| b.put(Table::Key, b"late", b"x"))
            .expect("write");
        (
            read.get(Table::Key, b"late").expect("get").is_none(),
            read.applied_index().expect("index"),
        )
    });
    assert_eq!(reader.join().expect("thread"), (true, 10));
    assert!(
        storage
            .read()
            .expect("read")
            .get(Table::Key, b"late")
            .expect("get")
            .is_some()
    );
}

/// The journal keeps only what LMDB may still need: once batches have folded its records in
/// and a later commit made that durable, whole segments are deleted, and a reopen still finds
/// every entry.
#[test]
fn journal_segments_are_deleted_once_lmdb_holds_their_records() {
    let dir = tempfile::tempdir().expect("dir");
    let storage = open_bootstrapped(&dir);
    let entry = |index| Entry {
        index,
        term: 1,
        data: Bytes::from(vec![index as u8; 1 << 20]),
        ..Default::default()
    };
    let journal_dir = dir.path().join(JOURNAL_SUBDIR);
    let mut most_segments = 0;
    for index in 2..40 {
        storage
            .journal_append(&[entry(index)], None, true)
            .expect("journal");
        assert_eq!(storage.last_index(), index);
        storage
            .begin_write()
            .expect("batch")
            .commit_unsynced_meta()
            .expect("fold");
        most_segments = most_segments.max(std::fs::read_dir(&journal_dir).expect("dir").count());
    }
    // 38 MiB of records in 8 MiB segments, never more than the current one and the one before.
    assert!(most_segments <= 2, "{most_segments} segments at once");
    drop(storage);
    let storage = open(&dir);
    assert_eq!(storage.last_index(), 39);
    let entries = Storage::entries(&storage, 2, 40, u64::MAX).expect("entries");
    assert_eq!(entries, (2..40).map(entry).collect::<Vec<_>>());
}

/// A driver keeps its batch of applied entries open across turns and journals each turn's
/// entries through it: raft sees them at once, the commit folds all of them (a conflicting
/// suffix replaced too), and a reopen finds the log and the applied state together.
#[test]
fn a_batch_kept_open_takes_journal_appends_and_folds_them_at_commit() {
    let dir = tempfile::tempdir().expect("dir");
    let storage = open_bootstrapped(&dir);
    let entry = |index, term| Entry {
        index,
        term,
        data: Bytes::from(vec![index as u8; 100]),
        ..Default::default()
    };
    storage
        .journal_append(&[entry(2, 1), entry(3, 1)], None, true)
        .expect("journal");
    let mut batch = storage.begin_write().expect("batch");
    batch.put(Table::Key, b"k", b"v2").expect("put");
    batch.set_applied_index(2).expect("applied");
    batch
        .journal_append(&[entry(4, 1), entry(5, 1)], None, true)
        .expect("journal through the batch");
    // A new leader's entry replaces 4 and 5.
    batch
        .journal_append(&[entry(4, 2)], None, true)
        .expect("journal through the batch");
    assert_eq!(storage.last_index(), 4);
    assert_eq!(Storage::term(&storage, 4).expect("term"), 2);
    batch.set_applied_index(3).expect("applied");
    batch.commit_unsynced_meta().expect("commit");
    assert_eq!(storage.last_index(), 4);
    assert_eq!(storage.applied_index(), 3);
    let want = vec![entry(2, 1), entry(3, 1), entry(4, 2)];
    assert_eq!(
        Storage::entries(&storage, 2, 5, u64::MAX).expect("entries"),
        want
    );
    drop(storage);
    let storage = open(&dir);
    assert_eq!(storage.last_index(), 4);
    assert_eq!(storage.applied_index(), 3);
    assert_eq!(
        Storage::entries(&storage, 2, 5, u64::MAX).expect("entries"),
        want
    );
    let read = storage.read().expect("read");
    assert_eq!(read.get(Table::Key, b"k").expect("get"), Some(&b"v2"[..]));
}

/// A batch that changed the raft state itself (here the configuration) takes no journal
/// records: the two changes would both claim the log.
#[test]
fn a_batch_that_changed_the_raft_state_refuses_journal_appends() {
    let dir = tempfile::tempdir().expect("dir");
    let storage = open_bootstrapped(&dir);
    let mut batch = storage.begin_write().expect("batch");
    batch
        .set_conf_state(&ConfState {
            voters: vec![1, 2],
            ..Default::default()
        })
        .expect("conf");
    let entry = Entry {
        index: 2,
        term: 1,
        ..Default::default()
    };
    let refused = batch.journal_append(&[entry], None, true);
    assert!(
        matches!(refused, Err(StorageError::Config(_))),
        "{refused:?}"
    );
    drop(batch);
    assert_eq!(storage.last_index(), 1);
}
