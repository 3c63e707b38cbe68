//! The raft journal: an append-only log of [`JournalRecord`]s in preallocated segment files
//! under `<data-dir>/member/journal`, one record and one `fdatasync` per loop turn that raft
//! needs durable (etcd's WAL).
//!
//! Why it exists: a durable LMDB commit costs two device flushes (the data pages, then the meta
//! page), and the raft append is on the path of every write, on every member. A record appended
//! to a zero-filled segment costs one flush: the file's size and blocks never change, so
//! `fdatasync` writes only the data. LMDB then takes the same entries lazily, in the state
//! machine's next commit, which syncs only its data pages (see `WriteBatch`).
//!
//! Invariants:
//! - Segments are named `<seq as 16 hex digits>.wal`, numbered from 1 without gaps; each is
//!   zero-filled to its full size (and synced, and renamed into place) before the first record
//!   goes in, so a zero length marks its unwritten rest.
//! - A record is written whole into one segment; a new segment is started only when the next
//!   record does not fit, so every segment but the last ends in zeros, never in a torn record.
//! - Recovery stops at the first torn frame of the last segment and zero-fills from there: the
//!   tail that a crash cut short never reappears behind later records.
//! - A position ([`JournalPosition`]) names the byte after a record; LMDB records the position
//!   up to which it holds everything, and segments wholly before the position of a commit that
//!   is known durable are deleted.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::{Result, StorageError};
use super::journal_record::{Frame, JournalRecord, read_frame};

/// The size of a fresh segment (larger when one record needs more).
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

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

pub(crate) struct Journal {
    dir: PathBuf,
    /// The segment records go to, open for writing.
    file: File,
    segment: u64,
    offset: u64,
    capacity: u64,
    /// The oldest segment still on disk.
    first_segment: u64,
}

/// What [`Journal::open`] found past the position LMDB holds.
pub(crate) struct Recovered {
    pub journal: Journal,
    /// Records after `from`, in order, each with the position after it.
    pub records: Vec<(JournalRecord, JournalPosition)>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` and reads every record after `from`.
    /// A torn last record is cut off; damage anywhere else is [`StorageError::Corrupt`].
    pub fn open(dir: &Path, from: JournalPosition) -> Result<Recovered> {
        fs::create_dir_all(dir)?;
        remove_partial_segments(dir)?;
        let mut segments = list_segments(dir)?;
        // Segments wholly before LMDB's position were folded in already; a crash may have
        // undone some of their deletions.
        while segments.len() > 1 && segments[0] < from.segment {
            fs::remove_file(segment_path(dir, segments[0]))?;
            segments.remove(0);
        }
        let Some((&first, &last)) = segments.first().zip(segments.last()) else {
            let journal = Journal::create_segment(dir, 1, SEGMENT_BYTES, 1)?;
            return Ok(Recovered {
                journal,
                records: Vec::new(),
            });
        };
        if last - first + 1 != segments.len() as u64 {
            return Err(corrupt(format!(
                "segments {first}..={last} have gaps ({} files)",
                segments.len()
            )));
        }
        if from.segment > last || (from.segment < first && from != JournalPosition::default()) {
            return Err(corrupt(format!(
                "storage has the journal up to segment {} offset {}, but segments {first}..={last} are on disk",
                from.segment, from.offset
            )));
        }
        let mut records = Vec::new();
        let mut end = JournalPosition::default();
        for segment in from.segment.max(first)..=last {
            let start = if segment == from.segment {
                from.offset
            } else {
                0
            };
            let bytes = fs::read(segment_path(dir, segment))?;
            let scan = scan_segment(&bytes, segment, start, &mut records)?;
            end = JournalPosition {
                segment,
                offset: scan.end,
            };
            if scan.torn {
                if segment != last {
                    return Err(corrupt(format!(
                        "segment {segment} has a damaged record at offset {} and later segments follow",
                        scan.end
                    )));
                }
                tracing::warn!(
                    segment,
                    offset = scan.end,
                    "raft journal: cut off a record a crash left incomplete"
                );
            }
            if segment == last && (scan.torn || scan.dirty_tail) {
                zero_from(&segment_path(dir, segment), scan.end, bytes.len() as u64)?;
            }
            if segment == last {
                let file = File::options()
                    .write(true)
                    .open(segment_path(dir, segment))?;
                let journal = Journal {
                    dir: dir.to_path_buf(),
                    file,
                    segment,
                    offset: end.offset,
                    capacity: bytes.len() as u64,
                    first_segment: first,
                };
                return Ok(Recovered { journal, records });
            }
        }
        Err(corrupt(format!("no segment after {end:?}")))
    }

    /// Where the next record goes; everything before it is written and synced.
    pub fn end(&self) -> JournalPosition {
        JournalPosition {
            segment: self.segment,
            offset: self.offset,
        }
    }

    /// Writes `record` and syncs it; returns the position after it.
    pub fn append(&mut self, record: &JournalRecord) -> Result<JournalPosition> {
        let frame = record.encode_frame();
        let len = frame.len() as u64;
        if self.offset + len > self.capacity {
            self.roll(len)?;
        }
        self.file.write_all_at(&frame, self.offset)?;
        self.file.sync_data()?;
        self.offset += len;
        Ok(self.end())
    }

    /// Deletes the segments that hold only records before `durable` — a position LMDB holds
    /// in a commit that can no longer be undone.
    pub fn release_before(&mut self, durable: JournalPosition) -> Result<()> {
        while self.first_segment < durable.segment.min(self.segment) {
            fs::remove_file(segment_path(&self.dir, self.first_segment))?;
            self.first_segment += 1;
        }
        Ok(())
    }

    /// Starts the next segment, big enough for a frame of `len` bytes.
    fn roll(&mut self, len: u64) -> Result<()> {
        let next = self.segment + 1;
        let size = SEGMENT_BYTES.max(len.next_multiple_of(ZEROS.len() as u64));
        let fresh = Journal::create_segment(&self.dir, next, size, self.first_segment)?;
        *self = fresh;
        Ok(())
    }

    /// Creates segment `seq` zero-filled to `size`: written as a temporary file, synced, renamed
    /// into place and the directory synced, so a crash never leaves a half-made segment.
    fn create_segment(dir: &Path, seq: u64, size: u64, first_segment: u64) -> Result<Journal> {
        let path = segment_path(dir, seq);
        let temp = path.with_extension("wal.tmp");
        {
            let mut file = File::create(&temp)?;
            let mut left = size;
            while left > 0 {
                let n = left.min(ZEROS.len() as u64) as usize;
                file.write_all(&ZEROS[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
        }
        fs::rename(&temp, &path)?;
        File::open(dir)?.sync_all()?;
        let file = File::options().write(true).open(&path)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            file,
            segment: seq,
            offset: 0,
            capacity: size,
            first_segment,
        })
    }
}

struct Scan {
    /// Offset after the last whole record.
    end: u64,
    torn: bool,
    /// Non-zero bytes after the end (pieces of an interrupted write).
    dirty_tail: bool,
}

fn scan_segment(
    bytes: &[u8],
    segment: u64,
    start: u64,
    records: &mut Vec<(JournalRecord, JournalPosition)>,
) -> Result<Scan> {
    let mut at = start as usize;
    if at > bytes.len() {
        return Err(corrupt(format!(
            "position {start} is past the end of segment {segment}"
        )));
    }
    loop {
        let rest = &bytes[at..];
        match read_frame(rest)? {
            Frame::Record(record, len) => {
                at += len;
                records.push((
                    record,
                    JournalPosition {
                        segment,
                        offset: at as u64,
                    },
                ));
            }
            Frame::End => {
                let dirty_tail = rest.iter().any(|b| *b != 0);
                return Ok(Scan {
                    end: at as u64,
                    torn: false,
                    dirty_tail,
                });
            }
            Frame::Torn => {
                return Ok(Scan {
                    end: at as u64,
                    torn: true,
                    dirty_tail: true,
                });
            }
        }
    }
}

fn zero_from(path: &Path, from: u64, len: u64) -> Result<()> {
    let mut file = File::options().write(true).open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut left = len.saturating_sub(from);
    while left > 0 {
        let n = left.min(ZEROS.len() as u64) as usize;
        file.write_all(&ZEROS[..n])?;
        left -= n as u64;
    }
    file.sync_data()?;
    Ok(())
}

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.wal"))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut segments = Vec::new();
    for item in fs::read_dir(dir)? {
        let name = item?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".wal") {
            let seq = u64::from_str_radix(stem, 16)
                .map_err(|_| corrupt(format!("unexpected file {name}")))?;
            segments.push(seq);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

fn remove_partial_segments(dir: &Path) -> Result<()> {
    for item in fs::read_dir(dir)? {
        let path = item?.path();
        if path.extension().is_some_and(|ext| ext == "tmp") {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn corrupt(reason: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt("raft journal", reason)
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
