//! The raft journal: an append-only log of [`JournalRecord`]s in preallocated segment files
//! under `<data-dir>/member/journal`, one record and one `fdatasync` per loop turn that raft
//! needs durable (etcd's WAL).
//!
//! Why it exists: a durable LMDB commit costs two device flushes (the data pages, then the meta
//! page), and the raft append is on the path of every write, on every member. A record appended
//! to a zero-filled segment costs one flush: the file's size and blocks never change, so
//! `fdatasync` writes only the data. LMDB then takes the same entries lazily, in the state
//! machine's next commit, which syncs only its data pages (see `WriteBatch`). The whole
//! durability argument is in `docs/storage.md`.
//!
//! Invariants:
//! - Segments are named `<seq as 16 hex digits>.wal`, numbered from 1 without gaps; each is
//!   zero-filled to its full size (at least the configured segment size, a multiple of 64 KiB),
//!   synced, renamed into place and the directory synced before the first record goes in, so a
//!   zero length marks its unwritten rest and any other size is damage.
//! - A record is written whole into one segment, after the last; every segment keeps room for a
//!   roll marker after its records. Rolling creates the next segment first, then writes the
//!   marker into the full one and syncs it: every segment but the last ends in a marker (or, after
//!   a crash between the two steps, the last is empty and is removed at open).
//! - The only bytes a crash may leave incomplete are the last record of the last segment, whose
//!   sync never returned (so it was never acknowledged); recovery cuts it off and zero-fills from
//!   there. Every other irregularity — damage before the last record, a missing segment, a
//!   segment of the wrong size, a position LMDB holds that the segments do not reach — is
//!   [`StorageError::Corrupt`]: the member refuses to start rather than lose acknowledged
//!   entries (`journal_damage.rs` tells the two apart).
//! - A position ([`JournalPosition`]) names the byte after a record; LMDB records the position
//!   up to which it holds everything (from the first open on, so a journal directory that
//!   disappears is noticed), and segments wholly before the position of a commit that is known
//!   durable are deleted.
//! - After a failed write or sync the journal takes no more records: the kernel may have dropped
//!   the unsynced pages, and a later sync could then succeed without them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{Result, StorageError};
use super::journal_damage::explain_as_torn_write;
use super::journal_fs::{JournalFile, JournalFs, OsFs};
use super::journal_record::{Frame, JournalRecord, ROLL_MARKER_BYTES, read_frame};

/// The size of a fresh segment (larger when one record needs more).
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;

/// Segment sizes are multiples of this (the zero-fill chunk).
const CHUNK: u64 = 64 * 1024;

static ZEROS: [u8; CHUNK as usize] = [0; CHUNK as usize];

/// A place in the journal: the byte after the last record it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct JournalPosition {
    pub segment: u64,
    pub offset: u64,
}

impl JournalPosition {
    pub(crate) fn encode(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.segment.to_be_bytes());
        out[8..].copy_from_slice(&self.offset.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let (segment, offset) = super::codec::decode_pair("journal position", bytes)?;
        Ok(JournalPosition { segment, offset })
    }
}

impl std::fmt::Display for JournalPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "segment {} offset {}", self.segment, self.offset)
    }
}

/// Where the journal's files go and how big its segments are.
#[derive(Clone)]
pub(crate) struct JournalSetup {
    pub fs: Arc<dyn JournalFs>,
    /// A multiple of 64 KiB.
    pub segment_bytes: u64,
}

impl Default for JournalSetup {
    fn default() -> Self {
        JournalSetup {
            fs: OsFs::shared(),
            segment_bytes: SEGMENT_BYTES,
        }
    }
}

pub(crate) struct Journal {
    setup: JournalSetup,
    dir: PathBuf,
    /// The segment records go to, open for writing.
    file: Box<dyn JournalFile>,
    segment: u64,
    offset: u64,
    capacity: u64,
    /// The oldest segment still on disk.
    first_segment: u64,
    /// The first write or sync that failed: no record is taken after it.
    failed: Option<(io::ErrorKind, String)>,
}

/// What [`Journal::open`] found past the position LMDB holds.
pub(crate) struct Recovered {
    pub journal: Journal,
    /// Records after `from`, in order, each with the position after it.
    pub records: Vec<(JournalRecord, JournalPosition)>,
}

/// How a segment's records end.
#[derive(Debug, PartialEq)]
enum SegmentEnd {
    /// In a roll marker at this offset, zeros after it.
    Rolled,
    /// In zeros: the segment takes more records from `end` on.
    Open,
    /// In bytes that are not a record.
    Damaged,
}

struct Scan {
    /// Offset after the last whole record.
    end: u64,
    how: SegmentEnd,
}

impl Journal {
    /// Opens the journal in `dir` and reads every record after `from`, the position LMDB holds;
    /// creates the journal when LMDB holds none (`from` is the default). A torn last record is
    /// cut off; anything else that loses records is [`StorageError::Corrupt`].
    pub fn open(setup: JournalSetup, dir: &Path, from: JournalPosition) -> Result<Recovered> {
        let fs = Arc::clone(&setup.fs);
        let fresh = from == JournalPosition::default();
        if !fs
            .dir_exists(dir)
            .map_err(|err| io_error("look for", dir, err))?
        {
            if !fresh {
                return Err(corrupt(format!(
                    "the directory {} is missing, but LMDB holds the journal up to {from}: \
                     entries it acknowledged may be lost",
                    dir.display()
                )));
            }
            fs.create_dir(dir)
                .map_err(|err| io_error("create", dir, err))?;
            let parent = dir.parent().unwrap_or(Path::new("."));
            fs.sync_dir(parent)
                .map_err(|err| io_error("sync", parent, err))?;
        }
        let (mut segments, removed_temp) = list_segments(fs.as_ref(), dir)?;
        if segments.is_empty() {
            if !fresh {
                return Err(corrupt(format!(
                    "{} holds no segments, but LMDB holds the journal up to {from}: entries it \
                     acknowledged may be lost",
                    dir.display()
                )));
            }
            let journal = Journal::create_segment(setup, dir, 1, None, 1)?;
            return Ok(Recovered {
                journal,
                records: Vec::new(),
            });
        }
        // Segments wholly before LMDB's position were folded in already; a crash may have
        // undone some of their deletions.
        let mut removed = removed_temp;
        while segments.len() > 1 && segments[0] < from.segment {
            remove(fs.as_ref(), &segment_path(dir, segments[0]))?;
            segments.remove(0);
            removed = true;
        }
        if removed {
            sync_dir(fs.as_ref(), dir)?;
        }
        let (first, last) = (segments[0], segments[segments.len() - 1]);
        if last - first + 1 != segments.len() as u64 {
            return Err(corrupt(format!(
                "segments {first}..={last} have gaps ({} files): a segment is missing",
                segments.len()
            )));
        }
        if fresh && first != 1 {
            return Err(corrupt(format!(
                "segment 1 is missing (segments {first}..={last} are on disk)"
            )));
        }
        if !fresh && (from.segment < first || from.segment > last) {
            return Err(corrupt(format!(
                "LMDB holds the journal up to {from}, but segments {first}..={last} are on disk: \
                 segment {} is missing",
                from.segment
            )));
        }
        Journal::recover(setup, dir, from, first, last)
    }

    /// Reads segments `first..=last` (without gaps, `from` among them) from their start.
    fn recover(
        setup: JournalSetup,
        dir: &Path,
        from: JournalPosition,
        first: u64,
        last: u64,
    ) -> Result<Recovered> {
        let fs = Arc::clone(&setup.fs);
        let mut records = Vec::new();
        let mut segment = first;
        loop {
            let path = segment_path(dir, segment);
            let bytes = fs.read(&path).map_err(|err| io_error("read", &path, err))?;
            check_size(&bytes, segment, setup.segment_bytes)?;
            let scan = scan_segment(&bytes, segment, from, &mut records)?;
            if segment != last {
                match scan.how {
                    SegmentEnd::Rolled => {
                        segment += 1;
                        continue;
                    }
                    _ if segment + 1 == last
                        && from.segment <= segment
                        && Journal::undo_roll(&setup, dir, last)? =>
                    {
                        // A crash came between creating the next segment and marking this
                        // one full: the next is empty and gone again; this one is the last.
                    }
                    _ => {
                        return Err(corrupt(format!(
                            "segment {segment} {} at offset {}, and segment {} follows",
                            if scan.how == SegmentEnd::Damaged {
                                "has a damaged record"
                            } else {
                                "ends without a roll marker"
                            },
                            scan.end,
                            segment + 1
                        )));
                    }
                }
            }
            match scan.how {
                SegmentEnd::Rolled => {
                    return Err(corrupt(format!(
                        "segment {segment} ends in a roll to segment {}, which is missing",
                        segment + 1
                    )));
                }
                SegmentEnd::Damaged => {
                    explain_as_torn_write(&bytes, scan.end as usize)
                        .map_err(|why| corrupt(format!("segment {segment} (the last): {why}")))?;
                    tracing::warn!(
                        segment,
                        offset = scan.end,
                        "raft journal: cut off a record a crash left incomplete"
                    );
                    zero_from(fs.as_ref(), &path, scan.end, bytes.len() as u64)?;
                }
                SegmentEnd::Open => {}
            }
            let file = fs.open(&path).map_err(|err| io_error("open", &path, err))?;
            let journal = Journal {
                setup,
                dir: dir.to_path_buf(),
                file,
                segment,
                offset: scan.end,
                capacity: bytes.len() as u64,
                first_segment: first,
                failed: None,
            };
            return Ok(Recovered { journal, records });
        }
    }

    /// Removes segment `last` if it holds nothing but zeros (a roll the crash interrupted);
    /// whether it did.
    fn undo_roll(setup: &JournalSetup, dir: &Path, last: u64) -> Result<bool> {
        let path = segment_path(dir, last);
        let bytes = setup
            .fs
            .read(&path)
            .map_err(|err| io_error("read", &path, err))?;
        check_size(&bytes, last, setup.segment_bytes)?;
        if bytes.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        remove(setup.fs.as_ref(), &path)?;
        sync_dir(setup.fs.as_ref(), dir)?;
        tracing::warn!(
            segment = last,
            "raft journal: removed an empty segment a crash left half-rolled"
        );
        Ok(true)
    }

    /// Where the next record goes; everything before it is written and synced.
    pub fn end(&self) -> JournalPosition {
        JournalPosition {
            segment: self.segment,
            offset: self.offset,
        }
    }

    /// Writes `record` and syncs it; returns the position after it. After an error the journal
    /// takes nothing more (see the module invariants).
    pub fn append(&mut self, record: &JournalRecord) -> Result<JournalPosition> {
        if let Some((kind, what)) = &self.failed {
            return Err(StorageError::Io(io::Error::new(
                *kind,
                format!(
                    "raft journal: takes no more records after an earlier failure ({what}); \
                     restart the member"
                ),
            )));
        }
        let result = self.write_record(record);
        if let Err(StorageError::Io(err)) = &result {
            self.failed = Some((err.kind(), err.to_string()));
        }
        result
    }

    fn write_record(&mut self, record: &JournalRecord) -> Result<JournalPosition> {
        let frame = record.encode_frame();
        let len = frame.len() as u64;
        if self.offset + len + ROLL_MARKER_BYTES > self.capacity {
            self.roll(len)?;
        }
        let path = segment_path(&self.dir, self.segment);
        self.file
            .write_at(&frame, self.offset)
            .map_err(|err| io_error("write", &path, err))?;
        self.file
            .sync_data()
            .map_err(|err| io_error("sync", &path, err))?;
        self.offset += len;
        Ok(self.end())
    }

    /// Deletes the segments that hold only records before `durable` — a position LMDB holds
    /// in a commit that can no longer be undone.
    pub fn release_before(&mut self, durable: JournalPosition) -> Result<()> {
        let fs = Arc::clone(&self.setup.fs);
        let mut removed = false;
        while self.first_segment < durable.segment.min(self.segment) {
            remove(fs.as_ref(), &segment_path(&self.dir, self.first_segment))?;
            self.first_segment += 1;
            removed = true;
        }
        if removed {
            sync_dir(fs.as_ref(), &self.dir)?;
        }
        Ok(())
    }

    /// Starts the next segment, big enough for a frame of `len` bytes and a roll marker: creates
    /// it, then marks this one full (see the module invariants).
    fn roll(&mut self, len: u64) -> Result<()> {
        let next = self.segment + 1;
        let size = self
            .setup
            .segment_bytes
            .max((len + ROLL_MARKER_BYTES).next_multiple_of(CHUNK));
        let fresh = Journal::create_segment(
            self.setup.clone(),
            &self.dir,
            next,
            Some(size),
            self.first_segment,
        )?;
        let path = segment_path(&self.dir, self.segment);
        self.file
            .write_at(&JournalRecord::roll_marker_frame(), self.offset)
            .map_err(|err| io_error("write", &path, err))?;
        self.file
            .sync_data()
            .map_err(|err| io_error("sync", &path, err))?;
        *self = fresh;
        Ok(())
    }

    /// Creates segment `seq` zero-filled to `size` (default: the segment size): written as a
    /// temporary file, synced, renamed into place and the directory synced, so a crash never
    /// leaves a half-made segment.
    fn create_segment(
        setup: JournalSetup,
        dir: &Path,
        seq: u64,
        size: Option<u64>,
        first_segment: u64,
    ) -> Result<Journal> {
        let fs = Arc::clone(&setup.fs);
        let size = size.unwrap_or(setup.segment_bytes);
        let path = segment_path(dir, seq);
        let temp = path.with_extension("wal.tmp");
        {
            let mut file = fs
                .create(&temp)
                .map_err(|err| io_error("create", &temp, err))?;
            let mut at = 0;
            while at < size {
                let n = (size - at).min(CHUNK);
                file.write_at(&ZEROS[..n as usize], at)
                    .map_err(|err| io_error("zero-fill", &temp, err))?;
                at += n;
            }
            file.sync_all()
                .map_err(|err| io_error("sync", &temp, err))?;
        }
        fs.rename(&temp, &path)
            .map_err(|err| io_error("rename", &temp, err))?;
        sync_dir(fs.as_ref(), dir)?;
        let file = fs.open(&path).map_err(|err| io_error("open", &path, err))?;
        Ok(Journal {
            setup,
            dir: dir.to_path_buf(),
            file,
            segment: seq,
            offset: 0,
            capacity: size,
            first_segment,
            failed: None,
        })
    }
}

/// A segment is made at its full size and never changes size: any other length is damage (a
/// truncation, or a file that is not a segment).
fn check_size(bytes: &[u8], segment: u64, segment_bytes: u64) -> Result<()> {
    let len = bytes.len() as u64;
    if len < segment_bytes || !len.is_multiple_of(CHUNK) {
        return Err(corrupt(format!(
            "segment {segment} is {len} bytes, not a whole segment (truncated?)"
        )));
    }
    Ok(())
}

/// Reads the records of one segment from its start, keeping those past `from`; checks that a
/// record ends exactly at `from` when it lies in this segment.
fn scan_segment(
    bytes: &[u8],
    segment: u64,
    from: JournalPosition,
    records: &mut Vec<(JournalRecord, JournalPosition)>,
) -> Result<Scan> {
    let mut at = 0;
    let mut passed_from = segment != from.segment || from.offset == 0;
    let scan = loop {
        let rest = &bytes[at..];
        match read_frame(rest)? {
            Frame::Record(record, len) => {
                at += len;
                let position = JournalPosition {
                    segment,
                    offset: at as u64,
                };
                if position == from {
                    passed_from = true;
                }
                if position > from {
                    records.push((record, position));
                }
            }
            Frame::Roll => {
                let after = at + ROLL_MARKER_BYTES as usize;
                if bytes[after..].iter().any(|b| *b != 0) {
                    return Err(corrupt(format!(
                        "segment {segment} has data after its roll marker at offset {at}"
                    )));
                }
                break Scan {
                    end: at as u64,
                    how: SegmentEnd::Rolled,
                };
            }
            Frame::End if rest.iter().all(|b| *b == 0) => {
                break Scan {
                    end: at as u64,
                    how: SegmentEnd::Open,
                };
            }
            Frame::End | Frame::Torn => {
                break Scan {
                    end: at as u64,
                    how: SegmentEnd::Damaged,
                };
            }
        }
    };
    if !passed_from {
        return Err(corrupt(format!(
            "LMDB holds the journal up to {from}, which is not the end of a record in segment \
             {segment} (its records end at offset {})",
            scan.end
        )));
    }
    Ok(scan)
}

fn zero_from(fs: &dyn JournalFs, path: &Path, from: u64, len: u64) -> Result<()> {
    let mut file = fs.open(path).map_err(|err| io_error("open", path, err))?;
    let mut at = from;
    while at < len {
        let n = (len - at).min(CHUNK - at % CHUNK);
        file.write_at(&ZEROS[..n as usize], at)
            .map_err(|err| io_error("zero-fill", path, err))?;
        at += n;
    }
    file.sync_data()
        .map_err(|err| io_error("sync", path, err))?;
    Ok(())
}

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.wal"))
}

/// The segments in `dir`, in order, after removing half-made ones (temporary files a crash
/// left); whether any was removed.
fn list_segments(fs: &dyn JournalFs, dir: &Path) -> Result<(Vec<u64>, bool)> {
    let mut segments = Vec::new();
    let mut removed = false;
    for name in fs.list(dir).map_err(|err| io_error("list", dir, err))? {
        if name.ends_with(".tmp") {
            remove(fs, &dir.join(&name))?;
            removed = true;
        } else if let Some(stem) = name.strip_suffix(".wal") {
            let seq = u64::from_str_radix(stem, 16)
                .map_err(|_| corrupt(format!("unexpected file {name}")))?;
            segments.push(seq);
        }
    }
    segments.sort_unstable();
    Ok((segments, removed))
}

fn remove(fs: &dyn JournalFs, path: &Path) -> Result<()> {
    fs.remove(path).map_err(|err| io_error("remove", path, err))
}

fn sync_dir(fs: &dyn JournalFs, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(|err| io_error("sync", dir, err))
}

/// An IO error with what the journal was doing and to which file; the kind is kept.
fn io_error(action: &str, path: &Path, err: io::Error) -> StorageError {
    StorageError::Io(io::Error::new(
        err.kind(),
        format!("raft journal: {action} {}: {err}", path.display()),
    ))
}

fn corrupt(reason: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt("raft journal", reason)
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
