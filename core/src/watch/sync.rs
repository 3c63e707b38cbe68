//! Catching up unsynced watchers from the backend's history, a bounded window of revisions
//! per call, so historical or slow watchers never hold up writes.

use std::collections::BTreeMap;

use qraft_proto::etcdserverpb::WatchResponse;
use qraft_proto::mvccpb::event::EventType;
use qraft_proto::mvccpb::{Event, KeyValue};

use super::hub::{StreamId, WatchHub, header};
use crate::backend::{ReadTxn, Table, Visit};
use crate::error::{Error, Result};
use crate::mvcc::{KeyRange, MvccStore, Revision};

/// A window of history: the events of revisions `from..=to`, in revision order.
struct Window {
    events: Vec<Event>,
    /// The last revision the window covers (revisions without events count as covered).
    to: i64,
}

/// Reads history from revision `from` up to `current`, stopping at the end of the revision in
/// which `max_revisions` revisions with events have been read or `max_bytes` of events
/// (keys and values) have been read, whichever comes first: a revision is never cut, so
/// its events still travel together.
fn history<T: ReadTxn + ?Sized>(
    txn: &T,
    from: i64,
    current: i64,
    max_revisions: i64,
    max_bytes: usize,
) -> Result<Window> {
    let mut events: Vec<Event> = Vec::new();
    let mut failure = None;
    let mut revisions = 0i64;
    let mut bytes = 0usize;
    let mut last_rev = None;
    let mut cut = false;
    let start = Revision::start_key(from);
    let end = Revision::start_key(current.saturating_add(1));
    txn.scan(Table::Key, &start, Some(&end), &mut |rev_key, value| {
        let decoded = Revision::decode(rev_key).and_then(|(rev, tombstone)| {
            Ok((rev.main, tombstone, crate::mvcc::decode_stored_kv(value)?))
        });
        let (main, tombstone, kv) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                failure = Some(e);
                return Visit::Break(());
            }
        };
        if last_rev != Some(main) {
            if revisions >= max_revisions.max(1) || bytes >= max_bytes {
                cut = true;
                return Visit::Break(());
            }
            revisions += 1;
            last_rev = Some(main);
        }
        bytes += kv.key.len() + kv.value.len();
        events.push(if tombstone {
            Event {
                r#type: EventType::Delete as i32,
                kv: Some(KeyValue {
                    key: kv.key,
                    mod_revision: main,
                    ..KeyValue::default()
                }),
                prev_kv: None,
            }
        } else {
            Event {
                r#type: EventType::Put as i32,
                kv: Some(kv),
                prev_kv: None,
            }
        });
        Visit::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    let to = match last_rev {
        Some(last) if cut => last,
        _ => current,
    };
    Ok(Window { events, to })
}

/// The value the key had just before `event`, unless that revision is compacted.
fn previous<T: ReadTxn + ?Sized>(
    store: &MvccStore,
    txn: &T,
    event: &Event,
) -> Result<Option<KeyValue>> {
    let Some(kv) = &event.kv else {
        return Ok(None);
    };
    let before = kv.mod_revision - 1;
    match store.range_keys(
        txn,
        KeyRange::Single(&kv.key),
        before,
        store.current_revision(),
        0,
        false,
    ) {
        Ok(mut found) => Ok(found.kvs.pop()),
        Err(Error::Compacted | Error::FutureRevision) => Ok(None),
        Err(e) => Err(e),
    }
}

impl WatchHub {
    /// One catch-up step: cancels unsynced watchers whose next revision was compacted, then
    /// reads at most `sync_batch_revisions` revisions with events (and about
    /// `sync_batch_bytes`) from the backend starting at the lowest revision an unsynced
    /// watcher (on a stream with room) still needs, and hands each such watcher its events in
    /// one response, while its stream has room. Watchers that reach the current revision
    /// become synced. Returns whether unsynced watchers remain.
    ///
    /// `txn` must see every revision up to `store.current_revision()` (a read transaction
    /// opened after the last commit, or the open write transaction itself): a revision missing
    /// from it would be skipped.
    pub fn sync<T: ReadTxn + ?Sized>(&mut self, store: &MvccStore, txn: &T) -> Result<bool> {
        let compacted: Vec<(StreamId, i64)> = self
            .watchers
            .iter()
            .filter(|(_, w)| !w.synced && w.next_rev < store.compact_revision())
            .map(|(k, _)| *k)
            .collect();
        for (stream, id) in compacted {
            self.remove_watcher((stream, id));
            self.push_compacted(stream, id, store);
        }

        let current = store.current_revision();
        let ready: Vec<(StreamId, i64)> = self
            .watchers
            .iter()
            .filter(|((stream, _), w)| !w.synced && !self.stream_full(*stream))
            .map(|(k, _)| *k)
            .collect();
        let Some(from) = ready
            .iter()
            .filter_map(|k| self.watchers.get(k))
            .map(|w| w.next_rev)
            .min()
        else {
            return Ok(self.unsynced_watchers() > 0);
        };
        let Window { events, to } = if from <= current {
            history(
                txn,
                from,
                current,
                self.config.sync_batch_revisions,
                self.config.sync_batch_bytes,
            )?
        } else {
            Window {
                events: Vec::new(),
                to: current,
            }
        };
        let wants_prev = ready
            .iter()
            .filter_map(|k| self.watchers.get(k))
            .any(|w| w.prev_kv);
        let mut prev_kvs: BTreeMap<usize, Option<KeyValue>> = BTreeMap::new();
        if wants_prev {
            for (i, event) in events.iter().enumerate() {
                prev_kvs.insert(i, previous(store, txn, event)?);
            }
        }

        for (stream, id) in ready {
            // Earlier watchers of this step may have filled the stream: this one keeps its
            // position and goes on in a later step.
            if self.stream_full(stream) {
                continue;
            }
            let Some(w) = self.watchers.get_mut(&(stream, id)) else {
                continue;
            };
            let mut selected = Vec::new();
            for (i, event) in events.iter().enumerate() {
                if super::hub::revision_of(event) < w.next_rev {
                    continue;
                }
                let mut event = event.clone();
                if w.prev_kv {
                    event.prev_kv = prev_kvs.get(&i).cloned().flatten();
                }
                if let Some(chosen) = w.select(&event) {
                    selected.push(chosen);
                }
            }
            w.next_rev = w.next_rev.max(to + 1);
            if w.next_rev > current {
                w.synced = true;
            }
            if selected.is_empty() {
                continue;
            }
            w.events_since_progress = true;
            let fragment = w.fragment;
            let response = WatchResponse {
                header: header(to.max(0)),
                watch_id: id,
                events: selected,
                ..WatchResponse::default()
            };
            self.push(stream, response, fragment);
        }
        Ok(self.unsynced_watchers() > 0)
    }
}
