//! One write transaction of the key space: every change made through a [`KvWriter`] shares
//! one main revision (`current + 1`), with sub-revisions counting the changes.

use prost::Message;
use qraft_proto::mvccpb::{Event, KeyValue, event::EventType};

use super::key_index::KeyRange;
use super::revision::Revision;
use super::store::{MvccStore, RangeResult, decode_kv};
use crate::backend::{BackendError, Table, WriteTxn};
use crate::error::Result;

/// An open write of the key space (etcd's `TxnWrite`). Reads through it see its own changes.
///
/// The store's current revision moves to the new revision with the first change, so nothing
/// needs to be "ended"; [`KvWriter::finish`] hands back the changes as watch events.
pub struct KvWriter<'a, T: WriteTxn + ?Sized> {
    store: &'a mut MvccStore,
    txn: &'a mut T,
    begin: i64,
    events: Vec<Event>,
}

impl<'a, T: WriteTxn + ?Sized> KvWriter<'a, T> {
    pub fn new(store: &'a mut MvccStore, txn: &'a mut T) -> Self {
        let begin = store.current_revision;
        Self {
            store,
            txn,
            begin,
            events: Vec::new(),
        }
    }

    /// The revision reads see: the new one once something changed, else the current one.
    pub fn read_revision(&self) -> i64 {
        if self.events.is_empty() {
            self.begin
        } else {
            self.begin + 1
        }
    }

    /// The store revision before this write.
    pub fn begin_revision(&self) -> i64 {
        self.begin
    }

    pub(crate) fn range_keys(
        &self,
        range: KeyRange<'_>,
        rev: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<RangeResult> {
        self.store.range_keys(
            &*self.txn,
            range,
            rev,
            self.read_revision(),
            limit,
            count_only,
        )
    }

    /// The live value of `key` as this write sees it.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        Ok(self
            .range_keys(KeyRange::Single(key), 0, 0, false)?
            .kvs
            .pop())
    }

    fn next_revision(&self) -> Revision {
        Revision::new(self.begin + 1, self.events.len() as i64)
    }

    fn read_at(&self, rev: Revision) -> Result<KeyValue> {
        match self.txn.get(Table::Key, &rev.encode(false))? {
            Some(bytes) => Ok(decode_kv(bytes)?),
            None => Err(BackendError::Corrupt {
                table: Table::Key,
                reason: format!("index names revision {rev:?}, backend lacks it"),
            }
            .into()),
        }
    }

    fn record(&mut self, event: Event) {
        self.events.push(event);
        self.store.current_revision = self.begin + 1;
    }

    /// Writes `key = value` (attached to `lease`, 0 = none); returns the new revision.
    pub fn put(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<i64> {
        let rev = self.next_revision();
        let previous = self.store.index.get(key, rev.main);
        let prev_kv = match previous {
            Some(at) => Some(self.read_at(at.modified)?),
            None => None,
        };
        let kv = KeyValue {
            key: key.to_vec().into(),
            create_revision: previous.map_or(rev.main, |at| at.created),
            mod_revision: rev.main,
            version: previous.map_or(1, |at| at.version + 1),
            value: value.to_vec().into(),
            lease,
        };
        // Revisions only grow: the new one sorts after every key of the history.
        self.txn
            .put_at_end(Table::Key, &rev.encode(false), &kv.encode_to_vec())?;
        self.store.index.put(key, rev);
        self.record(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv),
            prev_kv,
        });
        Ok(rev.main)
    }

    /// Deletes every live key in `range`; returns how many were deleted and the revision
    /// (the new one if this write changed anything, else the current one).
    pub fn delete_range(&mut self, range: KeyRange<'_>) -> Result<(i64, i64)> {
        let at = self.begin + 1;
        let mut victims = Vec::new();
        self.store.index.visit(range, at, &mut |key, found| {
            victims.push((key.to_vec(), found.modified));
            true
        });
        for (key, modified) in &victims {
            let prev_kv = self.read_at(*modified)?;
            let rev = self.next_revision();
            let tombstone = KeyValue {
                key: key.clone().into(),
                ..KeyValue::default()
            };
            self.txn
                .put_at_end(Table::Key, &rev.encode(true), &tombstone.encode_to_vec())?;
            self.store.index.tombstone(key, rev);
            self.record(Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    mod_revision: rev.main,
                    ..tombstone
                }),
                prev_kv: Some(prev_kv),
            });
        }
        Ok((victims.len() as i64, self.read_revision()))
    }

    /// Whether this write changed anything so far.
    pub fn changed(&self) -> bool {
        !self.events.is_empty()
    }

    /// Ends the write; returns its changes in order, as watch events with `prev_kv` always
    /// filled in (watchers that did not ask for it get it stripped).
    pub fn finish(self) -> Vec<Event> {
        self.events
    }
}
