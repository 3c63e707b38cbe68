use super::*;
use prost::bytes::Bytes;
use qraft_proto::raftpb::{ConfState, Entry};

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

fn conf(voters: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    }
}

#[test]
fn bootstrapped_storage_starts_after_the_config_snapshot() {
    let s = MemStorage::new_with_conf_state(conf(&[1, 2, 3]));
    assert_eq!(s.first_index(), Ok(2));
    assert_eq!(s.last_index(), Ok(1));
    assert_eq!(s.term(1), Ok(1));
    assert_eq!(s.term(0), Err(StorageError::Compacted));
    assert_eq!(s.term(2), Err(StorageError::Unavailable));
    assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
}

#[test]
fn append_overwrites_conflicting_suffix_and_refuses_gaps() {
    let mut s = MemStorage::new_with_conf_state(conf(&[1]));
    s.append(&[ent(2, 1), ent(3, 1), ent(4, 1)]).unwrap();
    s.append(&[ent(3, 2)]).unwrap();
    assert_eq!(s.last_index(), Ok(3));
    assert_eq!(s.term(3), Ok(2));
    assert!(matches!(
        s.append(&[ent(6, 2)]),
        Err(StorageError::Other(_))
    ));
}

#[test]
fn entries_respect_bounds_and_size_limit() {
    let mut s = MemStorage::new_with_conf_state(conf(&[1]));
    let big = |i| Entry {
        index: i,
        term: 1,
        data: Bytes::from(vec![0u8; 100]),
        ..Default::default()
    };
    s.append(&[big(2), big(3), big(4)]).unwrap();
    assert_eq!(s.entries(2, 5, u64::MAX).unwrap().len(), 3);
    assert_eq!(s.entries(2, 5, 1).unwrap().len(), 1, "at least one entry");
    let one = entry_size(&big(2));
    assert_eq!(s.entries(2, 5, 2 * one).unwrap().len(), 2);
    assert_eq!(s.entries(1, 3, u64::MAX), Err(StorageError::Compacted));
    assert_eq!(s.entries(2, 6, u64::MAX), Err(StorageError::Unavailable));
}

#[test]
fn compaction_stops_at_snapshot_and_keeps_term() {
    let mut s = MemStorage::new_with_conf_state(conf(&[1]));
    s.append(&[ent(2, 1), ent(3, 2), ent(4, 2)]).unwrap();
    assert!(s.compact(3).is_err(), "no snapshot covers 3 yet");
    s.create_snapshot(3, None, Bytes::from_static(b"state"))
        .unwrap();
    s.compact(3).unwrap();
    assert_eq!(s.first_index(), Ok(4));
    assert_eq!(s.term(3), Ok(2));
    assert_eq!(s.entries(3, 4, u64::MAX), Err(StorageError::Compacted));
    let snap = s.snapshot(3).unwrap();
    assert_eq!(snap.metadata.unwrap().index, 3);
    assert_eq!(s.compact(3), Err(StorageError::Compacted));
}

#[test]
fn applying_a_snapshot_replaces_the_log() {
    let mut leader = MemStorage::new_with_conf_state(conf(&[1, 2]));
    leader.append(&[ent(2, 1), ent(3, 1)]).unwrap();
    let snap = leader
        .create_snapshot(3, None, Bytes::new())
        .unwrap()
        .clone();
    let mut follower = MemStorage::new();
    follower.apply_snapshot(snap.clone()).unwrap();
    assert_eq!(follower.first_index(), Ok(4));
    assert_eq!(follower.last_index(), Ok(3));
    assert_eq!(
        follower.initial_state().unwrap().conf_state.voters,
        vec![1, 2]
    );
    assert_eq!(follower.initial_state().unwrap().hard_state.commit, 3);
    let mut older = snap;
    older.metadata.as_mut().unwrap().index = 2;
    assert_eq!(
        follower.apply_snapshot(older),
        Err(StorageError::SnapshotOutOfDate)
    );
}

#[test]
fn append_owned_matches_append() {
    let mut a = MemStorage::new_with_conf_state(conf(&[1]));
    let mut b = a.clone();
    for batch in [
        vec![ent(2, 1), ent(3, 1), ent(4, 1)],
        vec![ent(3, 2)],
        vec![ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)],
    ] {
        a.append(&batch).unwrap();
        b.append_owned(batch).unwrap();
        assert_eq!(
            a.entries(2, a.last_index().unwrap() + 1, u64::MAX),
            b.entries(2, b.last_index().unwrap() + 1, u64::MAX)
        );
    }
    assert_eq!(b.last_index(), Ok(4));
    assert!(b.append_owned(vec![ent(9, 2)]).is_err());
}
