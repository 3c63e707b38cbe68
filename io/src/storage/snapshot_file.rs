//! Snapshot files on disk, as the two savers write them:
//!
//! * `qraftctl snapshot save`: the bare snapshot stream (format in [`super::snapshot`]),
//!   whose end-of-stream record carries a CRC-32 of everything before it;
//! * `etcdctl snapshot save` against qraft's gRPC listener: the same stream, zero-padded to a
//!   multiple of 512 bytes, then the SHA-256 of all of that (32 bytes), as etcd's files end.
//!
//! and one written by etcd:
//!
//! * `etcdctl snapshot save` against etcd: a bbolt database (recognised by the magic number of
//!   its meta page), followed by its SHA-256 (the file's length is then 32 more than a multiple
//!   of 512); read by `super::etcd_snapshot` as qraft records.
//!
//! [`scan_snapshot_file`] reads any of them with bounded memory, handing each record to the
//! caller, and tells qraft's two apart by what follows the end-of-stream record. Every record of
//! a qraft stream is covered by the CRC-32, so a damaged file fails even with
//! `--skip-hash-check` (which, as in etcd, only skips the SHA-256); an etcd database is checked
//! page by page as it is read.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use qraft_core::mvcc::Revision;
use ring::digest::{Context, SHA256, SHA256_OUTPUT_LEN};

use super::bbolt_file::is_bbolt;
use super::error::{Result, StorageError};
use super::etcd_snapshot::scan_etcd_db;
use super::snapshot::{SnapshotRecord, StreamParser};
use super::tables::Table;

/// The padding unit of etcd-style files (see `server/src/grpc_snapshot.rs`).
const ALIGN_BYTES: u64 = 512;

/// Bytes at the start of a file that tell an etcd database from a qraft stream.
const SNIFF_BYTES: usize = 20;

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

/// Whose snapshot a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotFormat {
    /// qraft's stream (`super::snapshot`), bare or as etcdctl saves it from qraft.
    Qraft,
    /// etcd's bbolt database, as `etcdctl snapshot save` saves it from etcd.
    Etcd,
}

/// Which SHA-256 checks a pass makes (the CRC-32 of a qraft stream is always checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestPolicy {
    /// Check the appended SHA-256 if there is one (`snapshot status`).
    IfPresent,
    /// As `IfPresent`, and an etcd database must carry one (`snapshot restore`, etcd's rule:
    /// a bare database file needs `--skip-hash-check`).
    Required,
    /// `--skip-hash-check`.
    Skip,
}

/// What a complete, checked pass over a snapshot file found: what `snapshot status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFileSummary {
    pub format: SnapshotFormat,
    /// qraft: the stream's CRC-32; etcd: etcdctl's CRC-32C of every bucket's name and entries.
    pub hash: u32,
    /// The newest main revision in the key history.
    pub revision: i64,
    /// qraft: records of every table; etcd: entries of every bucket.
    pub total_keys: u64,
    /// qraft: the file's length; etcd: the database's (pages in use times the page size).
    pub total_size: u64,
    pub digest: DigestCheck,
}

/// Reads the snapshot file at `path` from start to end, calling `visit` for each record qraft
/// keeps, and checks it whole (see the module doc; `policy` says which SHA-256 checks apply).
/// A record is only known good once this returns `Ok`.
pub fn scan_snapshot_file(
    path: &Path,
    policy: DigestPolicy,
    mut visit: impl FnMut(SnapshotRecord) -> Result<()>,
) -> Result<SnapshotFileSummary> {
    let file = File::open(path)?;
    let file_bytes = file.metadata()?.len();
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let head = peek(&mut buffered, SNIFF_BYTES)?;
    if is_bbolt(&head) {
        return scan_etcd_file(path, file_bytes, policy, &mut visit);
    }
    let digesting = DigestingReader {
        inner: head.as_slice().chain(buffered),
        digest: Context::new(&SHA256),
    };
    let mut reader = StreamParser::with_suffix(digesting);
    let mut revision = 0;
    while let Some(record) = reader.next_record()? {
        if record.table == Table::Key {
            revision = key_revision(&record.key)?;
        }
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
    let digest = check_suffix(&rest, digest, file_bytes, policy == DigestPolicy::Skip)?;
    Ok(SnapshotFileSummary {
        format: SnapshotFormat::Qraft,
        hash: trailer.crc32,
        revision,
        total_keys: trailer.records,
        total_size: file_bytes,
        digest,
    })
}

fn key_revision(key: &[u8]) -> Result<i64> {
    Revision::decode(key)
        .map(|(rev, _)| rev.main)
        .map_err(|err| StorageError::BadSnapshot(err.to_string()))
}

/// An etcd database, with its SHA-256 checked first (one sequential pass) so a file that fails
/// it is refused before any record is handed out.
fn scan_etcd_file(
    path: &Path,
    file_bytes: u64,
    policy: DigestPolicy,
    visit: &mut dyn FnMut(SnapshotRecord) -> Result<()>,
) -> Result<SnapshotFileSummary> {
    let has_digest = file_bytes % ALIGN_BYTES == SHA256_OUTPUT_LEN as u64;
    let db_len = if has_digest {
        file_bytes - SHA256_OUTPUT_LEN as u64
    } else {
        file_bytes
    };
    let digest = match (has_digest, policy) {
        (_, DigestPolicy::Skip) => DigestCheck::Skipped,
        (false, DigestPolicy::Required) => {
            return Err(StorageError::BadSnapshot(
                "snapshot missing hash but --skip-hash-check=false".into(),
            ));
        }
        (false, DigestPolicy::IfPresent) => DigestCheck::None,
        (true, _) => {
            verify_appended_sha256(&mut File::open(path)?, db_len)?;
            DigestCheck::Verified
        }
    };
    let status = scan_etcd_db(File::open(path)?, db_len, visit)?;
    Ok(SnapshotFileSummary {
        format: SnapshotFormat::Etcd,
        hash: status.hash,
        revision: status.revision,
        total_keys: status.total_keys,
        total_size: status.total_size,
        digest,
    })
}

/// Checks that the 32 bytes after the first `len` bytes of `file` are their SHA-256.
fn verify_appended_sha256(file: &mut File, len: u64) -> Result<()> {
    let mut digest = Context::new(&SHA256);
    let mut chunk = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        file.read_exact(&mut chunk[..n])?;
        digest.update(&chunk[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; SHA256_OUTPUT_LEN];
    file.read_exact(&mut stored)?;
    let computed = digest.finish();
    if computed.as_ref() != stored {
        return Err(StorageError::BadSnapshot(format!(
            "expected sha256 {}, got {}",
            hex(&stored),
            hex(computed.as_ref())
        )));
    }
    Ok(())
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
