//! Batches, read transactions and the journal: one storage per data directory, schema versions
//! left to the version layer, a failed batch changes nothing, reads are snapshots on any
//! thread, journal segments go once LMDB holds them, a held batch takes journal appends.

use super::*;

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
