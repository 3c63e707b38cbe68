//! The file's space: the map grows between batches, a write past it is NOSPACE, defrag shrinks
//! the file (or gives up, changing nothing) while other threads go on.

use super::*;

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

/// The MVCC history only grows at its end and the store says so (`WriteTxn::put_at_end`), so
/// LMDB fills each page before it starts the next one. Before, every page split in half: 3,000
/// puts of 1 KiB values in batches of 100 took 6.2 MB of pages for 3.2 MB of records (1.93×;
/// 4.1 MB, 1.29×, since), and a 2 GiB key space took a 4 GB file on every member (issue 18's
/// scale run).
/// 3,000 puts of 1 KiB values under sequential keys, as the MVCC store writes them.
fn write_history(storage: &LmdbStorage) {
    use qraft_core::mvcc::{MvccStore, NoLeases};
    use qraft_proto::etcdserverpb::PutRequest;

    let mut store = MvccStore::default();
    let value = Bytes::from(vec![7u8; 1024]);
    for batch in 0..30 {
        let mut txn = Backend::write_txn(storage).expect("write txn");
        for i in 0..100 {
            let request = PutRequest {
                key: format!("/registry/pods/{:06}", batch * 100 + i)
                    .into_bytes()
                    .into(),
                value: value.clone(),
                ..Default::default()
            };
            store.put(&mut txn, &request, &NoLeases).expect("put");
        }
        qraft_core::backend::WriteTxn::commit(txn).expect("commit");
    }
}

/// Fails when the history's pages are split half-empty (sequential 1 KiB values stored the
/// ordinary way take ~1.5x their bytes; appended, under 1.4x).
fn assert_history_pages_full(storage: &LmdbStorage) {
    let mut records = 0;
    storage
        .read()
        .expect("read")
        .scan(Table::Key, b"", None, &mut |k, v| {
            records += k.len() + v.len();
            ControlFlow::Continue(())
        })
        .expect("scan");
    assert!(records > 3000 * 1024, "{records} bytes of history");
    let used = storage.size_info().expect("size").in_use_bytes as usize;
    assert!(
        used * 10 < records * 14,
        "{used} bytes of pages for {records} bytes of history records: pages split half-empty"
    );
}

#[test]
fn sequential_puts_fill_the_history_pages() {
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    write_history(&storage);
    assert_history_pages_full(&storage);
}

/// A snapshot restored (`qraftctl snapshot restore`, or a stream restored in place) is
/// written in key order: its pages fill up as the original's, instead of a restored member's
/// file ending half-empty.
#[test]
fn a_restored_snapshot_fills_the_history_pages() {
    use qraft_io::data_dir::{InitialMember, RestorePlan, restore_data_dir};
    use qraft_io::storage::MemberIdentity;

    let dir = TempDir::new().expect("dir");
    let original = open(&dir);
    write_history(&original);
    let mut exporter = original.export_snapshot().expect("export");
    let mut stream = Vec::new();
    while let Some(chunk) = exporter.next_chunk(64 * 1024).expect("chunk") {
        stream.extend_from_slice(&chunk);
    }
    drop(exporter);

    let file = dir.path().join("saved.db");
    std::fs::write(&file, &stream).expect("snapshot file");
    let target = TempDir::new().expect("dir");
    let data_dir = target.path().join("restored");
    let plan = RestorePlan {
        snapshot: file,
        data_dir: data_dir.clone(),
        identity: MemberIdentity {
            member_id: 1,
            cluster_id: 9,
        },
        members: vec![InitialMember {
            id: 1,
            name: "m1".into(),
            peer_urls: vec!["https://127.0.0.1:2380".into()],
            client_urls: Vec::new(),
        }],
        skip_hash_check: false,
    };
    restore_data_dir(&plan).expect("restore");
    let restored = LmdbStorage::open(StorageConfig::new(&data_dir)).expect("open restored");
    assert_history_pages_full(&restored);

    let in_place = TempDir::new().expect("dir");
    let storage = open(&in_place);
    storage
        .write(|w| w.restore_key_space(&stream[..]))
        .expect("restore in place");
    assert_history_pages_full(&storage);
}
