//! Crash safety: a child process writes group-committed batches in a loop and reports each
//! commit on stdout; the parent kills it with SIGKILL at a random point, reopens the data
//! directory and checks that every reported commit is there and the store is consistent.
//!
//! Two shapes of child: one LMDB batch per index holding everything (entry, hard state, data,
//! applied index), and the driver's shape — the entry and hard state appended to the raft
//! journal, then a batch applying the previous entry committed without its meta-page sync.
//!
//! Rounds: `QRAFT_CRASH_ROUNDS` (default 6). The child is this test binary itself, running the
//! `crash_child` test with `QRAFT_CRASH_CHILD_DIR` set (without it that test does nothing) and
//! `QRAFT_CRASH_CHILD_JOURNAL` for the journal shape.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use prost::bytes::Bytes;
use qraft_core::raft::Storage;
use qraft_io::storage::{LmdbStorage, StorageConfig, Table};
use qraft_proto::raftpb::{ConfState, Entry, HardState};
use rand::{Rng, SeedableRng, rngs::SmallRng};

const CHILD_ENV: &str = "QRAFT_CRASH_CHILD_DIR";
const JOURNAL_ENV: &str = "QRAFT_CRASH_CHILD_JOURNAL";
const MAX_CHILD_BATCHES: u64 = 20_000;
/// Every this many batches the child snapshots and compacts, so kills also hit those.
const SNAPSHOT_EVERY: u64 = 37;
const KEEP_AFTER_COMPACT: u64 = 10;

/// The payload of entry/key `i`: its length and bytes depend on `i` only, so the parent can
/// check content, not just presence.
fn payload(i: u64) -> Vec<u8> {
    let len = 50 + (i * 7919 % 3000) as usize;
    (0..len).map(|j| (i as usize + j) as u8).collect()
}

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// The child: one batch per index, each with the raft entry, the hard state, the applied data
/// and the applied index — the shape of a driver loop turn.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let storage = LmdbStorage::open(StorageConfig::new(dir)).expect("child open");
    if storage.last_index() == 0 {
        storage
            .write(|b| {
                b.bootstrap(ConfState {
                    voters: vec![1],
                    ..Default::default()
                })
            })
            .expect("bootstrap");
    }
    if std::env::var(JOURNAL_ENV).is_ok() {
        journal_child(&storage);
        return;
    }
    let mut out = std::io::stdout().lock();
    let start = storage.last_index() + 1;
    for i in start..start + MAX_CHILD_BATCHES {
        storage
            .write(|b| {
                let entry = Entry {
                    index: i,
                    term: 1,
                    data: Bytes::from(payload(i)),
                    ..Default::default()
                };
                b.append(&[entry])?;
                b.set_hard_state(&HardState {
                    term: 1,
                    vote: 1,
                    commit: i,
                })?;
                b.put(Table::Key, &key(i), &payload(i))?;
                // A second table in the same batch: both or neither must survive.
                b.put(Table::Lease, &key(i), &i.to_le_bytes())?;
                b.set_applied_index(i)?;
                if i % SNAPSHOT_EVERY == 0 {
                    b.create_snapshot(i, None)?;
                    b.compact(i - KEEP_AFTER_COMPACT)?;
                }
                Ok::<_, qraft_io::storage::StorageError>(())
            })
            .expect("child write");
        writeln!(out, "committed {i}").expect("stdout");
        out.flush().expect("flush");
    }
}

/// The driver's turn: entry `i` with the hard state committing `i - 1` goes to the journal
/// (reported once it returns: durable), then one batch applies entry `i - 1` and commits with
/// its data pages synced only; every `SNAPSHOT_EVERY` the snapshot and compaction batch
/// commits durably.
fn journal_child(storage: &LmdbStorage) {
    let mut out = std::io::stdout().lock();
    let start = storage.last_index() + 1;
    for i in start..start + MAX_CHILD_BATCHES {
        let entry = Entry {
            index: i,
            term: 1,
            data: Bytes::from(payload(i)),
            ..Default::default()
        };
        let hard_state = HardState {
            term: 1,
            vote: 1,
            commit: i - 1,
        };
        storage
            .journal_append(&[entry], Some(&hard_state), true)
            .expect("child journal");
        writeln!(out, "committed {i}").expect("stdout");
        out.flush().expect("flush");
        let mut batch = storage.begin_write().expect("child batch");
        for applied in storage.applied_index() + 1..i {
            batch
                .put(Table::Key, &key(applied), &payload(applied))
                .expect("put");
            batch
                .put(Table::Lease, &key(applied), &applied.to_le_bytes())
                .expect("put");
            batch.set_applied_index(applied).expect("applied");
        }
        batch.commit_unsynced_meta().expect("child apply");
        if i % SNAPSHOT_EVERY == 0 {
            storage
                .write(|b| {
                    b.create_snapshot(i - 1, None)?;
                    b.compact(i - KEEP_AFTER_COMPACT)
                })
                .expect("child snapshot");
        }
    }
}

/// The journal shape's recovered state: every reported entry, the applied data exactly up to
/// the applied index, which never passes the commit index.
fn verify_journal(dir: &Path, reported: u64) -> u64 {
    let (storage, last, applied) = reopen(dir, reported);
    let state = storage.raft_state();
    assert!(
        applied <= state.hard_state.commit,
        "applied past the commit index"
    );
    assert!(
        state.hard_state.commit < last.max(2),
        "commit index past the log"
    );
    check_entries(&storage, last);
    check_data(&storage, applied);
    last
}

fn check_entries(storage: &LmdbStorage, last: u64) {
    let first = storage.first_index();
    assert!(
        first - 1 <= storage.raft_state().snapshot.index,
        "compacted past the snapshot"
    );
    let entries = Storage::entries(storage, first, last + 1, u64::MAX).expect("entries");
    assert_eq!(entries.len() as u64, last + 1 - first);
    for e in &entries {
        assert_eq!(
            e.data,
            Bytes::from(payload(e.index)),
            "entry {} content",
            e.index
        );
    }
}

fn check_data(storage: &LmdbStorage, applied: u64) {
    let read = storage.read().expect("read");
    for i in 2..=applied {
        assert_eq!(
            read.get(Table::Key, &key(i)).expect("get"),
            Some(&payload(i)[..]),
            "key {i}"
        );
        assert_eq!(
            read.get(Table::Lease, &key(i)).expect("get"),
            Some(&i.to_le_bytes()[..])
        );
    }
    assert_eq!(
        read.get(Table::Key, &key(applied + 1)).expect("get"),
        None,
        "applied past the applied index"
    );
}

/// Reopens the store the child left and checks that no reported entry is missing; returns it
/// with its last and applied index.
fn reopen(dir: &Path, reported: u64) -> (LmdbStorage, u64, u64) {
    let storage = LmdbStorage::open(StorageConfig::new(dir)).expect("reopen after kill");
    let last = storage.last_index();
    let applied = storage.applied_index();
    assert!(
        last >= reported,
        "lost a reported entry: reported {reported}, last index {last}"
    );
    (storage, last, applied)
}

fn verify(dir: &Path, reported: u64) -> u64 {
    let (storage, last, applied) = reopen(dir, reported);
    let state = storage.raft_state();
    assert_eq!(
        applied, last,
        "applied index and log committed in different transactions"
    );
    assert_eq!(state.hard_state.commit, last, "hard state and log diverged");
    check_entries(&storage, last);
    check_data(&storage, applied);
    last
}

#[test]
fn kill_9_at_random_points_loses_no_committed_batch() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    kill_rounds(false, verify);
}

#[test]
fn kill_9_at_random_points_loses_no_journaled_entry() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    kill_rounds(true, verify_journal);
}

fn kill_rounds(journal: bool, verify: fn(&Path, u64) -> u64) {
    let rounds: u64 = std::env::var("QRAFT_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("QRAFT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let mut last_verified = 0;
    for round in 0..rounds {
        let mut command = Command::new(&exe);
        command
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path());
        if journal {
            command.env(JOURNAL_ENV, "1");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let kill_after: u64 = rng.random_range(1..150);
        let extra_delay = Duration::from_micros(rng.random_range(0..3000));
        let mut reported = last_verified;
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.expect("read child");
            if let Some(i) = line.strip_prefix("committed ") {
                reported = i.parse().expect("index");
                seen += 1;
                if seen >= kill_after {
                    break;
                }
            }
        }
        std::thread::sleep(extra_delay);
        child.kill().expect("SIGKILL");
        // Lines written before the kill are commits too.
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(i) = line.strip_prefix("committed ") {
                reported = i.parse().expect("index");
            }
        }
        let status = child.wait().expect("wait");
        assert!(
            !status.success(),
            "round {round}: child finished before the kill"
        );
        last_verified = verify(dir.path(), reported);
        eprintln!("round {round}: reported {reported}, recovered {last_verified}");
    }
}
