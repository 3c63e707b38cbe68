//! Crash consistency below kill -9: the real storage runs a driver-shaped workload on a journal
//! whose disk is [`CrashDisk`], which keeps only what was synced. The workload is run once to
//! number its points — every journal write, sync, create, rename, delete and directory sync,
//! and every LMDB commit — then again crashing at each point in turn, in both [`CrashMode`]s.
//! After each crash the storage must open and hold every acknowledged entry.
//!
//! The workload is the driver's: each turn journals entry `i` with the hard state committing
//! `i - 1` (acknowledged once the append returns) through the batch of applied entries it keeps
//! open, applies `i - 1` into that batch and commits it without its meta sync every few turns;
//! the journal's 64 KiB segments roll every ~20 turns and are released as LMDB catches up; every
//! 20 turns a snapshot and compaction commit durably; once, a snapshot from a leader is installed.
//!
//! The LMDB side: a crash at a commit point is the batch never committed. A commit without its
//! meta sync may be undone by a power loss until the next commit syncs the data file, so in
//! [`CrashMode::LoseUnsynced`] the data file is put back as it was before the last such commit
//! (the test copies it there; LMDB itself is real and on disk).

use std::path::{Path, PathBuf};

use prost::bytes::Bytes;
use qraft_core::raft::Storage;
use qraft_proto::raftpb::{ConfState, Entry, HardState, Snapshot};

use super::journal::JournalSetup;
use super::journal_crash_fs::{CrashDisk, CrashMode};
use super::{LmdbStorage, StorageConfig, Table, WriteBatch};

const SEGMENT_BYTES: u64 = 64 * 1024;
/// The last entry the workload journals.
const LAST: u64 = 64;
/// Turns between commits of the held batch.
const HOLD_TURNS: u64 = 3;
const SNAPSHOT_EVERY: u64 = 20;
/// The turn at which a leader's snapshot at `INSTALL_AT + INSTALL_SKIPS` arrives instead of an entry.
const INSTALL_AT: u64 = 30;
const INSTALL_SKIPS: u64 = 3;

fn payload(i: u64) -> Vec<u8> {
    let len = 1500 + (i * 7919 % 3000) as usize;
    (0..len).map(|j| (i as usize + j) as u8 | 1).collect()
}

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn entry(i: u64) -> Entry {
    Entry {
        index: i,
        term: 1,
        data: Bytes::from(payload(i)),
        ..Entry::default()
    }
}

fn hard_state(commit: u64) -> HardState {
    HardState {
        term: 1,
        vote: 1,
        commit,
    }
}

fn bootstrap_conf() -> ConfState {
    ConfState {
        voters: vec![1],
        ..ConfState::default()
    }
}

/// A fresh directory for LMDB: in shared memory where there is some (the fsyncs of hundreds of
/// runs are the test's cost, and LMDB's own durability is not what it checks).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("dir")
    } else {
        tempfile::tempdir().expect("dir")
    }
}

/// The leader's snapshot at `INSTALL_AT + INSTALL_SKIPS`: the same entries applied.
fn leader_snapshot() -> Snapshot {
    let dir = scratch();
    let leader = LmdbStorage::open(StorageConfig::new(dir.path())).expect("leader");
    leader
        .write(|b| b.bootstrap(bootstrap_conf()))
        .expect("bootstrap");
    for i in 2..=INSTALL_AT + INSTALL_SKIPS {
        leader
            .write(|b| {
                b.append(&[entry(i)])?;
                b.set_hard_state(&hard_state(i))?;
                b.put(Table::Key, &key(i), &payload(i))?;
                b.set_applied_index(i)
            })
            .expect("leader write");
    }
    // Raft's snapshot carries metadata only (the data is streamed beside it); this test
    // installs in place, so it takes the image of the same state.
    let mut snapshot = Storage::snapshot(&leader, 0).expect("leader snapshot");
    let read = leader.read().expect("read");
    snapshot.data = qraft_core::server::encode_image(&read)
        .expect("image")
        .into();
    snapshot
}

fn setup(disk: &CrashDisk) -> JournalSetup {
    JournalSetup {
        fs: disk.fs(),
        segment_bytes: SEGMENT_BYTES,
    }
}

/// What a run acknowledged before it stopped.
#[derive(Debug, Default)]
struct Acked {
    /// Every entry up to this one is durable (journaled, or in a durable snapshot).
    last: u64,
    commit: u64,
    /// The data file as before the last commit without a meta sync, while no commit since
    /// made that one durable.
    undo_copy: Option<PathBuf>,
}

/// The crash stopped the run.
struct Stopped;

struct Run<'a> {
    disk: &'a CrashDisk,
    dir: &'a Path,
    acked: Acked,
}

impl Run<'_> {
    /// An LMDB commit point: a crash here means the batch is never committed.
    fn point(&self) -> Result<(), Stopped> {
        self.disk.point().map_err(|_| Stopped)
    }

    fn commit_durable(&mut self, batch: WriteBatch<'_>) -> Result<(), Stopped> {
        self.point()?;
        batch.commit().map_err(|_| Stopped)?;
        self.acked.undo_copy = None;
        Ok(())
    }

    fn commit_unsynced(&mut self, batch: WriteBatch<'_>) -> Result<(), Stopped> {
        self.point()?;
        let copy = self.dir.join("undo.mdb");
        let data = StorageConfig::new(self.dir).env_dir().join("data.mdb");
        std::fs::copy(&data, &copy).expect("copy the data file");
        batch.commit_unsynced_meta().map_err(|_| Stopped)?;
        self.acked.undo_copy = Some(copy);
        Ok(())
    }

    fn workload(&mut self, snapshot: &Snapshot) -> Result<(), Stopped> {
        let storage =
            LmdbStorage::open_with_journal(StorageConfig::new(self.dir), setup(self.disk))
                .map_err(|_| Stopped)?;
        let mut batch = storage.begin_write().map_err(|_| Stopped)?;
        batch.bootstrap(bootstrap_conf()).map_err(|_| Stopped)?;
        self.commit_durable(batch)?;
        self.acked.last = 1;
        let mut held: Option<WriteBatch<'_>> = None;
        let mut i = 2;
        while i <= LAST {
            if i == INSTALL_AT {
                if let Some(batch) = held.take() {
                    self.commit_unsynced(batch)?;
                }
                let mut batch = storage.begin_write().map_err(|_| Stopped)?;
                batch.install_snapshot(snapshot).expect("install");
                let at = INSTALL_AT + INSTALL_SKIPS;
                batch.set_hard_state(&hard_state(at)).expect("hard state");
                self.commit_durable(batch)?;
                self.acked.last = at;
                self.acked.commit = at;
                i = at + 1;
                continue;
            }
            let appended = match held.as_mut() {
                Some(batch) => batch.journal_append(&[entry(i)], Some(&hard_state(i - 1)), true),
                None => storage.journal_append(&[entry(i)], Some(&hard_state(i - 1)), true),
            };
            appended.map_err(|_| Stopped)?;
            self.acked.last = i;
            self.acked.commit = i - 1;
            let batch = match held.as_mut() {
                Some(batch) => batch,
                None => held.insert(storage.begin_write().map_err(|_| Stopped)?),
            };
            let applied = batch.applied_index().expect("applied");
            for j in applied + 1..i {
                batch.put(Table::Key, &key(j), &payload(j)).expect("put");
                batch.set_applied_index(j).expect("applied");
            }
            if i % HOLD_TURNS == 0
                && let Some(batch) = held.take()
            {
                self.commit_unsynced(batch)?;
            }
            if i % SNAPSHOT_EVERY == 0 {
                if let Some(batch) = held.take() {
                    self.commit_unsynced(batch)?;
                }
                let mut batch = storage.begin_write().map_err(|_| Stopped)?;
                let applied = batch.applied_index().expect("applied");
                batch.create_snapshot(applied, None).expect("snapshot");
                batch.compact(applied - 5).expect("compact");
                self.commit_durable(batch)?;
            }
            i += 1;
        }
        if let Some(batch) = held.take() {
            self.commit_unsynced(batch)?;
        }
        Ok(())
    }
}

/// Runs the workload crashing at `crash_at`; returns what it acknowledged and the disk.
fn run(dir: &Path, crash_at: Option<u64>, snapshot: &Snapshot) -> (Acked, CrashDisk) {
    let disk = CrashDisk::new(crash_at);
    let mut run = Run {
        disk: &disk,
        dir,
        acked: Acked::default(),
    };
    let finished = run.workload(snapshot).is_ok();
    assert_eq!(finished, crash_at.is_none(), "crash point {crash_at:?}");
    let acked = run.acked;
    (acked, disk)
}

/// Opens the storage the crash left and checks it holds every acknowledged entry, the applied
/// data exactly up to its applied index, and takes more records.
fn recover(dir: &Path, disk: &CrashDisk, acked: &Acked, what: &str) {
    let storage = LmdbStorage::open_with_journal(StorageConfig::new(dir), setup(disk))
        .unwrap_or_else(|err| panic!("{what}: no restart after the crash: {err}"));
    let last = storage.last_index();
    assert!(
        last >= acked.last,
        "{what}: lost acknowledged entries: acknowledged up to {}, recovered up to {last}",
        acked.last
    );
    let state = storage.raft_state();
    assert!(
        state.hard_state.commit >= acked.commit,
        "{what}: lost the acknowledged commit index {}: {:?}",
        acked.commit,
        state.hard_state
    );
    assert!(
        state.hard_state.commit <= last.max(1),
        "{what}: commit past the log"
    );
    let first = storage.first_index();
    if first <= last {
        let entries = Storage::entries(&storage, first, last + 1, u64::MAX)
            .unwrap_or_else(|err| panic!("{what}: entries: {err}"));
        assert_eq!(entries.len() as u64, last + 1 - first, "{what}");
        for e in entries {
            assert_eq!(e, entry(e.index), "{what}: entry {}", e.index);
        }
    }
    let applied = storage.applied_index();
    assert!(
        applied <= state.hard_state.commit.max(1),
        "{what}: applied past commit"
    );
    let read = storage.read().expect("read");
    for j in 2..=applied {
        assert_eq!(
            read.get(Table::Key, &key(j)).expect("get"),
            Some(&payload(j)[..]),
            "{what}: key {j}"
        );
    }
    assert_eq!(read.get(Table::Key, &key(applied + 1)).expect("get"), None);
    drop(read);
    if last >= 1 {
        storage
            .journal_append(&[entry(last + 1)], Some(&hard_state(last)), true)
            .unwrap_or_else(|err| panic!("{what}: journal after recovery: {err}"));
        drop(storage);
        let storage = LmdbStorage::open_with_journal(StorageConfig::new(dir), setup(disk))
            .unwrap_or_else(|err| panic!("{what}: second restart: {err}"));
        assert_eq!(storage.last_index(), last + 1, "{what}");
    }
}

#[test]
fn a_crash_at_any_write_or_sync_point_keeps_every_acknowledged_entry() {
    let snapshot = leader_snapshot();
    let dir = scratch();
    let (acked, disk) = run(dir.path(), None, &snapshot);
    assert_eq!(acked.last, LAST);
    let points = disk.points();
    // The workload rolled segments and released old ones.
    let segments = disk
        .fs()
        .list(&StorageConfig::new(dir.path()).journal_dir())
        .expect("list");
    assert!(
        segments.iter().all(|name| name != "0000000000000001.wal") && !segments.is_empty(),
        "{segments:?}"
    );
    recover(dir.path(), &disk, &acked, "no crash");
    let mut runs = 0;
    for crash_at in 1..=points {
        for mode in [CrashMode::LoseUnsynced, CrashMode::KeepUnsynced] {
            let dir = scratch();
            let (acked, disk) = run(dir.path(), Some(crash_at), &snapshot);
            if mode == CrashMode::LoseUnsynced
                && let Some(copy) = &acked.undo_copy
            {
                let data = StorageConfig::new(dir.path()).env_dir().join("data.mdb");
                std::fs::copy(copy, data).expect("undo the last commit");
            }
            let after = disk.after_crash(mode);
            recover(
                dir.path(),
                &after,
                &acked,
                &format!("crash at point {crash_at} of {points}, {mode:?}"),
            );
            runs += 1;
        }
    }
    eprintln!("{points} crash points, {runs} crashes recovered");
}
