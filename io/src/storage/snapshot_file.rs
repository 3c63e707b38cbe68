//! Snapshot files on disk, as the two savers write them:
//!
//! * `qraftctl snapshot save`: the bare snapshot stream (format in [`super::snapshot`]),
//!   whose end-of-stream record carries a CRC-32 of everything before it;
//! * `etcdctl snapshot save` against qraft's gRPC listener: the same stream, zero-padded to a
//!   multiple of 512 bytes, then the SHA-256 of all of that (32 bytes), as etcd's files end.
//!
//! [`scan_snapshot_file`] reads either in one pass with bounded memory, handing each record to
//! the caller, and tells them apart by what follows the end-of-stream record. Every record is
//! covered by the CRC-32, so a damaged file fails even with `--skip-hash-check` (which, as in
//! etcd, only skips the SHA-256). An etcd (bbolt) database is recognised by its meta page and
//! named in the error.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use ring::digest::{Context, SHA256, SHA256_OUTPUT_LEN};

use super::error::{Result, StorageError};
use super::snapshot::{SnapshotRecord, SnapshotTrailer, StreamParser};

/// The padding unit of etcd-style files (see `server/src/grpc_snapshot.rs`).
const ALIGN_BYTES: u64 = 512;

/// bbolt's magic number, little-endian in each meta page after the 16-byte page header.
const BBOLT_MAGIC: u32 = 0xED0C_DAED;
const BBOLT_MAGIC_OFFSET: usize = 16;

/// How the file's integrity was checked beyond the stream's own CRC-32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestCheck {
    /// A bare stream (`qraftctl snapshot save`): no SHA-256 to check.
    None,
    /// The appended SHA-256 matched.
    Verified,
    /// A SHA-256 was appended but `--skip-hash-check` was given.
    Skipped,
}

/// What a complete, checked pass over a snapshot file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFileSummary {
    pub trailer: SnapshotTrailer,
    pub file_bytes: u64,
    pub digest: DigestCheck,
}

/// Reads the snapshot file at `path` from start to end, calling `visit` for each record, and
/// checks it whole: header, records, count, CRC-32, then padding and SHA-256 if present
/// (skipped with `skip_hash_check`). A record is only known good once this returns `Ok`.
pub fn scan_snapshot_file(
    path: &Path,
    skip_hash_check: bool,
    mut visit: impl FnMut(SnapshotRecord) -> Result<()>,
) -> Result<SnapshotFileSummary> {
    let file = File::open(path)?;
    let file_bytes = file.metadata()?.len();
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let head = peek(&mut buffered, BBOLT_MAGIC_OFFSET + 4)?;
    if is_bbolt(&head) {
        return Err(StorageError::BadSnapshot(
            "an etcd (bbolt) database, not a qraft snapshot: etcd's files are not supported yet"
                .into(),
        ));
    }
    let digesting = DigestingReader {
        inner: head.as_slice().chain(buffered),
        digest: Context::new(&SHA256),
    };
    let mut reader = StreamParser::with_suffix(digesting);
    while let Some(record) = reader.next_record()? {
        visit(record)?;
    }
    let trailer = reader
        .trailer()
        .ok_or_else(|| StorageError::BadSnapshot("no end-of-stream record".into()))?;
    let DigestingReader { mut inner, digest } = reader.into_inner();
    // Whatever follows the stream: nothing, or < 512 bytes of zeros and a 32-byte digest.
    let mut rest = Vec::new();
    (&mut inner)
        .take(ALIGN_BYTES + SHA256_OUTPUT_LEN as u64)
        .read_to_end(&mut rest)?;
    let digest_check = check_suffix(&rest, digest, file_bytes, skip_hash_check)?;
    Ok(SnapshotFileSummary {
        trailer,
        file_bytes,
        digest: digest_check,
    })
}

fn check_suffix(
    rest: &[u8],
    mut digest: Context,
    file_bytes: u64,
    skip_hash_check: bool,
) -> Result<DigestCheck> {
    if rest.is_empty() {
        return Ok(DigestCheck::None);
    }
    let bad = |what: &str| Err(StorageError::BadSnapshot(what.to_string()));
    if rest.len() < SHA256_OUTPUT_LEN || file_bytes % ALIGN_BYTES != SHA256_OUTPUT_LEN as u64 {
        return bad("data after end of stream");
    }
    let (padding, stored) = rest.split_at(rest.len() - SHA256_OUTPUT_LEN);
    if padding.len() as u64 >= ALIGN_BYTES || padding.iter().any(|&b| b != 0) {
        return bad("data after end of stream");
    }
    if skip_hash_check {
        return Ok(DigestCheck::Skipped);
    }
    digest.update(padding);
    let computed = digest.finish();
    if computed.as_ref() != stored {
        return Err(StorageError::BadSnapshot(format!(
            "expected sha256 {}, got {}",
            hex(stored),
            hex(computed.as_ref())
        )));
    }
    Ok(DigestCheck::Verified)
}

/// The first `n` bytes of the stream (fewer if it is shorter), consumed from it.
fn peek(reader: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn is_bbolt(head: &[u8]) -> bool {
    head.get(BBOLT_MAGIC_OFFSET..BBOLT_MAGIC_OFFSET + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|b| u32::from_le_bytes(b) == BBOLT_MAGIC)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Passes bytes through, feeding each to a SHA-256.
struct DigestingReader<R> {
    inner: R,
    digest: Context,
}

impl<R: Read> Read for DigestingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.digest.update(&out[..n]);
        Ok(n)
    }
}
