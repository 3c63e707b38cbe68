//! Encoding of bbolt pages, the writing half of the format `bbolt_file.rs` reads (layout in
//! that module's documentation): tree pages packed element by element, and the fixed pages a
//! database starts with (two meta pages, an empty freelist).
//!
//! A [`PagePacker`] fills one leaf or branch page in key order. It closes the page before an
//! element that would push it past the page size, unless the page is still empty: a lone
//! element larger than a page makes a page that spans several (bbolt's overflow pages), as
//! bbolt does for big values. The packer can count sizes only (`keep_bytes = false`), so a
//! layout pass costs no copies; the same sequence of elements then closes the same pages with
//! the same spans when the bytes are kept.

use super::bbolt_file::{
    BUCKET_HEADER, ELEMENT, FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, FLAG_META, LEAF_IS_BUCKET,
    MAGIC, META_CHECKED, PAGE_HEADER, VERSION, fnv1a64,
};

/// bbolt's default page size on the platforms etcd ships for.
pub(super) const PAGE_SIZE: usize = 4096;

/// What a leaf or branch element carries besides its key.
#[derive(Debug, Clone, Copy)]
pub(super) enum Payload<'a> {
    /// A leaf's value.
    Value(&'a [u8]),
    /// A leaf's nested bucket: its header and, for an empty bucket, its inline page.
    Bucket(&'a [u8]),
    /// A branch's child page.
    Child(u64),
}

impl Payload<'_> {
    fn data_len(&self) -> usize {
        match self {
            Payload::Value(v) | Payload::Bucket(v) => v.len(),
            Payload::Child(_) => 0,
        }
    }
}

/// A closed page: its first key (for the parent's element) and how many pages it spans.
pub(super) struct ClosedPage {
    pub first_key: Vec<u8>,
    pub span: u64,
    /// The page's bytes (`span` pages long), when the packer keeps them.
    pub bytes: Option<Vec<u8>>,
}

/// One element's header fields, kept until the page closes (the data offsets depend on the
/// element count).
struct Element {
    flags: u32,
    key_len: u32,
    value_len: u32,
    child: u64,
}

/// Fills one tree page at a time. Invariant: every element of a page is of the packer's kind
/// (leaf or branch), and keys arrive in strictly increasing order (the caller's).
pub(super) struct PagePacker {
    branch: bool,
    keep_bytes: bool,
    count: usize,
    data_len: usize,
    first_key: Vec<u8>,
    elements: Vec<Element>,
    data: Vec<u8>,
}

impl PagePacker {
    pub fn new(branch: bool, keep_bytes: bool) -> Self {
        PagePacker {
            branch,
            keep_bytes,
            count: 0,
            data_len: 0,
            first_key: Vec::new(),
            elements: Vec::new(),
            data: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether an element with `key` and `payload` still fits in the open page.
    pub fn fits(&self, key: &[u8], payload: &Payload<'_>) -> bool {
        self.count == 0
            || (self.size() + ELEMENT + key.len() + payload.data_len() <= PAGE_SIZE
                && self.count < usize::from(u16::MAX))
    }

    fn size(&self) -> usize {
        PAGE_HEADER + self.count * ELEMENT + self.data_len
    }

    /// Adds an element to the open page (check [`Self::fits`] first, or close the page).
    pub fn push(&mut self, key: &[u8], payload: Payload<'_>) {
        if self.count == 0 {
            self.first_key.clear();
            self.first_key.extend_from_slice(key);
        }
        self.count += 1;
        self.data_len += key.len() + payload.data_len();
        if !self.keep_bytes {
            return;
        }
        let (flags, value, child) = match payload {
            Payload::Value(v) => (0, v, 0),
            Payload::Bucket(v) => (LEAF_IS_BUCKET, v, 0),
            Payload::Child(id) => (0, &[][..], id),
        };
        self.elements.push(Element {
            flags,
            key_len: len_u32(key.len()),
            value_len: len_u32(value.len()),
            child,
        });
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(value);
    }

    /// Closes the open page as page `id` (which must not be empty) and starts a new one.
    pub fn close(&mut self, id: u64) -> ClosedPage {
        let span = self.size().div_ceil(PAGE_SIZE).max(1) as u64;
        let bytes = self.keep_bytes.then(|| self.encode(id, span));
        let closed = ClosedPage {
            first_key: std::mem::take(&mut self.first_key),
            span,
            bytes,
        };
        self.count = 0;
        self.data_len = 0;
        self.elements.clear();
        self.data.clear();
        closed
    }

    fn encode(&self, id: u64, span: u64) -> Vec<u8> {
        let flags = if self.branch { FLAG_BRANCH } else { FLAG_LEAF };
        let mut page = Vec::with_capacity(span as usize * PAGE_SIZE);
        page_header(&mut page, id, flags, self.elements.len(), span);
        // Each element's `pos` is the distance from the element to its key.
        let mut data_at = PAGE_HEADER + self.elements.len() * ELEMENT;
        for (i, e) in self.elements.iter().enumerate() {
            let pos = len_u32(data_at - (PAGE_HEADER + i * ELEMENT));
            if self.branch {
                page.extend_from_slice(&pos.to_le_bytes());
                page.extend_from_slice(&e.key_len.to_le_bytes());
                page.extend_from_slice(&e.child.to_le_bytes());
            } else {
                page.extend_from_slice(&e.flags.to_le_bytes());
                page.extend_from_slice(&pos.to_le_bytes());
                page.extend_from_slice(&e.key_len.to_le_bytes());
                page.extend_from_slice(&e.value_len.to_le_bytes());
            }
            data_at += e.key_len as usize + e.value_len as usize;
        }
        page.extend_from_slice(&self.data);
        page.resize(span as usize * PAGE_SIZE, 0);
        page
    }
}

/// Sizes here are bounded by a page's elements (keys and values of at most a request's size),
/// far below 4 GiB; saturate rather than wrap if that ever breaks.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn page_header(page: &mut Vec<u8>, id: u64, flags: u16, count: usize, span: u64) {
    page.extend_from_slice(&id.to_le_bytes());
    page.extend_from_slice(&flags.to_le_bytes());
    page.extend_from_slice(&u16::try_from(count).unwrap_or(u16::MAX).to_le_bytes());
    let overflow = u32::try_from(span - 1).unwrap_or(u32::MAX);
    page.extend_from_slice(&overflow.to_le_bytes());
}

/// A bucket's value in its parent: the root page (0 = inline) and sequence, followed for an
/// empty bucket by its inline page (a leaf with no elements), as bbolt stores small buckets.
pub(super) fn bucket_value(root: u64) -> Vec<u8> {
    let mut value = Vec::with_capacity(BUCKET_HEADER + PAGE_HEADER);
    value.extend_from_slice(&root.to_le_bytes());
    value.extend_from_slice(&0u64.to_le_bytes());
    if root == 0 {
        page_header(&mut value, 0, FLAG_LEAF, 0, 1);
    }
    value
}

/// What a meta page records about the database.
pub(super) struct MetaFields {
    /// The root bucket's page.
    pub root: u64,
    pub freelist: u64,
    /// Pages in the database (bbolt's high water mark).
    pub pages: u64,
    pub txid: u64,
}

/// Meta page `id` (0 or 1), checksummed as bbolt checks it.
pub(super) fn meta_page(id: u64, meta: &MetaFields) -> Vec<u8> {
    let mut page = Vec::with_capacity(PAGE_SIZE);
    page_header(&mut page, id, FLAG_META, 0, 1);
    let fields_at = page.len();
    page.extend_from_slice(&MAGIC.to_le_bytes());
    page.extend_from_slice(&VERSION.to_le_bytes());
    page.extend_from_slice(&len_u32(PAGE_SIZE).to_le_bytes());
    page.extend_from_slice(&0u32.to_le_bytes()); // flags
    page.extend_from_slice(&meta.root.to_le_bytes());
    page.extend_from_slice(&0u64.to_le_bytes()); // the root bucket's sequence
    page.extend_from_slice(&meta.freelist.to_le_bytes());
    page.extend_from_slice(&meta.pages.to_le_bytes());
    page.extend_from_slice(&meta.txid.to_le_bytes());
    let checksum = fnv1a64(&page[fields_at..fields_at + META_CHECKED]);
    page.extend_from_slice(&checksum.to_le_bytes());
    page.resize(PAGE_SIZE, 0);
    page
}

/// An empty freelist page: every page of the image is in use.
pub(super) fn empty_freelist_page(id: u64) -> Vec<u8> {
    let mut page = Vec::with_capacity(PAGE_SIZE);
    page_header(&mut page, id, FLAG_FREELIST, 0, 1);
    page.resize(PAGE_SIZE, 0);
    page
}
