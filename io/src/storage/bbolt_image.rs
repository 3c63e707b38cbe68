//! A bbolt database image (the format `bbolt_file.rs` reads) produced as a stream of pages in
//! file order, from buckets that can be scanned more than once with the same contents (one
//! LMDB read transaction), with memory bounded by one page per tree level: never the whole
//! image, never a level's list of keys.
//!
//! # Layout
//!
//! ```text
//! page 0, 1      meta pages (txid 0 and 1, the same state)
//! page 2         an empty freelist: every page is in use
//! then           for each bucket in name order: its leaf pages in key order, then each
//!                branch level bottom-up, the root (the top level's only page) last
//! last page(s)   the root bucket: one leaf listing the named buckets
//! ```
//!
//! An empty bucket has no pages: it is stored inline in the root bucket, as bbolt does.
//!
//! # Two kinds of pass
//!
//! The meta pages come first but name the root bucket's page, which comes last, and a branch
//! page names its children's page ids. So [`BboltImage::new`] first runs a *layout* pass per
//! bucket that packs every level counting sizes only (a page's span depends only on the sizes
//! of its elements) and fixes where each level starts. Then, while streaming, each level of
//! each bucket costs one *emitting* pass: the bucket is scanned again and packed into the same
//! pages from the leaves up to that level, and only that level's pages are kept and sent. A
//! tree of height h is thus scanned h + 1 times; the branch levels are about a hundredth of
//! the leaves each, and the passes read LMDB's memory map without copying.

use std::ops::ControlFlow;

use super::bbolt_page::{
    ClosedPage, MetaFields, PAGE_SIZE, PagePacker, Payload, bucket_value, empty_freelist_page,
    meta_page,
};
use super::error::{Result, StorageError};

/// Called with each key and value of a scan; breaks to pause it.
pub(crate) type PairVisitor<'v> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'v;

/// Named buckets of plain key-value pairs that can be scanned again with the same contents.
pub(crate) trait BucketSource {
    /// The bucket names, in strictly increasing byte order.
    fn names(&self) -> &[&'static [u8]];

    /// Calls `visit` with the pairs of bucket number `bucket` whose key is greater than `after`
    /// (every pair when `None`), in strictly increasing key order, until it breaks.
    fn scan(&self, bucket: usize, after: Option<&[u8]>, visit: &mut PairVisitor<'_>) -> Result<()>;
}

const FIRST_TREE_PAGE: u64 = 3;

/// Where one level of a bucket's tree lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LevelPlan {
    first_id: u64,
    pages: u64,
    span: u64,
}

/// One bucket's tree: its levels from the leaves up (empty for an empty bucket).
struct TreePlan {
    levels: Vec<LevelPlan>,
}

impl TreePlan {
    /// The bucket's root page, 0 when it is stored inline.
    fn root(&self) -> u64 {
        self.levels.last().map_or(0, |top| top.first_id)
    }
}

struct Level {
    packer: PagePacker,
    next_id: u64,
    pages: u64,
}

/// Packs one bucket's pairs into tree pages, level by level as pages close.
struct TreeBuilder {
    levels: Vec<Level>,
    /// Where each level's pages start; empty in a layout pass (ids do not change sizes).
    bases: Vec<u64>,
    /// The level whose pages are kept; `None` in a layout pass.
    emit: Option<usize>,
    /// Pages of the emitted level not yet taken.
    out: Vec<u8>,
}

impl TreeBuilder {
    fn layout() -> Self {
        TreeBuilder {
            levels: Vec::new(),
            bases: Vec::new(),
            emit: None,
            out: Vec::new(),
        }
    }

    fn emitting(plan: &TreePlan, level: usize) -> Self {
        TreeBuilder {
            levels: Vec::new(),
            bases: plan.levels.iter().map(|l| l.first_id).collect(),
            emit: Some(level),
            out: Vec::new(),
        }
    }

    fn push(&mut self, level: usize, key: &[u8], payload: Payload<'_>) {
        if level == self.levels.len() {
            self.levels.push(Level {
                packer: PagePacker::new(level > 0, self.emit == Some(level)),
                next_id: self.bases.get(level).copied().unwrap_or(0),
                pages: 0,
            });
        }
        if !self.levels[level].packer.fits(key, &payload) {
            self.close(level);
        }
        self.levels[level].packer.push(key, payload);
    }

    fn close(&mut self, level: usize) {
        let current = &mut self.levels[level];
        let id = current.next_id;
        let ClosedPage {
            first_key,
            span,
            bytes,
        } = current.packer.close(id);
        current.next_id += span;
        current.pages += 1;
        if let Some(bytes) = bytes {
            self.out.extend_from_slice(&bytes);
        }
        // An emitting pass needs nothing above the level it emits.
        if self.emit.is_none_or(|emit| level < emit) {
            self.push(level + 1, &first_key, Payload::Child(id));
        }
    }

    /// Closes the open pages bottom-up after the last pair. In a layout pass, returns the
    /// levels up to the first one that ends with a single page: the root.
    fn finish(&mut self) -> Vec<LevelPlan> {
        let mut plans = Vec::new();
        let mut level = 0;
        while level < self.levels.len() {
            if !self.levels[level].packer.is_empty() {
                self.close(level);
            }
            let done = &self.levels[level];
            let base = self.bases.get(level).copied().unwrap_or(0);
            plans.push(LevelPlan {
                first_id: base,
                pages: done.pages,
                span: done.next_id - base,
            });
            if self.emit == Some(level) || (self.emit.is_none() && done.pages == 1) {
                break;
            }
            level += 1;
        }
        plans
    }
}

/// The state of the stream.
enum Cursor {
    Head,
    Tree {
        bucket: usize,
        level: usize,
        builder: Box<TreeBuilder>,
        /// The last key fed to the builder, when the pass paused after it.
        after: Option<Vec<u8>>,
    },
    RootBucket,
    Done,
}

/// A bbolt image of `S`'s buckets, produced in chunks.
pub(crate) struct BboltImage<S> {
    source: S,
    plans: Vec<TreePlan>,
    root_page: u64,
    pages: u64,
    cursor: Cursor,
}

impl<S: BucketSource> BboltImage<S> {
    /// Lays the image out (one sizes-only pass over every bucket).
    pub fn new(source: S) -> Result<Self> {
        let mut plans = Vec::with_capacity(source.names().len());
        let mut next = FIRST_TREE_PAGE;
        for bucket in 0..source.names().len() {
            let mut builder = TreeBuilder::layout();
            source.scan(bucket, None, &mut |key, value| {
                builder.push(0, key, Payload::Value(value));
                ControlFlow::Continue(())
            })?;
            let mut levels = builder.finish();
            for level in &mut levels {
                level.first_id = next;
                next += level.span;
            }
            plans.push(TreePlan { levels });
        }
        let root_page = next;
        let root_span = root_bucket_page(&source, &plans, root_page)?.len() / PAGE_SIZE;
        Ok(BboltImage {
            source,
            plans,
            root_page,
            pages: root_page + root_span as u64,
            cursor: Cursor::Head,
        })
    }

    /// The image's exact length in bytes (a whole number of pages).
    pub fn len(&self) -> u64 {
        self.pages * PAGE_SIZE as u64
    }

    /// The next chunk of about `target_bytes` (whole pages; a chunk ends after the page that
    /// reaches the target), or `None` after the last one.
    pub fn next_chunk(&mut self, target_bytes: usize) -> Result<Option<Vec<u8>>> {
        let mut chunk = Vec::new();
        while chunk.len() < target_bytes {
            match std::mem::replace(&mut self.cursor, Cursor::Done) {
                Cursor::Head => {
                    for id in 0..2 {
                        let meta = MetaFields {
                            root: self.root_page,
                            freelist: 2,
                            pages: self.pages,
                            txid: id,
                        };
                        chunk.extend_from_slice(&meta_page(id, &meta));
                    }
                    chunk.extend_from_slice(&empty_freelist_page(2));
                    self.cursor = self.next_tree(0, 0);
                }
                Cursor::Tree {
                    bucket,
                    level,
                    mut builder,
                    after,
                } => {
                    let wanted = target_bytes - chunk.len();
                    let mut paused_after = None;
                    self.source
                        .scan(bucket, after.as_deref(), &mut |key, value| {
                            builder.push(0, key, Payload::Value(value));
                            if builder.out.len() >= wanted {
                                paused_after = Some(key.to_vec());
                                return ControlFlow::Break(());
                            }
                            ControlFlow::Continue(())
                        })?;
                    if paused_after.is_some() {
                        chunk.append(&mut builder.out);
                        self.cursor = Cursor::Tree {
                            bucket,
                            level,
                            builder,
                            after: paused_after,
                        };
                        continue;
                    }
                    let emitted = builder.finish();
                    if emitted.last() != self.plans[bucket].levels.get(level) {
                        return Err(StorageError::Corrupt {
                            what: "bbolt image",
                            detail: format!(
                                "bucket {bucket} level {level}: {emitted:?} in the emitting pass, \
                                 {:?} in the layout",
                                self.plans[bucket].levels.get(level)
                            ),
                        });
                    }
                    chunk.append(&mut builder.out);
                    self.cursor = self.next_tree(bucket, level + 1);
                }
                Cursor::RootBucket => {
                    chunk.extend(root_bucket_page(&self.source, &self.plans, self.root_page)?);
                    self.cursor = Cursor::Done;
                }
                Cursor::Done => break,
            }
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    /// The pass for `level` of `bucket`, or the next bucket's first, or the root bucket.
    fn next_tree(&self, mut bucket: usize, mut level: usize) -> Cursor {
        while let Some(plan) = self.plans.get(bucket) {
            if level < plan.levels.len() {
                return Cursor::Tree {
                    bucket,
                    level,
                    builder: Box::new(TreeBuilder::emitting(plan, level)),
                    after: None,
                };
            }
            bucket += 1;
            level = 0;
        }
        Cursor::RootBucket
    }
}

/// The root bucket's page: one leaf element per named bucket.
fn root_bucket_page<S: BucketSource>(source: &S, plans: &[TreePlan], id: u64) -> Result<Vec<u8>> {
    let mut packer = PagePacker::new(false, true);
    for (name, plan) in source.names().iter().zip(plans) {
        let value = bucket_value(plan.root());
        let payload = Payload::Bucket(&value);
        if !packer.fits(name, &payload) {
            return Err(StorageError::Corrupt {
                what: "bbolt image",
                detail: "more bucket names than one root page holds".into(),
            });
        }
        packer.push(name, payload);
    }
    Ok(packer.close(id).bytes.unwrap_or_default())
}
