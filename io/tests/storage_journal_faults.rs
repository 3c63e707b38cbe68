//! Faults of the raft journal's disk, through the storage's public API: a journal directory
//! that disappears is refused at open, and a disk that fills up during an append fails the
//! append (no acknowledgement), with a clear error, and loses nothing at the next start.
//! Damage to the segments themselves is covered next to the journal (`journal_tests.rs`), and
//! crashes at every write and sync point in `journal_crash_tests.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::bytes::Bytes;
use qraft_core::raft::Storage;
use qraft_io::storage::{JOURNAL_SUBDIR, LmdbStorage, StorageConfig, StorageError};
use qraft_proto::raftpb::{ConfState, Entry, HardState};

fn entry(index: u64, size: usize) -> Entry {
    Entry {
        index,
        term: 1,
        data: Bytes::from(vec![(index % 251) as u8 + 1; size]),
        ..Default::default()
    }
}

fn bootstrapped(dir: &Path) -> LmdbStorage {
    let storage = LmdbStorage::open(StorageConfig::new(dir)).expect("open");
    storage
        .write(|b| {
            b.bootstrap(ConfState {
                voters: vec![1],
                ..Default::default()
            })
        })
        .expect("bootstrap");
    storage
}

fn journal(storage: &LmdbStorage, index: u64, size: usize) -> Result<(), StorageError> {
    let hard_state = HardState {
        term: 1,
        vote: 1,
        commit: index - 1,
    };
    storage.journal_append(&[entry(index, size)], Some(&hard_state), true)
}

/// Every entry from 2 to `last` is there with its content.
fn check_entries(storage: &LmdbStorage, last: u64, size: usize) {
    assert_eq!(storage.last_index(), last);
    let entries = Storage::entries(storage, 2, last + 1, u64::MAX).expect("entries");
    assert_eq!(entries.len() as u64, last - 1);
    for e in entries {
        assert_eq!(e, entry(e.index, size), "entry {}", e.index);
    }
}

#[test]
fn a_deleted_journal_directory_is_refused_at_open() {
    for fold_first in [false, true] {
        let dir = tempfile::tempdir().expect("dir");
        let storage = bootstrapped(dir.path());
        for index in 2..=5 {
            journal(&storage, index, 100).expect("journal");
        }
        if fold_first {
            storage.fold_journal().expect("fold");
            journal(&storage, 6, 100).expect("journal");
        }
        drop(storage);
        std::fs::remove_dir_all(dir.path().join(JOURNAL_SUBDIR)).expect("delete the journal");
        let err = LmdbStorage::open(StorageConfig::new(dir.path()))
            .err()
            .unwrap_or_else(|| panic!("opened without its journal (fold first: {fold_first})"));
        assert!(
            matches!(err, StorageError::Corrupt { .. }) && err.to_string().contains("is missing"),
            "{err}"
        );
    }
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    /// `None` (after saying so) when not root: mounting needs it.
    fn mount(size: &str) -> Option<SmallDisk> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let root = status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(2) == Some("0"));
        if !root {
            eprintln!("SKIPPED: the disk-full test mounts a tmpfs and needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("dir");
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed as root");
        Some(SmallDisk { _dir: dir, mount })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// The journal's 8 MiB segment fills up and the next one does not fit on the disk: the append
/// that needs it fails (the caller acknowledges nothing), later ones fail too, and after space
/// is freed the member starts with every acknowledged entry and goes on.
#[test]
fn a_full_disk_fails_the_append_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount("32m") else {
        return;
    };
    let data_dir = disk.mount.join("data");
    let filler = disk.mount.join("filler");
    const SIZE: usize = 200 << 10;
    let storage = bootstrapped(&data_dir);
    // Leave less room than a second segment takes.
    std::fs::write(&filler, vec![1u8; 19 << 20]).expect("filler");
    let mut acked = 1;
    let err = loop {
        match journal(&storage, acked + 1, SIZE) {
            Ok(()) => acked += 1,
            Err(err) => break err,
        }
        assert!(acked < 100, "the disk never filled up");
    };
    let message = err.to_string();
    assert!(
        message.contains("raft journal") && message.contains("No space left on device"),
        "{message}"
    );
    assert!(
        acked > 10,
        "failed before the first segment was full: {message}"
    );
    // Nothing more is taken, even a record that would fit.
    assert!(journal(&storage, acked + 1, 10).is_err());
    assert_eq!(storage.last_index(), acked);
    drop(storage);

    std::fs::remove_file(&filler).expect("free space");
    let storage = LmdbStorage::open(StorageConfig::new(&data_dir)).expect("restart");
    check_entries(&storage, acked, SIZE);
    journal(&storage, acked + 1, SIZE).expect("journal after restart");
    drop(storage);
    let storage = LmdbStorage::open(StorageConfig::new(&data_dir)).expect("reopen");
    assert_eq!(storage.last_index(), acked + 1);
}
