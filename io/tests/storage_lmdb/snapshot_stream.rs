//! Snapshot streams: chunks of one read transaction, restored without being joined, damaged
//! streams refused, saved to a file.

use super::*;

#[test]
fn snapshot_stream_len_is_known_before_the_first_chunk() {
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    fill(&storage, 300, 100);
    let announced = storage
        .export_snapshot()
        .expect("export")
        .stream_len()
        .expect("len");
    for chunk in [64, 4096, 1 << 20] {
        let sent: usize = export(&storage, chunk).iter().map(Vec::len).sum();
        assert_eq!(announced, sent as u64, "chunks of {chunk} bytes");
    }
}

#[test]
fn snapshot_stream_round_trips_the_key_space_in_chunks() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 500, 300);
    let meta = leader
        .export_snapshot()
        .expect("export")
        .metadata()
        .expect("metadata");
    assert_eq!(
        (meta.index, meta.term),
        (500, 7),
        "the metadata describes the exported data"
    );
    assert_eq!(
        Storage::snapshot(&leader, 0)
            .expect("raft snapshot")
            .metadata,
        Some(meta.clone())
    );
    let chunks = export(&leader, 16 * 1024);
    assert!(
        chunks.len() > 5,
        "the stream is cut into chunks: {}",
        chunks.len()
    );
    assert!(
        chunks.iter().all(|c| c.len() < 16 * 1024 + 400),
        "chunks stay near the target"
    );
    let stream: Vec<u8> = chunks.concat();

    let follower = open(&b);
    fill(&follower, 3, 10); // stale data that the snapshot must replace
    follower
        .write(|w| w.put(Table::Alarm, b"stale", b"x"))
        .expect("stale");
    let restored = follower
        .write(|w| {
            w.apply_snapshot(&meta)?;
            w.restore_key_space(&stream[..])
        })
        .expect("restore");
    assert_eq!(
        restored,
        500 + 1 + 2,
        "500 keys, one member, the applied index and term"
    );
    assert_eq!(dump(&follower), dump(&leader));
    assert_eq!(
        follower.applied_index(),
        500,
        "the applied index travels with the data"
    );
    assert_eq!(Storage::first_index(&follower), Ok(501));
    let state = follower.raft_state();
    assert_eq!(
        (state.hard_state.commit, state.hard_state.term),
        (500, 7),
        "commit = applied"
    );
    drop(follower);
    assert_eq!(dump(&open(&b)), dump(&leader), "restored data is durable");
}

#[test]
fn chunks_restore_without_being_joined() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 300, 100);
    let follower = open(&b);
    let exporter = leader.export_snapshot().expect("export");
    assert_eq!(exporter.applied_index(), 300);
    let restored = follower
        .write(|w| w.restore_key_space(ChunksReader::new(exporter)))
        .expect("restore");
    assert_eq!(restored, 300 + 1 + 2);
    assert_eq!(dump(&follower), dump(&leader));
}

#[test]
fn a_damaged_snapshot_stream_is_refused_and_changes_nothing() {
    let (a, b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let leader = open(&a);
    fill(&leader, 50, 20);
    let stream = export(&leader, 1 << 20).concat();
    let follower = open(&b);
    fill(&follower, 7, 7);
    let before = dump(&follower);

    let mut flipped = stream.clone();
    flipped[stream.len() / 2] ^= 0x40;
    let truncated = &stream[..stream.len() - 3];
    let mut trailing = stream.clone();
    trailing.push(0);
    let mut bad_magic = stream.clone();
    bad_magic[0] = b'X';
    for (name, bad) in [
        ("flipped", &flipped[..]),
        ("truncated", truncated),
        ("trailing", &trailing[..]),
        ("magic", &bad_magic[..]),
        ("empty", &[][..]),
    ] {
        let result = follower.write(|w| w.restore_key_space(bad));
        assert!(
            matches!(result, Err(StorageError::BadSnapshot(_))),
            "{name}: expected BadSnapshot, got {result:?}"
        );
        assert_eq!(
            dump(&follower),
            before,
            "{name}: a refused stream wrote something"
        );
    }
}

#[test]
fn save_snapshot_writes_the_stream_to_a_file() {
    let dir = TempDir::new().expect("dir");
    let storage = open(&dir);
    fill(&storage, 20, 5);
    let path = dir.path().join("snap.db");
    let written = storage.save_snapshot(&path).expect("save");
    let file = std::fs::read(&path).expect("read");
    assert_eq!(file.len() as u64, written);
    assert_eq!(file, export(&storage, 1 << 20).concat());
}
