//! The bbolt writer checked against our reader: what `BboltImage` streams, `BboltFile` reads
//! back bucket by bucket and pair by pair — with many keys (branch levels), values larger
//! than a page (overflow pages), empty buckets (inline), any chunk size, and a structure
//! (page flags, spans, meta pages) checked page by page.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;

use super::bbolt_file::{BboltFile, Visit};
use super::bbolt_image::{BboltImage, BucketSource, PairVisitor};
use super::bbolt_page::PAGE_SIZE;
use super::error::Result;

type Pairs = BTreeMap<Vec<u8>, Vec<u8>>;
type Buckets = Vec<(&'static [u8], Pairs)>;

struct MemBuckets {
    names: Vec<&'static [u8]>,
    data: Vec<Pairs>,
}

impl MemBuckets {
    fn new(buckets: Buckets) -> Self {
        let (names, data) = buckets.into_iter().unzip();
        MemBuckets { names, data }
    }
}

impl BucketSource for MemBuckets {
    fn names(&self) -> &[&'static [u8]] {
        &self.names
    }

    fn scan(&self, bucket: usize, after: Option<&[u8]>, visit: &mut PairVisitor<'_>) -> Result<()> {
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_vec()));
        for (k, v) in self.data[bucket].range((start, Bound::Unbounded)) {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Streams the image in chunks of `chunk` bytes; checks the announced length.
fn write_image(buckets: Buckets, chunk: usize) -> Vec<u8> {
    let mut image = BboltImage::new(MemBuckets::new(buckets)).expect("layout");
    let len = image.len();
    let mut bytes = Vec::new();
    while let Some(part) = image.next_chunk(chunk).expect("chunk") {
        assert_eq!(part.len() % PAGE_SIZE, 0, "chunks are whole pages");
        bytes.extend_from_slice(&part);
    }
    assert_eq!(bytes.len() as u64, len, "announced length");
    bytes
}

/// Everything our reader finds in `image`, as bucket name → pairs.
fn read_back(image: &[u8]) -> Buckets {
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(image).expect("write");
    let db = BboltFile::open(file, image.len() as u64).expect("open");
    assert_eq!(db.size(), image.len() as u64);
    let mut found: Vec<(Vec<u8>, Pairs)> = Vec::new();
    db.for_each(&mut |visit| {
        match visit {
            Visit::Bucket(name) => found.push((name.to_vec(), BTreeMap::new())),
            Visit::Entry(e) => {
                let last = found.last_mut().expect("a bucket first");
                assert_eq!(e.bucket, last.0.as_slice());
                assert!(
                    last.1
                        .keys()
                        .next_back()
                        .is_none_or(|k| k.as_slice() < e.key)
                );
                last.1.insert(e.key.to_vec(), e.value.to_vec());
            }
        }
        Ok(())
    })
    .expect("walk");
    found
        .into_iter()
        .map(|(name, pairs)| (&*name.leak(), pairs))
        .collect()
}

fn pairs(n: usize, value_len: usize) -> Pairs {
    (0..n)
        .map(|i| {
            let key = format!("key/{i:08}").into_bytes();
            let value = vec![b'a' + (i % 26) as u8; value_len];
            (key, value)
        })
        .collect()
}

/// Page flags and spans from the page headers, in file order.
fn page_kinds(image: &[u8]) -> Vec<(u16, u32)> {
    let mut kinds = Vec::new();
    let mut at = 0;
    while at < image.len() {
        let flags = u16::from_le_bytes([image[at + 8], image[at + 9]]);
        let overflow = u32::from_le_bytes(image[at + 12..at + 16].try_into().expect("4 bytes"));
        assert_eq!(
            u64::from_le_bytes(image[at..at + 8].try_into().expect("8 bytes")),
            (at / PAGE_SIZE) as u64,
            "page id at byte {at}"
        );
        kinds.push((flags, overflow));
        at += (overflow as usize + 1) * PAGE_SIZE;
    }
    kinds
}

#[test]
fn empty_buckets_and_no_buckets_round_trip() {
    let buckets: Buckets = vec![(b"a", BTreeMap::new()), (b"b", BTreeMap::new())];
    let image = write_image(buckets.clone(), 1 << 20);
    // Metas, freelist, root bucket: empty buckets live inline in the root.
    assert_eq!(image.len(), 4 * PAGE_SIZE);
    assert_eq!(read_back(&image), buckets);
    let image = write_image(Vec::new(), 1 << 20);
    assert_eq!(read_back(&image), Vec::new());
}

#[test]
fn many_keys_make_branch_levels_and_read_back_in_order() {
    // ~40 pairs per leaf: 30,000 pairs need 3 levels (leaves, branches, a root branch).
    let big = pairs(30_000, 64);
    let buckets: Buckets = vec![
        (b"empty", BTreeMap::new()),
        (b"key", big),
        (b"meta", pairs(3, 8)),
    ];
    let image = write_image(buckets.clone(), 64 * 1024);
    let kinds = page_kinds(&image);
    assert_eq!(&kinds[..3], &[(0x04, 0), (0x04, 0), (0x10, 0)]);
    let branches = kinds.iter().filter(|(f, _)| *f == 0x01).count();
    assert!(branches > 2, "{branches} branch pages");
    assert_eq!(read_back(&image), buckets);
}

#[test]
fn values_larger_than_a_page_spill_into_overflow_pages() {
    let mut data = pairs(50, 100);
    data.insert(b"huge".to_vec(), vec![7; 5 * PAGE_SIZE + 123]);
    data.insert(b"just-over".to_vec(), vec![9; PAGE_SIZE]);
    let buckets: Buckets = vec![(b"key", data)];
    let image = write_image(buckets.clone(), 4096);
    let kinds = page_kinds(&image);
    assert!(kinds.contains(&(0x02, 5)), "{kinds:?}");
    assert!(kinds.contains(&(0x02, 1)), "{kinds:?}");
    assert_eq!(read_back(&image), buckets);
}

#[test]
fn the_image_is_the_same_whatever_the_chunk_size() {
    let mut data = pairs(5_000, 30);
    data.insert(b"key/00002500x".to_vec(), vec![1; 3 * PAGE_SIZE]);
    let buckets: Buckets = vec![(b"a", pairs(700, 10)), (b"b", data)];
    let whole = write_image(buckets.clone(), usize::MAX);
    for chunk in [1, PAGE_SIZE, 10_000, 64 * 1024] {
        assert_eq!(write_image(buckets.clone(), chunk), whole, "chunk {chunk}");
    }
    assert_eq!(read_back(&whole), buckets);
}

#[test]
fn both_meta_pages_are_valid_and_name_the_last_page_as_root() {
    let image = write_image(vec![(b"key", pairs(100, 10))], 1 << 20);
    let pages = (image.len() / PAGE_SIZE) as u64;
    for (id, txid) in [(0usize, 0u64), (1, 1)] {
        let meta = &image[id * PAGE_SIZE + 16..];
        let field = |at: usize| u64::from_le_bytes(meta[at..at + 8].try_into().expect("8"));
        assert_eq!(&meta[..4], &0xED0C_DAEDu32.to_le_bytes());
        assert_eq!(field(16), pages - 1, "root bucket page");
        assert_eq!(field(32), 2, "freelist page");
        assert_eq!(field(40), pages, "high water mark");
        assert_eq!(field(48), txid);
        assert_eq!(field(56), super::bbolt_file::fnv1a64(&meta[..56]));
    }
    // Either meta page alone opens the database (bbolt falls back to the other).
    let mut damaged = image.clone();
    damaged[PAGE_SIZE + 20] ^= 1;
    assert_eq!(read_back(&damaged), read_back(&image));
}
