//! A read-only reader of bbolt database files, for the subset etcd writes (its backend, and the
//! file `etcdctl snapshot save` produces): top-level buckets of plain key-value pairs. The
//! writing half (`bbolt_page.rs`, `bbolt_image.rs`) produces the same format.
//!
//! The format, as bbolt lays it out (integers little-endian, as bbolt writes them on every
//! platform etcd ships for):
//!
//! ```text
//! page      id:u64 flags:u16 count:u16 overflow:u32, then `count` 16-byte elements; a page
//!           spans 1 + overflow consecutive pages of the meta page's size
//! meta      (pages 0 and 1, flag 0x04) magic:u32=0xED0CDAED version:u32=2 page_size:u32
//!           flags:u32 root:u64 sequence:u64 freelist:u64 high_water:u64 txid:u64
//!           checksum:u64 (FNV-1a 64 of the meta fields before it); the valid one with the
//!           larger txid is current
//! branch    (flag 0x01) element pos:u32 ksize:u32 child:u64; the key at element + pos
//! leaf      (flag 0x02) element flags:u32 pos:u32 ksize:u32 vsize:u32; key then value at
//!           element + pos; flags 0x01 marks a bucket, whose value is root:u64 sequence:u64
//!           followed, when root is 0, by the bucket's only page inline
//! ```
//!
//! The root bucket (the meta page's `root`) holds the named buckets. Reading walks each tree in
//! key order holding one page per level, so memory is bounded by the tree's height times the
//! largest page. Every offset is checked against its page and every page against the file, and
//! no page may be visited twice, so a damaged or hostile file gets an error, never a panic or a
//! walk that does not end.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::error::{Result, StorageError};

/// bbolt's magic number, in each meta page right after the page header.
pub(crate) const MAGIC: u32 = 0xED0C_DAED;
pub(super) const VERSION: u32 = 2;
pub(super) const PAGE_HEADER: usize = 16;
pub(super) const ELEMENT: usize = 16;
pub(super) const BUCKET_HEADER: usize = 16;
/// Meta fields covered by the checksum: 4 u32 and 5 u64.
pub(super) const META_CHECKED: usize = 4 * 4 + 5 * 8;
const META_BYTES: usize = META_CHECKED + 8;

pub(super) const FLAG_BRANCH: u16 = 0x01;
pub(super) const FLAG_LEAF: u16 = 0x02;
pub(super) const FLAG_META: u16 = 0x04;
pub(super) const FLAG_FREELIST: u16 = 0x10;
pub(super) const LEAF_IS_BUCKET: u32 = 0x01;

/// Deeper trees than this are damage (bbolt's are a handful of levels even for huge files).
const MAX_DEPTH: usize = 32;
/// One page (with its overflow) larger than this is damage, not a value etcd could hold.
const MAX_PAGE_BYTES: u64 = 1 << 30;

/// Whether `head` (the file's first bytes) starts like a bbolt database.
pub(crate) fn is_bbolt(head: &[u8]) -> bool {
    head.get(PAGE_HEADER..PAGE_HEADER + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|b| u32::from_le_bytes(b) == MAGIC)
}

fn corrupt(what: impl std::fmt::Display) -> StorageError {
    StorageError::BadSnapshot(format!("etcd (bbolt) database: {what}"))
}

/// An open bbolt file at the state of its current meta page.
pub(crate) struct BboltFile {
    file: File,
    page_size: u64,
    /// Pages the database uses (bbolt's high water mark); its size is this times the page size.
    pages: u64,
    root: u64,
}

/// What a walk over the database meets, in order.
pub(crate) enum Visit<'a> {
    /// The start of a named bucket.
    Bucket(&'a [u8]),
    /// One key-value pair of that bucket.
    Entry(BucketEntry<'a>),
}

/// Called with each leaf element's flags, key and value.
type LeafVisitor<'v> = dyn FnMut(u32, &[u8], &[u8]) -> Result<()> + 'v;

/// One key-value pair of a named bucket.
pub(crate) struct BucketEntry<'a> {
    pub bucket: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl BboltFile {
    /// Opens the database in the first `db_len` bytes of `file` (what follows, such as the
    /// SHA-256 etcd appends to a snapshot, is not part of it).
    pub fn open(file: File, db_len: u64) -> Result<Self> {
        let first = read_meta(&file, 0, db_len)?;
        let second = match &first {
            Ok(meta) => read_meta(&file, meta.page_size, db_len)?,
            // bbolt's default page size, when the first meta page cannot tell it.
            Err(_) => read_meta(&file, 4096, db_len)?,
        };
        let meta = match (first, second) {
            (Ok(a), Ok(b)) => {
                if b.txid > a.txid {
                    b
                } else {
                    a
                }
            }
            (Ok(m), Err(_)) | (Err(_), Ok(m)) => m,
            (Err(why), Err(_)) => return Err(corrupt(format!("no valid meta page ({why})"))),
        };
        let needed = meta.pages.saturating_mul(meta.page_size);
        if needed > db_len {
            return Err(corrupt(format!(
                "truncated: {db_len} bytes, the database needs {needed}"
            )));
        }
        if meta.root < 2 || meta.root >= meta.pages {
            return Err(corrupt(format!("root page {} out of range", meta.root)));
        }
        Ok(BboltFile {
            file,
            page_size: meta.page_size,
            pages: meta.pages,
            root: meta.root,
        })
    }

    /// The database's size as bbolt reports it (pages in use times the page size): what
    /// `etcdctl snapshot status` prints as the total size.
    pub fn size(&self) -> u64 {
        self.pages * self.page_size
    }

    /// Calls `visit` with each named bucket, in name order, then with each of its key-value
    /// pairs in key order.
    pub fn for_each(&self, visit: &mut dyn FnMut(Visit<'_>) -> Result<()>) -> Result<()> {
        let mut budget = self.pages;
        // The root bucket lists the named buckets: a few, each a name and a header (plus an
        // inline page for a small bucket), so holding them is bounded by a page or two.
        let root = self.page(self.root, &mut budget)?;
        let mut buckets = Vec::new();
        self.walk(&root, true, 0, &mut budget, &mut |flags, name, value| {
            if flags & LEAF_IS_BUCKET == 0 {
                return Err(corrupt(format!(
                    "a plain value {:?} in the root bucket",
                    String::from_utf8_lossy(name)
                )));
            }
            buckets.push((name.to_vec(), value.to_vec()));
            Ok(())
        })?;
        for (name, value) in &buckets {
            visit(Visit::Bucket(name))?;
            let (bucket_root, inline) = bucket_header(value)?;
            let mut on_entry = |flags: u32, key: &[u8], value: &[u8]| {
                if flags & LEAF_IS_BUCKET != 0 {
                    return Err(corrupt(format!(
                        "nested bucket {:?} in {:?} (etcd writes none)",
                        String::from_utf8_lossy(key),
                        String::from_utf8_lossy(name)
                    )));
                }
                visit(Visit::Entry(BucketEntry {
                    bucket: name,
                    key,
                    value,
                }))
            };
            if bucket_root == 0 {
                self.walk(inline, false, 1, &mut budget, &mut on_entry)?;
            } else {
                let page = self.page(bucket_root, &mut budget)?;
                self.walk(&page, true, 1, &mut budget, &mut on_entry)?;
            }
        }
        Ok(())
    }

    /// Visits the leaf elements under `page` in key order. `paged` is false for a bucket's
    /// inline page, which has no page id of its own.
    fn walk(
        &self,
        page: &[u8],
        paged: bool,
        depth: usize,
        budget: &mut u64,
        visit: &mut LeafVisitor<'_>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(corrupt("tree deeper than any bbolt writes"));
        }
        let header = PageHeader::parse(page)?;
        let count = usize::from(header.count);
        if PAGE_HEADER + count * ELEMENT > page.len() {
            return Err(corrupt(format!(
                "page {}: {count} elements overflow it",
                header.id
            )));
        }
        match header.flags {
            FLAG_LEAF => {
                for i in 0..count {
                    let at = PAGE_HEADER + i * ELEMENT;
                    let flags = le_u32(page, at);
                    let pos = le_u32(page, at + 4) as usize;
                    let ksize = le_u32(page, at + 8) as usize;
                    let vsize = le_u32(page, at + 12) as usize;
                    let key = slice(page, at + pos, ksize, header.id)?;
                    let value = slice(page, at + pos + ksize, vsize, header.id)?;
                    visit(flags, key, value)?;
                }
                Ok(())
            }
            FLAG_BRANCH if paged => {
                for i in 0..count {
                    let at = PAGE_HEADER + i * ELEMENT;
                    let child = le_u64(page, at + 8);
                    let child = self.page(child, budget)?;
                    self.walk(&child, true, depth + 1, budget, visit)?;
                }
                Ok(())
            }
            other => Err(corrupt(format!(
                "page {}: flags {other:#x} where a tree page belongs",
                header.id
            ))),
        }
    }

    /// Page `id` with its overflow pages; counts them against `budget` (the file's pages), so
    /// a cycle of pointers ends in an error.
    fn page(&self, id: u64, budget: &mut u64) -> Result<Vec<u8>> {
        if id < 2 || id >= self.pages {
            return Err(corrupt(format!("page {id} out of range")));
        }
        let offset = id * self.page_size;
        let mut head = [0u8; PAGE_HEADER];
        self.file.read_exact_at(&mut head, offset)?;
        let header = PageHeader::parse(&head)?;
        if header.id != id {
            return Err(corrupt(format!("page {id} calls itself {}", header.id)));
        }
        let span = 1 + u64::from(header.overflow);
        let bytes = span * self.page_size;
        if id + span > self.pages || bytes > MAX_PAGE_BYTES {
            return Err(corrupt(format!("page {id} overflows the database")));
        }
        if span > *budget {
            return Err(corrupt("pages reached twice (a cycle)"));
        }
        *budget -= span;
        let mut page = vec![0u8; bytes as usize];
        self.file.read_exact_at(&mut page, offset)?;
        Ok(page)
    }
}

struct Meta {
    page_size: u64,
    root: u64,
    pages: u64,
    txid: u64,
}

/// The meta page at `offset`: `Ok(Err(why))` when it is not a valid one (the other may be).
fn read_meta(file: &File, offset: u64, db_len: u64) -> Result<std::result::Result<Meta, String>> {
    let end = offset + (PAGE_HEADER + META_BYTES) as u64;
    if end > db_len {
        return Ok(Err(format!("file too short for a meta page at {offset}")));
    }
    let mut raw = [0u8; PAGE_HEADER + META_BYTES];
    file.read_exact_at(&mut raw, offset)?;
    let header = PageHeader::parse(&raw)?;
    let m = &raw[PAGE_HEADER..];
    if header.flags != FLAG_META || le_u32(m, 0) != MAGIC {
        return Ok(Err(format!("no meta page at {offset}")));
    }
    if le_u32(m, 4) != VERSION {
        return Ok(Err(format!(
            "format version {}, not {VERSION}",
            le_u32(m, 4)
        )));
    }
    if le_u64(m, META_CHECKED) != fnv1a64(&m[..META_CHECKED]) {
        return Ok(Err(format!("meta page at {offset}: checksum mismatch")));
    }
    let page_size = u64::from(le_u32(m, 8));
    if !page_size.is_power_of_two() || !(512..=1 << 20).contains(&page_size) {
        return Ok(Err(format!("page size {page_size}")));
    }
    Ok(Ok(Meta {
        page_size,
        root: le_u64(m, 16),
        pages: le_u64(m, 40),
        txid: le_u64(m, 48),
    }))
}

struct PageHeader {
    id: u64,
    flags: u16,
    count: u16,
    overflow: u32,
}

impl PageHeader {
    fn parse(page: &[u8]) -> Result<Self> {
        if page.len() < PAGE_HEADER {
            return Err(corrupt("a page shorter than its header"));
        }
        Ok(PageHeader {
            id: le_u64(page, 0),
            flags: u16::from_le_bytes([page[8], page[9]]),
            count: u16::from_le_bytes([page[10], page[11]]),
            overflow: le_u32(page, 12),
        })
    }
}

/// A bucket value: its root page (0 = inline) and the inline page, if any.
fn bucket_header(value: &[u8]) -> Result<(u64, &[u8])> {
    if value.len() < BUCKET_HEADER {
        return Err(corrupt("a bucket header shorter than 16 bytes"));
    }
    Ok((le_u64(value, 0), &value[BUCKET_HEADER..]))
}

fn slice(page: &[u8], start: usize, len: usize, id: u64) -> Result<&[u8]> {
    start
        .checked_add(len)
        .and_then(|end| page.get(start..end))
        .ok_or_else(|| corrupt(format!("page {id}: an element points outside it")))
}

/// Callers check `at + 4 <= bytes.len()` (element and header bounds) first.
fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Callers check `at + 8 <= bytes.len()` first.
fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

pub(super) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
