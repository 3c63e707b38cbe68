//! Export and import of the whole key space (every state machine table, the meta table with the
//! applied index included) as a byte stream, cut into chunks for `snapshot save` and for sending
//! raft snapshots.
//!
//! Stream format (all integers big-endian):
//!
//! ```text
//! "QRAFTSNP" version:u32
//! record*            2 name_len:u8 name key_len:u32 key value_len:u32 value
//! 0xFF record_count:u64 crc32:u32     (IEEE CRC-32 of every byte before it)
//! ```
//!
//! Records are written table by table in key order from one read transaction, so the stream is
//! a consistent point-in-time image. The importer checks magic, version, table names, record
//! count and checksum; since it runs inside a write batch, a bad stream leaves nothing behind.

use std::io::{self, Read, Write};
use std::ops::Bound;

use heed::RwTxn;

use super::error::{Result, StorageError};
use qraft_proto::raftpb::SnapshotMetadata;

use super::raft_state::PersistedRaftState;
use super::read_txn::ReadTxn;
use super::snapshot_meta::applied_snapshot_metadata;
use super::tables::{Table, Tables, put_at_end, table_by_name};

const MAGIC: &[u8; 8] = b"QRAFTSNP";
const FORMAT_VERSION: u32 = 1;
const TAG_KV: u8 = 2;
const TAG_END: u8 = 0xFF;

/// Chunk size used by the `Iterator` impl of [`SnapshotExporter`].
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// Produces the snapshot stream in chunks from one read transaction.
pub struct SnapshotExporter {
    read: ReadTxn,
    raft: PersistedRaftState,
    applied_index: u64,
    table_pos: usize,
    resume_after: Option<Vec<u8>>,
    hasher: crc32fast::Hasher,
    records: u64,
    started: bool,
    done: bool,
}

impl SnapshotExporter {
    pub(crate) fn new(read: ReadTxn, raft: &PersistedRaftState) -> Result<Self> {
        let applied_index = read.applied_index()?;
        Ok(SnapshotExporter {
            read,
            raft: raft.clone(),
            applied_index,
            table_pos: 0,
            resume_after: None,
            hasher: crc32fast::Hasher::new(),
            records: 0,
            started: false,
            done: false,
        })
    }

    /// The applied index the exported data reflects.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The raft snapshot metadata of exactly this data (index = the applied index, its term,
    /// the configuration applied with it). Put it in the `MsgSnap` that carries the stream: it
    /// may be newer than what raft chose, which raft handles like any newer acknowledgement.
    pub fn metadata(&self) -> Result<SnapshotMetadata> {
        applied_snapshot_metadata(&self.read, &self.raft)
    }

    /// The exact length of the whole stream, counted from the same read transaction in one
    /// pass over the keys that copies nothing, so a sender can announce how many bytes remain
    /// (etcd's `SnapshotResponse.remaining_bytes`) before the first chunk goes out.
    pub fn stream_len(&self) -> Result<u64> {
        let header = (MAGIC.len() + 4) as u64;
        let trailer = 1 + 8 + 4;
        let mut len = header + trailer;
        for table in Table::ALL {
            let per_record = (1 + 1 + table.name().len() + 4 + 4) as u64;
            for item in self.read.range(table, Bound::Unbounded, Bound::Unbounded)? {
                let (key, value) = item?;
                len += per_record + key.len() as u64 + value.len() as u64;
            }
        }
        Ok(len)
    }

    /// The next chunk of about `target_bytes` (a chunk ends after the record that crosses the
    /// target), or `None` after the last one.
    pub fn next_chunk(&mut self, target_bytes: usize) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(target_bytes.min(DEFAULT_CHUNK_BYTES * 4));
        if !self.started {
            buf.extend_from_slice(MAGIC);
            buf.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
            self.started = true;
        }
        while let Some(&table) = Table::ALL.get(self.table_pos) {
            let start = match &self.resume_after {
                Some(key) => Bound::Excluded(key.as_slice()),
                None => Bound::Unbounded,
            };
            let mut full_after = None;
            for item in self.read.range(table, start, Bound::Unbounded)? {
                let (key, value) = item?;
                write_kv(&mut buf, table, key, value)?;
                self.records += 1;
                if buf.len() >= target_bytes {
                    full_after = Some(key.to_vec());
                    break;
                }
            }
            match full_after {
                Some(key) => {
                    self.resume_after = Some(key);
                    self.hasher.update(&buf);
                    return Ok(Some(buf));
                }
                None => {
                    self.table_pos += 1;
                    self.resume_after = None;
                }
            }
        }
        buf.push(TAG_END);
        buf.extend_from_slice(&self.records.to_be_bytes());
        self.hasher.update(&buf);
        let crc = std::mem::take(&mut self.hasher).finalize();
        buf.extend_from_slice(&crc.to_be_bytes());
        self.done = true;
        Ok(Some(buf))
    }

    /// Writes the whole stream to `out`; returns the bytes written.
    pub fn write_all_to(mut self, out: &mut impl Write) -> Result<u64> {
        let mut written = 0u64;
        while let Some(chunk) = self.next_chunk(DEFAULT_CHUNK_BYTES)? {
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }
}

impl Iterator for SnapshotExporter {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk(DEFAULT_CHUNK_BYTES).transpose()
    }
}

/// Reads a snapshot stream that arrives as chunks (from the transport, or straight from a
/// [`SnapshotExporter`]) without joining them first. A chunk is any byte container (`Vec<u8>`,
/// or the transport's `Bytes`, which it takes as decoded, without a copy).
pub struct ChunksReader<I, C> {
    chunks: I,
    current: Option<C>,
    pos: usize,
}

impl<I, C, E> ChunksReader<I, C>
where
    I: Iterator<Item = Result<C, E>>,
    C: AsRef<[u8]>,
{
    pub fn new(chunks: I) -> Self {
        ChunksReader {
            chunks,
            current: None,
            pos: 0,
        }
    }
}

impl<I, C, E> Read for ChunksReader<I, C>
where
    I: Iterator<Item = Result<C, E>>,
    C: AsRef<[u8]>,
    E: std::fmt::Display,
{
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = &self.current {
                let rest = &chunk.as_ref()[self.pos..];
                if !rest.is_empty() {
                    let n = out.len().min(rest.len());
                    out[..n].copy_from_slice(&rest[..n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            match self.chunks.next() {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.current = Some(chunk);
                    self.pos = 0;
                }
                Some(Err(err)) => return Err(io::Error::other(err.to_string())),
            }
        }
    }
}

fn write_kv(buf: &mut Vec<u8>, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
    let name = table.name().as_bytes();
    let too_big = |what: &str| StorageError::BadSnapshot(format!("{what} longer than 4 GiB"));
    let key_len = u32::try_from(key.len()).map_err(|_| too_big("key"))?;
    let value_len = u32::try_from(value.len()).map_err(|_| too_big("value"))?;
    buf.push(TAG_KV);
    buf.push(name.len() as u8);
    buf.extend_from_slice(name);
    buf.extend_from_slice(&key_len.to_be_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(&value_len.to_be_bytes());
    buf.extend_from_slice(value);
    Ok(())
}

/// Reads a stream, hashing everything read so far.
struct HashingReader<R> {
    inner: R,
    hasher: crc32fast::Hasher,
}

impl<R: Read> HashingReader<R> {
    fn exact<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        self.fill(&mut out)?;
        Ok(out)
    }

    fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        self.inner.read_exact(out).map_err(|err| match err.kind() {
            io::ErrorKind::UnexpectedEof => StorageError::BadSnapshot("truncated stream".into()),
            _ => StorageError::Io(err),
        })?;
        self.hasher.update(out);
        Ok(())
    }

    fn vec(&mut self, len: usize) -> Result<Vec<u8>> {
        // Grow as bytes arrive rather than trusting a length prefix with an allocation.
        let mut out = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            self.fill(&mut chunk[..n])?;
            out.extend_from_slice(&chunk[..n]);
            left -= n;
        }
        Ok(out)
    }
}

/// One record of a snapshot stream: a key and value of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub table: Table,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// What the end-of-stream record of a checked stream said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotTrailer {
    /// Key-value records in the stream (every table's).
    pub records: u64,
    /// The stream's CRC-32 (IEEE), verified against every byte before it.
    pub crc32: u32,
}

/// Parses a snapshot stream record by record, checking magic, version, table names, the
/// record count and the checksum; holds one record at a time, so streams of any size are
/// processed in bounded memory (raft snapshot install, `qraftctl snapshot status|restore`).
/// A record is only known good once [`Self::next_record`] has returned `Ok(None)`: a caller
/// that writes records as they come must be able to throw them away.
pub(crate) struct StreamParser<R> {
    reader: HashingReader<R>,
    records: u64,
    started: bool,
    trailer: Option<SnapshotTrailer>,
    /// Whether bytes may follow the end record (a file's padding and digest, checked by the
    /// caller through [`Self::into_inner`]); a bare stream must end right there.
    suffix_allowed: bool,
}

impl<R: Read> StreamParser<R> {
    /// A parser for a bare stream: no byte may follow the end record.
    pub fn new(stream: R) -> Self {
        StreamParser {
            reader: HashingReader {
                inner: stream,
                hasher: crc32fast::Hasher::new(),
            },
            records: 0,
            started: false,
            trailer: None,
            suffix_allowed: false,
        }
    }

    /// A parser for a stream that something else follows (see `snapshot_file`): whatever
    /// follows the end record is left unread in [`Self::into_inner`] for the caller to check.
    pub fn with_suffix(stream: R) -> Self {
        StreamParser {
            suffix_allowed: true,
            ..Self::new(stream)
        }
    }

    /// The next record, or `None` once the end record was read and checked (and, for
    /// [`Self::new`], no byte follows it).
    pub fn next_record(&mut self) -> Result<Option<SnapshotRecord>> {
        if self.trailer.is_some() {
            return Ok(None);
        }
        let reader = &mut self.reader;
        if !self.started {
            if &reader.exact::<8>()? != MAGIC {
                return Err(StorageError::BadSnapshot(
                    "not a qraft snapshot (bad magic)".into(),
                ));
            }
            let version = u32::from_be_bytes(reader.exact()?);
            if version != FORMAT_VERSION {
                return Err(StorageError::BadSnapshot(format!(
                    "unknown format version {version}"
                )));
            }
            self.started = true;
        }
        let [tag] = reader.exact::<1>()?;
        match tag {
            TAG_KV => {
                let [name_len] = reader.exact::<1>()?;
                let name = reader.vec(usize::from(name_len))?;
                let table = std::str::from_utf8(&name)
                    .ok()
                    .and_then(table_by_name)
                    .ok_or_else(|| {
                        StorageError::BadSnapshot(format!(
                            "unknown table {:?}",
                            String::from_utf8_lossy(&name)
                        ))
                    })?;
                let key_len = u32::from_be_bytes(reader.exact()?) as usize;
                let key = reader.vec(key_len)?;
                let value_len = u32::from_be_bytes(reader.exact()?) as usize;
                let value = reader.vec(value_len)?;
                self.records += 1;
                Ok(Some(SnapshotRecord { table, key, value }))
            }
            TAG_END => {
                let count = u64::from_be_bytes(reader.exact()?);
                let computed = std::mem::take(&mut reader.hasher).finalize();
                let stored = u32::from_be_bytes(reader.exact()?);
                if count != self.records {
                    return Err(StorageError::BadSnapshot(format!(
                        "record count {count} but {} records read",
                        self.records
                    )));
                }
                if computed != stored {
                    return Err(StorageError::BadSnapshot("checksum mismatch".into()));
                }
                if !self.suffix_allowed {
                    let mut trailing = [0u8; 1];
                    if reader.inner.read(&mut trailing)? != 0 {
                        return Err(StorageError::BadSnapshot("data after end of stream".into()));
                    }
                }
                self.trailer = Some(SnapshotTrailer {
                    records: count,
                    crc32: stored,
                });
                Ok(None)
            }
            other => Err(StorageError::BadSnapshot(format!(
                "unknown record tag {other}"
            ))),
        }
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The checked end record, once [`Self::next_record`] returned `None`.
    pub fn trailer(&self) -> Option<SnapshotTrailer> {
        self.trailer
    }

    /// The underlying stream, positioned right after the end record.
    pub fn into_inner(self) -> R {
        self.reader.inner
    }
}

pub(crate) fn restore_key_space(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    stream: impl Read,
) -> Result<u64> {
    let mut parser = StreamParser::new(stream);
    let mut first = parser.next_record()?;
    for table in Table::ALL {
        tables.data(table).clear(txn)?;
    }
    while let Some(record) = first.take() {
        // A stream holds each table in key order: appended, the pages fill up instead of
        // splitting half-empty (docs/storage.md, "Page fill").
        put_at_end(tables.data(record.table), txn, &record.key, &record.value)?;
        first = parser.next_record()?;
    }
    Ok(parser.records())
}
