use std::fs;

use qraft_proto::raftpb::{Entry, HardState};

use super::*;

fn record(first: u64, count: u64, size: usize) -> JournalRecord {
    JournalRecord {
        entries: (first..first + count)
            .map(|index| Entry {
                index,
                term: 3,
                data: vec![index as u8; size].into(),
                ..Entry::default()
            })
            .collect(),
        hard_state: Some(HardState {
            term: 3,
            vote: 2,
            commit: first,
        }),
    }
}

fn fresh(dir: &std::path::Path) -> Journal {
    Journal::open(dir, JournalPosition::default())
        .expect("open")
        .journal
}

fn indexes(records: &[(JournalRecord, JournalPosition)]) -> Vec<u64> {
    records
        .iter()
        .flat_map(|(r, _)| r.entries.iter().map(|e| e.index))
        .collect()
}

#[test]
fn records_come_back_after_a_reopen_from_the_given_position() {
    let dir = tempfile::tempdir().expect("dir");
    let mut journal = fresh(dir.path());
    let first = journal.append(&record(1, 2, 10)).expect("append");
    let second = journal.append(&record(3, 1, 10)).expect("append");
    assert!(first < second);
    drop(journal);

    let all = Journal::open(dir.path(), JournalPosition::default()).expect("reopen");
    assert_eq!(indexes(&all.records), vec![1, 2, 3]);
    assert_eq!(all.records[1].1, second);
    assert_eq!(all.journal.end(), second);
    drop(all);
    let after_first = Journal::open(dir.path(), first).expect("reopen");
    assert_eq!(indexes(&after_first.records), vec![3]);
}

#[test]
fn records_roll_into_new_segments_and_old_ones_are_released() {
    let dir = tempfile::tempdir().expect("dir");
    let mut journal = fresh(dir.path());
    // 1 MiB records: eight segments' worth, and one record larger than a segment.
    let mut positions = Vec::new();
    for i in 0..20 {
        positions.push(journal.append(&record(i + 1, 1, 1 << 20)).expect("append"));
    }
    positions.push(journal.append(&record(21, 1, 9 << 20)).expect("append"));
    assert!(journal.end().segment >= 3, "{:?}", journal.end());
    let released_to = positions[10];
    journal.release_before(released_to).expect("release");
    let on_disk = list_segments(dir.path()).expect("list");
    assert_eq!(on_disk.first().copied(), Some(released_to.segment));
    drop(journal);

    let reopened = Journal::open(dir.path(), released_to).expect("reopen");
    assert_eq!(indexes(&reopened.records), (12..=21).collect::<Vec<_>>());
    assert_eq!(
        reopened.records.last().map(|r| r.1),
        positions.last().copied()
    );
}

#[test]
fn a_torn_last_record_is_cut_off_and_zeroed() {
    let dir = tempfile::tempdir().expect("dir");
    let mut journal = fresh(dir.path());
    let kept = journal.append(&record(1, 1, 100)).expect("append");
    let torn = journal.append(&record(2, 1, 100)).expect("append");
    drop(journal);
    // The crash left the second record's header but not all of its payload.
    let path = segment_path(dir.path(), kept.segment);
    let file = File::options().write(true).open(&path).expect("open");
    file.write_all_at(&[0; 40], torn.offset - 40)
        .expect("damage");
    drop(file);

    let mut recovered = Journal::open(dir.path(), JournalPosition::default()).expect("reopen");
    assert_eq!(indexes(&recovered.records), vec![1]);
    assert_eq!(recovered.journal.end(), kept);
    let bytes = fs::read(&path).expect("read");
    assert!(bytes[kept.offset as usize..].iter().all(|b| *b == 0));
    // New records go where the torn one was, and read back.
    recovered.journal.append(&record(2, 2, 7)).expect("append");
    drop(recovered);
    let again = Journal::open(dir.path(), JournalPosition::default()).expect("reopen");
    assert_eq!(indexes(&again.records), vec![1, 2, 3]);
}

#[test]
fn damage_before_the_last_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let mut journal = fresh(dir.path());
    for i in 0..10 {
        journal.append(&record(i + 1, 1, 1 << 20)).expect("append");
    }
    assert!(journal.end().segment > 1);
    drop(journal);
    let path = segment_path(dir.path(), 1);
    let file = File::options().write(true).open(&path).expect("open");
    file.write_all_at(&[0xff; 4], 100).expect("damage");
    drop(file);
    let err = Journal::open(dir.path(), JournalPosition::default())
        .err()
        .expect("refused");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
}

#[test]
fn a_position_the_segments_do_not_cover_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let journal = fresh(dir.path());
    drop(journal);
    let ahead = JournalPosition {
        segment: 9,
        offset: 0,
    };
    assert!(matches!(
        Journal::open(dir.path(), ahead).err(),
        Some(StorageError::Corrupt { .. })
    ));
    // A half-made segment from a crash during a roll is dropped.
    fs::write(dir.path().join("0000000000000002.wal.tmp"), b"x").expect("write");
    let reopened = Journal::open(dir.path(), JournalPosition::default()).expect("reopen");
    assert_eq!(reopened.journal.end().segment, 1);
}

#[test]
fn segments_before_the_position_are_removed_at_open() {
    let dir = tempfile::tempdir().expect("dir");
    let mut journal = fresh(dir.path());
    let mut last = JournalPosition::default();
    for i in 0..12 {
        last = journal.append(&record(i + 1, 1, 1 << 20)).expect("append");
    }
    drop(journal);
    // LMDB holds everything up to `last` (in the last segment), but the deletions of the older
    // segments were lost in a crash.
    assert!(list_segments(dir.path()).expect("list").len() > 1);
    let reopened = Journal::open(dir.path(), last).expect("reopen");
    assert!(reopened.records.is_empty());
    assert_eq!(list_segments(dir.path()).expect("list"), vec![last.segment]);
}
