//! Damaged records on disk give `StorageError::Corrupt` (or the raft/backend equivalents),
//! never a panic: the tests write bad bytes straight into the databases, as a torn or foreign
//! write would leave them.

use qraft_core::backend::{Backend, BackendError};
use qraft_core::raft::{Storage, StorageError as RaftError};
use qraft_proto::raftpb::{ConfState, Entry};
use tempfile::TempDir;

use super::tables::{CONSISTENT_INDEX, KEY_HARD_STATE, KEY_LOG_START, KEY_SNAPSHOT, Table};
use super::{LmdbStorage, StorageConfig, StorageError};

fn storage_with_log(dir: &TempDir) -> LmdbStorage {
    let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("open");
    storage
        .write(|b| {
            b.bootstrap(ConfState {
                voters: vec![1],
                ..Default::default()
            })?;
            let entries: Vec<Entry> = (2..=5)
                .map(|i| Entry {
                    index: i,
                    term: 1,
                    ..Default::default()
                })
                .collect();
            b.append(&entries)
        })
        .expect("setup");
    storage
}

/// Runs raw LMDB writes against the storage's own databases.
fn tamper(storage: &LmdbStorage, f: impl FnOnce(&mut heed::RwTxn<'_>, &super::tables::Tables)) {
    let read = storage.read().expect("read");
    let (env, tables) = (read.env().clone(), *read.tables());
    drop(read);
    let mut txn = env.write_txn().expect("txn");
    f(&mut txn, &tables);
    txn.commit().expect("commit");
}

fn reopen(dir: &TempDir, storage: LmdbStorage) -> Result<LmdbStorage, StorageError> {
    drop(storage);
    LmdbStorage::open(StorageConfig::new(dir.path()))
}

fn is_corrupt<T: std::fmt::Debug>(result: Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::Corrupt { .. }))
}

#[test]
fn an_undecodable_entry_is_an_error() {
    let dir = TempDir::new().expect("dir");
    let storage = storage_with_log(&dir);
    tamper(&storage, |txn, t| {
        t.log.put(txn, &3, &[0xff, 0xff, 0xff]).expect("put")
    });
    assert!(is_corrupt(storage.entries(2, 6, u64::MAX)));
    assert!(is_corrupt(storage.term(3)));
    assert!(matches!(
        Storage::term(&storage, 3),
        Err(RaftError::Other(_))
    ));
    assert_eq!(
        Storage::term(&storage, 4),
        Ok(1),
        "other entries still read"
    );
}

#[test]
fn an_entry_stored_under_the_wrong_index_is_an_error() {
    let dir = TempDir::new().expect("dir");
    let storage = storage_with_log(&dir);
    let wrong = prost::Message::encode_to_vec(&Entry {
        index: 7,
        term: 1,
        ..Default::default()
    });
    tamper(&storage, |txn, t| t.log.put(txn, &3, &wrong).expect("put"));
    assert!(is_corrupt(storage.term(3)));
}

#[test]
fn a_hole_in_the_log_is_an_error() {
    let dir = TempDir::new().expect("dir");
    let storage = storage_with_log(&dir);
    tamper(&storage, |txn, t| {
        t.log.delete(txn, &4).expect("delete");
    });
    assert!(is_corrupt(storage.entries(2, 6, u64::MAX)));
    assert!(is_corrupt(storage.term(4)));
    tamper(&storage, |txn, t| {
        t.log.delete(txn, &5).expect("delete");
    });
    assert!(
        is_corrupt(storage.entries(3, 6, u64::MAX)),
        "a missing tail too"
    );
}

#[test]
fn damaged_raft_state_fails_the_open() {
    for (key, value) in [
        (KEY_HARD_STATE, &[0xffu8, 0x01][..]),
        (KEY_SNAPSHOT, &[0x0a, 0xff][..]),
        (KEY_LOG_START, &[1, 2, 3][..]),
    ] {
        let dir = TempDir::new().expect("dir");
        let storage = storage_with_log(&dir);
        tamper(&storage, |txn, t| {
            t.raft_state.put(txn, key, value).expect("put")
        });
        let reopened = reopen(&dir, storage);
        assert!(
            is_corrupt(reopened.map(|_| ())),
            "{}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn a_log_that_does_not_follow_its_start_fails_the_open() {
    let dir = TempDir::new().expect("dir");
    let storage = storage_with_log(&dir);
    tamper(&storage, |txn, t| {
        t.log.delete(txn, &2).expect("delete");
    });
    assert!(is_corrupt(reopen(&dir, storage).map(|_| ())));
}

#[test]
fn a_bad_applied_index_is_an_error_for_readers() {
    let dir = TempDir::new().expect("dir");
    let storage = storage_with_log(&dir);
    tamper(&storage, |txn, t| {
        t.meta().put(txn, CONSISTENT_INDEX, b"abc").expect("put")
    });
    assert!(is_corrupt(storage.read().expect("read").applied_index()));
    assert!(is_corrupt(reopen(&dir, storage).map(|_| ())));
}

#[test]
fn empty_and_overlong_keys_are_refused_not_a_crash() {
    let dir = TempDir::new().expect("dir");
    let storage = storage_with_log(&dir);
    let txn = storage.read_txn().expect("read");
    // An LMDB key cannot be empty: a lookup of one is refused, not a crash.
    let result = qraft_core::backend::ReadTxn::get(&txn, Table::Key, b"");
    assert!(
        matches!(result, Err(BackendError::Storage(_))),
        "{result:?}"
    );
}
