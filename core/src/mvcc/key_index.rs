//! The in-memory index from user key to the revisions that changed it.
//!
//! Each key keeps a list of *generations*: a generation starts with the put that created the
//! key and ends with the tombstone that deleted it; the last generation is the live (or empty)
//! one. Example: put@2, put@3, delete@4, put@6 gives `[{2,3,4(t)}, {6}]`. The index answers
//! "which revision of key k was visible at revision r" without touching the backend, and is
//! rebuilt from [`Table::Key`](crate::backend::Table::Key) when a store is opened.
//!
//! Invariants: every generation but the last is non-empty and ends with a tombstone; a key
//! whose only generation is empty is removed from the tree.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::revision::Revision;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Generation {
    /// Main revision of the put that created the key in this generation.
    pub created: i64,
    /// Number of puts in this generation, including ones already compacted away.
    pub version: i64,
    /// Revisions still present, ascending; the last one of a closed generation is a tombstone.
    pub revs: Vec<Revision>,
}

/// What the index knows about a key at some revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyAt {
    pub modified: Revision,
    pub created: i64,
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    generations: Vec<Generation>,
}

impl KeyIndex {
    /// Records a put at `rev`. `created`/`version` come from the stored value when restoring
    /// the first surviving revision of a generation (older ones may be compacted away).
    fn put(&mut self, rev: Revision, restored: Option<(i64, i64)>) {
        if self.generations.is_empty() {
            self.generations.push(Generation::default());
        }
        let generation = self
            .generations
            .last_mut()
            .unwrap_or_else(|| unreachable!("pushed above"));
        if generation.revs.is_empty() {
            generation.created = rev.main;
            generation.version = 0;
            if let Some((created, version)) = restored {
                generation.created = created;
                generation.version = version - 1;
            }
        }
        generation.revs.push(rev);
        generation.version += 1;
    }

    /// Records a delete at `rev`: closes the current generation and opens an empty one.
    fn tombstone(&mut self, rev: Revision) {
        self.put(rev, None);
        self.generations.push(Generation::default());
    }

    fn is_empty(&self) -> bool {
        self.generations.iter().all(|g| g.revs.is_empty())
    }

    fn find_generation(&self, at: i64) -> Option<&Generation> {
        let last = self.generations.len().checked_sub(1)?;
        for (i, generation) in self.generations.iter().enumerate().rev() {
            let (Some(first), Some(tail)) = (generation.revs.first(), generation.revs.last())
            else {
                continue;
            };
            if i != last && tail.main <= at {
                // The key was deleted at or before `at`.
                return None;
            }
            if first.main <= at {
                return Some(generation);
            }
        }
        None
    }

    /// The live revision of this key at revision `at`, if the key existed then.
    pub fn get(&self, at: i64) -> Option<KeyAt> {
        let generation = self.find_generation(at)?;
        let n = generation.revs.iter().rposition(|r| r.main <= at)?;
        let newer = (generation.revs.len() - n - 1) as i64;
        Some(KeyAt {
            modified: generation.revs[n],
            created: generation.created,
            version: generation.version - newer,
        })
    }

    /// Drops every revision a read at or after `at` can no longer need, reporting the
    /// revisions `<= at` that stay to `keep`. A tombstone exactly at `at` stays (a watcher
    /// starting at `at` must still see that delete); older tombstones go with their generation.
    fn compact(&mut self, at: i64, keep: &mut impl FnMut(Revision)) {
        let mut first = 0;
        while first + 1 < self.generations.len() {
            match self.generations[first].revs.last() {
                Some(tomb) if tomb.main >= at => break,
                _ => first += 1,
            }
        }
        self.generations.drain(..first);
        if let Some(generation) = self.generations.first_mut()
            && let Some(n) = generation.revs.iter().rposition(|r| r.main <= at)
        {
            keep(generation.revs[n]);
            generation.revs.drain(..n);
        }
    }
}

/// All keys' indexes, ordered by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyIndexTree {
    keys: BTreeMap<Box<[u8]>, KeyIndex>,
}

/// Where a range of keys ends (`etcd`'s `range_end` after normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRange<'a> {
    /// Exactly one key.
    Single(&'a [u8]),
    /// `start <= key < end`; `end = None` means no upper bound.
    Span {
        start: &'a [u8],
        end: Option<&'a [u8]>,
    },
}

impl<'a> KeyRange<'a> {
    /// Interprets etcd's `key`/`range_end` pair: empty end = single key, `"\0"` = every key
    /// `>= key`, otherwise `[key, range_end)`.
    pub fn from_request(key: &'a [u8], range_end: &'a [u8]) -> Self {
        match range_end {
            [] => KeyRange::Single(key),
            [0] => KeyRange::Span {
                start: key,
                end: None,
            },
            end => KeyRange::Span {
                start: key,
                end: Some(end),
            },
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match *self {
            KeyRange::Single(k) => k == key,
            KeyRange::Span { start, end } => start <= key && end.is_none_or(|end| key < end),
        }
    }
}

impl KeyIndexTree {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn put(&mut self, key: &[u8], rev: Revision) {
        match self.keys.get_mut(key) {
            Some(index) => index.put(rev, None),
            None => {
                let mut index = KeyIndex::default();
                index.put(rev, None);
                self.keys.insert(key.into(), index);
            }
        }
    }

    /// Rebuild step for a stored put (revisions arrive in ascending order).
    pub fn restore_put(&mut self, key: &[u8], rev: Revision, created: i64, version: i64) {
        self.keys
            .entry(key.into())
            .or_default()
            .put(rev, Some((created, version)));
    }

    /// Records a delete; a tombstone for a key the index does not know (all its older
    /// revisions were compacted) still opens and closes a generation so it stays visible to
    /// compaction and history.
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) {
        self.keys.entry(key.into()).or_default().tombstone(rev);
    }

    pub fn get(&self, key: &[u8], at: i64) -> Option<KeyAt> {
        self.keys.get(key)?.get(at)
    }

    /// Calls `visit` for every key in `range` that is live at `at`, in key order, until it
    /// returns false.
    pub fn visit(&self, range: KeyRange<'_>, at: i64, visit: &mut dyn FnMut(&[u8], KeyAt) -> bool) {
        match range {
            KeyRange::Single(key) => {
                if let Some(found) = self.get(key, at) {
                    visit(key, found);
                }
            }
            KeyRange::Span { start, end } => {
                if end.is_some_and(|end| end <= start) {
                    return;
                }
                let upper = match end {
                    Some(end) => Bound::Excluded(end),
                    None => Bound::Unbounded,
                };
                for (key, index) in self.keys.range::<[u8], _>((Bound::Included(start), upper)) {
                    if let Some(found) = index.get(at)
                        && !visit(key, found)
                    {
                        break;
                    }
                }
            }
        }
    }

    /// Compacts every key at `at` (see [`KeyIndex::compact`]); returns the set of revisions
    /// `<= at` that must stay in the backend.
    pub fn compact(&mut self, at: i64) -> std::collections::HashSet<Revision> {
        let mut keep = std::collections::HashSet::new();
        self.keys.retain(|_, index| {
            index.compact(at, &mut |rev| {
                keep.insert(rev);
            });
            !index.is_empty()
        });
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    fn sample() -> KeyIndexTree {
        let mut tree = KeyIndexTree::default();
        tree.put(b"foo", rev(2));
        tree.put(b"foo", rev(3));
        tree.tombstone(b"foo", rev(4));
        tree.put(b"foo", rev(6));
        tree
    }

    #[test]
    fn get_follows_generations() {
        let tree = sample();
        assert_eq!(tree.get(b"foo", 1), None);
        let at3 = tree.get(b"foo", 3).unwrap();
        assert_eq!((at3.modified.main, at3.created, at3.version), (3, 2, 2));
        assert_eq!(tree.get(b"foo", 4), None, "deleted at 4");
        assert_eq!(tree.get(b"foo", 5), None);
        let at9 = tree.get(b"foo", 9).unwrap();
        assert_eq!((at9.modified.main, at9.created, at9.version), (6, 6, 1));
    }

    #[test]
    fn compact_keeps_latest_at_or_below_and_tombstone_at_compact_revision() {
        let mut tree = sample();
        let keep = tree.compact(3);
        assert_eq!(keep, [rev(3)].into_iter().collect());
        assert_eq!(tree.get(b"foo", 3).unwrap().version, 2);
        let keep = tree.compact(4);
        assert_eq!(keep, [rev(4)].into_iter().collect(), "tombstone at 4 stays");
        assert_eq!(tree.get(b"foo", 4), None);
        let keep = tree.compact(5);
        assert!(keep.is_empty());
        assert_eq!(tree.get(b"foo", 7).unwrap().created, 6);
        tree.tombstone(b"foo", rev(8));
        let keep = tree.compact(9);
        assert!(keep.is_empty());
        assert_eq!(tree.len(), 0, "fully deleted key leaves the index");
    }

    #[test]
    fn restore_of_compacted_generation_keeps_version_and_create_revision() {
        let mut tree = KeyIndexTree::default();
        tree.restore_put(b"k", rev(10), 4, 3);
        tree.restore_put(b"k", rev(12), 4, 4);
        let at = tree.get(b"k", 11).unwrap();
        assert_eq!((at.created, at.version), (4, 3));
        assert_eq!(tree.get(b"k", 12).unwrap().version, 4);
    }

    #[test]
    fn key_range_from_request() {
        assert_eq!(KeyRange::from_request(b"a", b""), KeyRange::Single(b"a"));
        assert!(KeyRange::from_request(b"a", b"\0").contains(b"zzz"));
        assert!(!KeyRange::from_request(b"a", b"c").contains(b"c"));
    }
}
