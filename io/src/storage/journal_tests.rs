//! The journal on the real file system: records come back, segments roll and go, a torn last
//! record is cut off, and every other kind of damage or loss is refused at open.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;

use qraft_proto::raftpb::{Entry, HardState};

use super::*;

fn record(first: u64, count: u64, size: usize) -> JournalRecord {
    JournalRecord {
        entries: (first..first + count)
            .map(|index| Entry {
                index,
                term: 3,
                data: vec![index as u8 | 0x80; size].into(),
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

/// 64 KiB segments, so that a few records fill one.
fn small() -> JournalSetup {
    JournalSetup {
        segment_bytes: 64 * 1024,
        ..JournalSetup::default()
    }
}

fn open(dir: &Path, from: JournalPosition) -> Result<Recovered> {
    Journal::open(small(), dir, from)
}

fn fresh(dir: &Path) -> Journal {
    open(dir, JournalPosition::default()).expect("open").journal
}

fn indexes(records: &[(JournalRecord, JournalPosition)]) -> Vec<u64> {
    records
        .iter()
        .flat_map(|(r, _)| r.entries.iter().map(|e| e.index))
        .collect()
}

fn segments(dir: &Path) -> Vec<u64> {
    list_segments(&OsFs, dir).expect("list").0
}

/// A journal of 4 KiB records 1..=count; the position after each.
fn journal_with(dir: &Path, count: u64) -> Vec<JournalPosition> {
    let mut journal = fresh(dir);
    (1..=count)
        .map(|i| journal.append(&record(i, 1, 4000)).expect("append"))
        .collect()
}

fn damage(dir: &Path, segment: u64, offset: u64, bytes: &[u8]) {
    let file = File::options()
        .write(true)
        .open(segment_path(dir, segment))
        .expect("open segment");
    file.write_all_at(bytes, offset).expect("damage");
}

#[track_caller]
fn assert_corrupt(result: Result<Recovered>, says: &str) {
    match result {
        Err(StorageError::Corrupt { detail, .. }) => {
            assert!(detail.contains(says), "{detail:?} does not say {says:?}")
        }
        Err(other) => panic!("expected corruption, got {other}"),
        Ok(recovered) => panic!(
            "expected corruption, opened with {} records",
            recovered.records.len()
        ),
    }
}

#[test]
fn records_come_back_after_a_reopen_from_the_given_position() {
    let dir = tempfile::tempdir().expect("dir");
    let mut journal = fresh(dir.path());
    let first = journal.append(&record(1, 2, 10)).expect("append");
    let second = journal.append(&record(3, 1, 10)).expect("append");
    assert!(first < second);
    drop(journal);

    let all = open(dir.path(), JournalPosition::default()).expect("reopen");
    assert_eq!(indexes(&all.records), vec![1, 2, 3]);
    assert_eq!(all.records[1].1, second);
    assert_eq!(all.journal.end(), second);
    drop(all);
    let after_first = open(dir.path(), first).expect("reopen");
    assert_eq!(indexes(&after_first.records), vec![3]);
}

#[test]
fn records_roll_into_new_segments_and_old_ones_are_released() {
    let dir = tempfile::tempdir().expect("dir");
    let mut journal = fresh(dir.path());
    // 16 KiB records: four segments' worth, and one record larger than a segment.
    let mut positions = Vec::new();
    for i in 0..20 {
        positions.push(journal.append(&record(i + 1, 1, 16 << 10)).expect("append"));
    }
    positions.push(journal.append(&record(21, 1, 100 << 10)).expect("append"));
    assert!(journal.end().segment >= 5, "{:?}", journal.end());
    let released_to = positions[10];
    journal.release_before(released_to).expect("release");
    assert_eq!(
        segments(dir.path()).first().copied(),
        Some(released_to.segment)
    );
    drop(journal);

    let reopened = open(dir.path(), released_to).expect("reopen");
    assert_eq!(indexes(&reopened.records), (12..=21).collect::<Vec<_>>());
    assert_eq!(
        reopened.records.last().map(|r| r.1),
        positions.last().copied()
    );
}

#[test]
fn a_torn_last_record_is_cut_off_and_zeroed() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 3);
    let (kept, torn) = (positions[1], positions[2]);
    // The crash left the third record's first sectors but not the rest.
    let from = (kept.offset + 1024).next_multiple_of(512);
    damage(dir.path(), 1, from, &vec![0; (torn.offset - from) as usize]);

    let mut recovered = open(dir.path(), JournalPosition::default()).expect("reopen");
    assert_eq!(indexes(&recovered.records), vec![1, 2]);
    assert_eq!(recovered.journal.end(), kept);
    let bytes = fs::read(segment_path(dir.path(), 1)).expect("read");
    assert!(bytes[kept.offset as usize..].iter().all(|b| *b == 0));
    // New records go where the torn one was, and read back.
    recovered.journal.append(&record(3, 2, 7)).expect("append");
    drop(recovered);
    let again = open(dir.path(), JournalPosition::default()).expect("reopen");
    assert_eq!(indexes(&again.records), vec![1, 2, 3, 4]);
}

#[test]
fn a_flipped_byte_in_the_last_record_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 3);
    damage(dir.path(), 1, positions[1].offset + 2000, &[0x01]);
    assert_corrupt(
        open(dir.path(), positions[0]),
        "written whole but fails its checksum",
    );
}

#[test]
fn a_flipped_byte_before_the_last_record_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 5);
    // The second record of the (only, so last) segment; three whole records follow it.
    damage(dir.path(), 1, positions[0].offset + 100, &[0x01]);
    assert_corrupt(open(dir.path(), positions[0]), "data follows it");
    // Its length zeroed: the records after it are found all the same.
    damage(dir.path(), 1, positions[0].offset, &[0; 4]);
    assert_corrupt(open(dir.path(), positions[0]), "a whole record follows");
}

#[test]
fn damage_before_the_last_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    journal_with(dir.path(), 40);
    assert!(segments(dir.path()).len() > 2);
    damage(dir.path(), 1, 100, &[0xff; 4]);
    assert_corrupt(
        open(dir.path(), JournalPosition::default()),
        "segment 1 has a damaged record",
    );
}

#[test]
fn damage_to_records_lmdb_holds_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 3);
    // LMDB holds the first two; the second is damaged: the position is not a record's end.
    damage(dir.path(), 1, positions[0].offset + 100, &[0; 3000]);
    assert_corrupt(open(dir.path(), positions[1]), "not the end of a record");
}

#[test]
fn a_truncated_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 30);
    let last = positions[29].segment;
    assert!(last >= 2);
    let path = segment_path(dir.path(), last);
    // Cut inside the records, then inside the zeros after them.
    for cut in [positions[29].offset - 100, positions[29].offset + 100] {
        File::options()
            .write(true)
            .open(&path)
            .expect("open")
            .set_len(cut)
            .expect("truncate");
        assert_corrupt(open(dir.path(), positions[0]), "not a whole segment");
    }
}

#[test]
fn a_zero_length_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 30);
    let last = positions[29].segment;
    for segment in [last, 1] {
        File::create(segment_path(dir.path(), segment)).expect("empty it");
        assert_corrupt(open(dir.path(), JournalPosition::default()), "is 0 bytes");
    }
}

#[test]
fn a_deleted_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 50);
    let last = positions[49].segment;
    assert!(last >= 4, "{last}");
    // The last one, while LMDB holds a position in the first.
    fs::remove_file(segment_path(dir.path(), last)).expect("delete");
    assert_corrupt(open(dir.path(), positions[0]), "which is missing");
    // One in the middle.
    fs::remove_file(segment_path(dir.path(), 2)).expect("delete");
    assert_corrupt(open(dir.path(), positions[0]), "gaps");
    // The one LMDB's position is in, or the first of a journal LMDB has no position in.
    fs::remove_file(segment_path(dir.path(), 1)).expect("delete");
    assert_corrupt(open(dir.path(), positions[0]), "segment 1 is missing");
    assert_corrupt(
        open(dir.path(), JournalPosition::default()),
        "segment 1 is missing",
    );
}

#[test]
fn a_missing_or_empty_journal_directory_is_corruption_once_lmdb_holds_a_position() {
    let dir = tempfile::tempdir().expect("dir");
    let journal_dir = dir.path().join("journal");
    let positions = journal_with(&journal_dir, 3);
    for segment in segments(&journal_dir) {
        fs::remove_file(segment_path(&journal_dir, segment)).expect("delete");
    }
    assert_corrupt(open(&journal_dir, positions[0]), "holds no segments");
    fs::remove_dir(&journal_dir).expect("delete dir");
    assert_corrupt(open(&journal_dir, positions[0]), "is missing");
    // Without a position in LMDB, a first open creates the journal.
    let created = open(&journal_dir, JournalPosition::default()).expect("create");
    assert_eq!(
        created.journal.end(),
        JournalPosition {
            segment: 1,
            offset: 0
        }
    );
}

#[test]
fn a_position_the_segments_do_not_cover_is_corruption() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 2);
    let ahead = JournalPosition {
        segment: 9,
        offset: 0,
    };
    assert_corrupt(open(dir.path(), ahead), "segment 9 is missing");
    let past_the_records = JournalPosition {
        segment: 1,
        offset: positions[1].offset + 40,
    };
    assert_corrupt(
        open(dir.path(), past_the_records),
        "not the end of a record",
    );
    // A half-made segment from a crash during a roll is dropped.
    fs::write(dir.path().join("0000000000000002.wal.tmp"), b"x").expect("write");
    let reopened = open(dir.path(), JournalPosition::default()).expect("reopen");
    assert_eq!(reopened.journal.end(), positions[1]);
    assert_eq!(segments(dir.path()), vec![1]);
}

#[test]
fn a_roll_interrupted_before_its_marker_is_undone() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 3);
    // The next segment was made, but the crash came before the marker.
    fs::write(segment_path(dir.path(), 2), vec![0; 64 * 1024]).expect("write");
    let mut recovered = open(dir.path(), positions[0]).expect("reopen");
    assert_eq!(indexes(&recovered.records), vec![2, 3]);
    assert_eq!(segments(dir.path()), vec![1]);
    // With records in it, it is no interrupted roll.
    fs::write(segment_path(dir.path(), 2), vec![1; 64 * 1024]).expect("write");
    assert_corrupt(open(dir.path(), positions[0]), "without a roll marker");
    fs::remove_file(segment_path(dir.path(), 2)).expect("delete");
    recovered = open(dir.path(), positions[0]).expect("reopen");
    recovered.journal.append(&record(4, 1, 10)).expect("append");
}

#[test]
fn segments_before_the_position_are_removed_at_open() {
    let dir = tempfile::tempdir().expect("dir");
    let positions = journal_with(dir.path(), 40);
    let last = positions[39];
    // LMDB holds everything up to `last` (in the last segment), but the deletions of the older
    // segments were lost in a crash.
    assert!(segments(dir.path()).len() > 1);
    let reopened = open(dir.path(), last).expect("reopen");
    assert!(reopened.records.is_empty());
    assert_eq!(segments(dir.path()), vec![last.segment]);
}

#[test]
fn after_a_failed_write_the_journal_takes_no_more_records() {
    let dir = tempfile::tempdir().expect("dir");
    let mut journal = fresh(dir.path());
    journal.append(&record(1, 1, 10)).expect("append");
    // The segment vanishes under the journal (as a disk gone bad would fail it): the roll
    // cannot create the next one.
    fs::remove_dir_all(dir.path()).expect("remove");
    let err = journal.append(&record(2, 1, 70_000)).expect_err("refused");
    assert!(err.to_string().contains("raft journal: create"), "{err}");
    fs::create_dir(dir.path()).expect("dir back");
    let err = journal
        .append(&record(2, 1, 10))
        .expect_err("still refused");
    assert!(err.to_string().contains("earlier failure"), "{err}");
}
