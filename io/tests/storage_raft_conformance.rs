//! The raft `Storage` contract, checked on core's `MemStorage` and on the LMDB storage with the
//! same scenarios. The LMDB harness also closes and reopens the environment at every
//! checkpoint, so each scenario doubles as a restart test. It runs twice: with appends and hard
//! states written by LMDB batches, and written to the raft journal (as the driver does), where
//! the batches of compaction and snapshots fold the journal's tail in and each reopen replays
//! what is left of it.

use prost::bytes::Bytes;
use qraft_core::raft::{MemStorage, Storage, StorageError, entry_size};
use qraft_io::storage::{LmdbStorage, StorageConfig};
use qraft_proto::raftpb::{ConfState, Entry, HardState, SnapshotMetadata};
use tempfile::TempDir;

/// The write side both implementations offer (named after MemStorage's methods).
trait Harness: Storage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;
    fn set_hard_state(&mut self, hs: HardState);
    fn create_snapshot(&mut self, index: u64, cs: Option<ConfState>) -> Result<(), StorageError>;
    fn compact(&mut self, index: u64) -> Result<(), StorageError>;
    fn apply_snapshot(&mut self, meta: SnapshotMetadata) -> Result<(), StorageError>;
    /// A point where a restart must not change anything.
    fn checkpoint(&mut self);
}

impl Harness for MemStorage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        MemStorage::append(self, entries)
    }
    fn set_hard_state(&mut self, hs: HardState) {
        MemStorage::set_hard_state(self, hs)
    }
    fn create_snapshot(&mut self, index: u64, cs: Option<ConfState>) -> Result<(), StorageError> {
        MemStorage::create_snapshot(self, index, cs, Bytes::new()).map(|_| ())
    }
    fn compact(&mut self, index: u64) -> Result<(), StorageError> {
        MemStorage::compact(self, index)
    }
    fn apply_snapshot(&mut self, meta: SnapshotMetadata) -> Result<(), StorageError> {
        MemStorage::apply_snapshot(
            self,
            qraft_proto::raftpb::Snapshot {
                data: Bytes::new(),
                metadata: Some(meta),
            },
        )
    }
    fn checkpoint(&mut self) {}
}

struct Lmdb {
    dir: TempDir,
    storage: Option<LmdbStorage>,
    /// Appends and hard states go to the journal instead of an LMDB batch.
    journal: bool,
}

impl Lmdb {
    fn journaled(conf: Option<ConfState>) -> Lmdb {
        Lmdb {
            journal: true,
            ..Lmdb::new(conf)
        }
    }

    fn new(conf: Option<ConfState>) -> Lmdb {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("open");
        if let Some(conf) = conf {
            storage.write(|b| b.bootstrap(conf)).expect("bootstrap");
        }
        Lmdb {
            dir,
            storage: Some(storage),
            journal: false,
        }
    }

    fn s(&self) -> &LmdbStorage {
        self.storage.as_ref().expect("storage is open")
    }
}

impl Storage for Lmdb {
    fn initial_state(&self) -> Result<qraft_core::raft::RaftState, StorageError> {
        self.s().initial_state()
    }
    fn entries(&self, lo: u64, hi: u64, max: u64) -> Result<Vec<Entry>, StorageError> {
        Storage::entries(self.s(), lo, hi, max)
    }
    fn term(&self, index: u64) -> Result<u64, StorageError> {
        Storage::term(self.s(), index)
    }
    fn first_index(&self) -> Result<u64, StorageError> {
        Storage::first_index(self.s())
    }
    fn last_index(&self) -> Result<u64, StorageError> {
        Storage::last_index(self.s())
    }
    fn snapshot(&self, request_index: u64) -> Result<qraft_proto::raftpb::Snapshot, StorageError> {
        self.s().snapshot(request_index)
    }
}

impl Harness for Lmdb {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        if self.journal {
            return Ok(self.s().journal_append(entries, None, true)?);
        }
        Ok(self.s().write(|b| b.append(entries))?)
    }
    fn set_hard_state(&mut self, hs: HardState) {
        if self.journal {
            self.s()
                .journal_append(&[], Some(&hs), true)
                .expect("set hard state");
            return;
        }
        self.s()
            .write(|b| b.set_hard_state(&hs))
            .expect("set hard state");
    }
    fn create_snapshot(&mut self, index: u64, cs: Option<ConfState>) -> Result<(), StorageError> {
        Ok(self
            .s()
            .write(|b| b.create_snapshot(index, cs).map(|_| ()))?)
    }
    fn compact(&mut self, index: u64) -> Result<(), StorageError> {
        Ok(self.s().write(|b| b.compact(index))?)
    }
    fn apply_snapshot(&mut self, meta: SnapshotMetadata) -> Result<(), StorageError> {
        Ok(self.s().write(|b| b.apply_snapshot(&meta))?)
    }
    fn checkpoint(&mut self) {
        let before = observe(self);
        drop(self.storage.take());
        let storage = LmdbStorage::open(StorageConfig::new(self.dir.path())).expect("reopen");
        self.storage = Some(storage);
        assert_eq!(observe(self), before, "reopen changed the raft state");
    }
}

/// Everything the trait exposes, for comparing before and after a restart.
fn observe(s: &impl Storage) -> String {
    let first = s.first_index().expect("first");
    let last = s.last_index().expect("last");
    let ents = s.entries(first, last + 1, u64::MAX).expect("entries");
    format!(
        "{:?} {first} {last} {:?} {ents:?} {:?}",
        s.initial_state(),
        s.term(first - 1),
        s.snapshot(0).map(|snap| snap.metadata)
    )
}

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: Bytes::from(format!("e{index}t{term}")),
        ..Default::default()
    }
}

fn conf(voters: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    }
}

fn terms(s: &impl Storage, lo: u64, hi: u64) -> Vec<u64> {
    s.entries(lo, hi, u64::MAX)
        .expect("entries")
        .iter()
        .map(|e| e.term)
        .collect()
}

fn bootstrapped_log_starts_after_the_config_snapshot(s: &mut impl Harness) {
    s.checkpoint();
    assert_eq!(s.first_index(), Ok(2));
    assert_eq!(s.last_index(), Ok(1));
    assert_eq!(s.term(1), Ok(1));
    assert_eq!(s.term(0), Err(StorageError::Compacted));
    assert_eq!(s.term(2), Err(StorageError::Unavailable));
    let state = s.initial_state().expect("state");
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
    assert_eq!((state.hard_state.term, state.hard_state.commit), (1, 1));
    assert_eq!(s.entries(2, 2, u64::MAX), Ok(vec![]));
}

fn append_replaces_the_conflicting_suffix(s: &mut impl Harness) {
    s.append(&[ent(2, 1), ent(3, 1), ent(4, 1), ent(5, 1)])
        .expect("append");
    s.checkpoint();
    s.append(&[ent(3, 2), ent(4, 2)]).expect("append");
    s.checkpoint();
    assert_eq!(s.last_index(), Ok(4), "entry 5 of the old term is gone");
    assert_eq!(terms(s, 2, 5), vec![1, 2, 2]);
    assert_eq!(s.term(5), Err(StorageError::Unavailable));
    // Re-appending the same entries is idempotent; extending works.
    s.append(&[ent(4, 2), ent(5, 3)]).expect("append");
    assert_eq!(terms(s, 2, 6), vec![1, 2, 2, 3]);
    assert!(s.append(&[ent(8, 3)]).is_err(), "a gap is refused");
    s.checkpoint();
    assert_eq!(s.last_index(), Ok(5), "a refused append writes nothing");
}

fn entries_respect_bounds_and_size_limit(s: &mut impl Harness) {
    let big = |i| Entry {
        index: i,
        term: 1,
        data: Bytes::from(vec![7u8; 100]),
        ..Default::default()
    };
    s.append(&[big(2), big(3), big(4)]).expect("append");
    s.checkpoint();
    assert_eq!(s.entries(2, 5, u64::MAX).expect("all").len(), 3);
    assert_eq!(
        s.entries(2, 5, 1).expect("one").len(),
        1,
        "at least one entry"
    );
    assert_eq!(
        s.entries(2, 5, 0).expect("one").len(),
        1,
        "at least one entry"
    );
    let one = entry_size(&big(2));
    assert_eq!(s.entries(2, 5, 2 * one).expect("two").len(), 2);
    assert_eq!(s.entries(2, 5, 2 * one + 1).expect("two").len(), 2);
    assert_eq!(s.entries(3, 5, u64::MAX).expect("tail")[0].index, 3);
    assert_eq!(s.entries(1, 3, u64::MAX), Err(StorageError::Compacted));
    assert_eq!(s.entries(2, 6, u64::MAX), Err(StorageError::Unavailable));
    assert_eq!(s.entries(4, 3, u64::MAX), Ok(vec![]), "an empty range");
}

fn compaction_stops_at_the_snapshot_and_keeps_the_term(s: &mut impl Harness) {
    s.append(&[ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3)])
        .expect("append");
    assert!(s.compact(3).is_err(), "no snapshot covers 3 yet");
    s.create_snapshot(3, None).expect("snapshot");
    s.checkpoint();
    assert_eq!(s.compact(4).map_err(|_| ()), Err(()), "past the snapshot");
    s.compact(3).expect("compact");
    s.checkpoint();
    assert_eq!(s.first_index(), Ok(4));
    assert_eq!(s.last_index(), Ok(5));
    assert_eq!(s.term(3), Ok(2));
    assert_eq!(s.term(2), Err(StorageError::Compacted));
    assert_eq!(s.entries(3, 4, u64::MAX), Err(StorageError::Compacted));
    assert_eq!(terms(s, 4, 6), vec![2, 3]);
    let meta = s.snapshot(3).expect("snapshot").metadata.expect("metadata");
    assert_eq!((meta.index, meta.term), (3, 2));
    assert_eq!(meta.conf_state.map(|c| c.voters), Some(vec![1, 2, 3]));
    assert_eq!(s.compact(3), Err(StorageError::Compacted));
    assert_eq!(
        s.create_snapshot(3, None),
        Err(StorageError::SnapshotOutOfDate)
    );
    // Appending over the compacted prefix skips the compacted part.
    s.append(&[ent(3, 2), ent(4, 2), ent(5, 4)])
        .expect("append");
    assert_eq!(terms(s, 4, 6), vec![2, 4]);
}

fn applying_a_snapshot_replaces_the_log(s: &mut impl Harness) {
    s.append(&[ent(2, 1), ent(3, 1), ent(4, 1)])
        .expect("append");
    s.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 2,
    });
    let meta = SnapshotMetadata {
        conf_state: Some(conf(&[1, 2])),
        index: 10,
        term: 5,
    };
    s.apply_snapshot(meta.clone()).expect("apply");
    s.checkpoint();
    assert_eq!(s.first_index(), Ok(11));
    assert_eq!(s.last_index(), Ok(10));
    assert_eq!(s.term(10), Ok(5));
    assert_eq!(s.term(4), Err(StorageError::Compacted));
    let state = s.initial_state().expect("state");
    assert_eq!(state.conf_state.voters, vec![1, 2]);
    assert_eq!(
        (
            state.hard_state.term,
            state.hard_state.vote,
            state.hard_state.commit
        ),
        (5, 1, 10)
    );
    let older = SnapshotMetadata { index: 9, ..meta };
    assert_eq!(
        s.apply_snapshot(older),
        Err(StorageError::SnapshotOutOfDate)
    );
    s.append(&[ent(11, 5), ent(12, 5)])
        .expect("append after snapshot");
    assert!(s.append(&[ent(14, 5)]).is_err());
    s.checkpoint();
    assert_eq!(terms(s, 11, 13), vec![5, 5]);
}

fn hard_state_round_trips(s: &mut impl Harness) {
    let hs = HardState {
        term: 7,
        vote: 3,
        commit: 1,
    };
    s.set_hard_state(hs);
    s.checkpoint();
    assert_eq!(s.initial_state().expect("state").hard_state, hs);
}

macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod mem {
            use super::*;
            $(#[test] fn $scenario() { super::$scenario(&mut MemStorage::new_with_conf_state(conf(&[1, 2, 3]))); })*
        }
        mod lmdb {
            use super::*;
            $(#[test] fn $scenario() { super::$scenario(&mut Lmdb::new(Some(conf(&[1, 2, 3])))); })*
        }
        mod journal {
            use super::*;
            $(#[test] fn $scenario() { super::$scenario(&mut Lmdb::journaled(Some(conf(&[1, 2, 3])))); })*
        }
    };
}

suite!(
    bootstrapped_log_starts_after_the_config_snapshot,
    append_replaces_the_conflicting_suffix,
    entries_respect_bounds_and_size_limit,
    compaction_stops_at_the_snapshot_and_keeps_the_term,
    applying_a_snapshot_replaces_the_log,
    hard_state_round_trips,
);

#[test]
fn an_empty_lmdb_log_waits_for_a_snapshot_like_mem_storage() {
    let lmdb = Lmdb::new(None);
    let mem = MemStorage::new();
    assert_eq!(observe(&lmdb), observe(&mem));
}

#[test]
fn lmdb_restarts_with_the_conf_state_applied_with_the_data() {
    use qraft_core::backend::{Backend, WriteTxn, meta};
    let mut h = Lmdb::new(Some(conf(&[1, 2, 3])));
    h.append(&[ent(2, 1)]).expect("append");
    let applied = conf(&[1, 2, 3, 4]);
    let mut txn = h.s().write_txn().expect("txn");
    txn.put(
        qraft_core::backend::Table::Meta,
        meta::CONF_STATE,
        &prost::Message::encode_to_vec(&applied),
    )
    .expect("put");
    WriteTxn::commit(txn).expect("commit");
    h.checkpoint();
    assert_eq!(h.initial_state().expect("state").conf_state, applied);
}
