//! Randomised check of the watch guarantees: seeded sequences of writes, compactions, watch
//! creations (past, current and future start revisions, resumptions at last seen + 1), slow
//! streams (held queues, and shells reporting random room, sometimes none), catch-up steps and
//! progress requests. At every progress response
//! and at the end, each watcher's received events are compared with the ground truth (the
//! events the store reported for every write):
//! ordered, unique and reliable (exactly the expected events, in order), atomic (all events
//! of a revision in one response or one run of fragments), bookmarkable (a progress
//! notification at revision R comes after every event <= R), correct prev_kv and is-create,
//! and compaction cancels only a watcher that lags behind the compaction.

// `QRAFT_WATCH_SEEDS` lengthens the run; the env ban is for the library.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeSet;

use qraft_core::backend::{Backend, MemBackend, WriteTxn};
use qraft_core::mvcc::{MvccStore, NoLeases};
use qraft_core::watch::{StreamId, WatchConfig, WatchHub};
use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::watch_request::RequestUnion;
use qraft_proto::etcdserverpb::{
    CompactionRequest, DeleteRangeRequest, PutRequest, RequestOp, TxnRequest, WatchCreateRequest,
    WatchProgressRequest, WatchRequest, WatchResponse,
};
use qraft_proto::mvccpb::Event;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const KEYS: [&str; 5] = ["a", "a1", "a2", "b", "c"];

struct Watcher {
    stream: StreamId,
    id: i64,
    key: Vec<u8>,
    /// None = single key; Some(None) = all keys from `key`; Some(Some(e)) = [key, e).
    end: Option<Option<Vec<u8>>>,
    start: i64,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    received: Vec<Event>,
    /// Events of the current run of fragments.
    group: Vec<Event>,
    compacted: Option<i64>,
    /// Whether its `created` response was received (a stream-wide progress response only
    /// speaks for watchers created before it).
    created_seen: bool,
}

impl Watcher {
    fn wants(&self, ev: &Event) -> bool {
        let kv = ev.kv.as_ref().unwrap();
        let in_range = match &self.end {
            None => kv.key.as_ref() == self.key.as_slice(),
            Some(None) => kv.key.as_ref() >= self.key.as_slice(),
            Some(Some(end)) => {
                kv.key.as_ref() >= self.key.as_slice() && kv.key.as_ref() < end.as_slice()
            }
        };
        let is_put = ev.r#type == 0;
        in_range
            && kv.mod_revision >= self.start
            && !(is_put && self.no_put)
            && (is_put || !self.no_delete)
    }

    fn expected<'a>(&self, truth: &'a [Event]) -> Vec<&'a Event> {
        truth.iter().filter(|e| self.wants(e)).collect()
    }
}

struct World {
    rng: SmallRng,
    backend: MemBackend,
    store: MvccStore,
    hub: WatchHub,
    streams: Vec<StreamId>,
    held: BTreeSet<StreamId>,
    truth: Vec<Event>,
    watchers: Vec<Watcher>,
    next_id: i64,
}

fn rev(ev: &Event) -> i64 {
    ev.kv.as_ref().unwrap().mod_revision
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let config = WatchConfig {
            progress_interval_ticks: 5,
            max_response_bytes: rng.random_range(60..400),
            max_queued_responses: rng.random_range(1..5),
            max_queued_bytes: rng.random_range(1..400),
            sync_batch_revisions: rng.random_range(1..6),
            sync_batch_bytes: rng.random_range(1..120),
        };
        let backend = MemBackend::new();
        let store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
        let mut hub = WatchHub::new(config);
        let streams = vec![hub.open_stream(), hub.open_stream()];
        Self {
            rng,
            backend,
            store,
            hub,
            streams,
            held: BTreeSet::new(),
            truth: Vec::new(),
            watchers: Vec::new(),
            next_id: 1,
        }
    }

    fn key(&mut self) -> Vec<u8> {
        KEYS[self.rng.random_range(0..KEYS.len())]
            .as_bytes()
            .to_vec()
    }

    fn put_op(&mut self, key: Vec<u8>) -> RequestOp {
        let len = self.rng.random_range(0..30);
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.into(),
                value: vec![b'v'; len].into(),
                ..Default::default()
            })),
        }
    }

    fn write(&mut self) {
        let request = match self.rng.random_range(0..4) {
            0 | 1 => {
                let key = self.key();
                self.put_op(key)
            }
            2 => {
                let key = self.key();
                let range_end = if self.rng.random_bool(0.5) {
                    b"b".to_vec()
                } else {
                    Vec::new()
                };
                RequestOp {
                    request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                        key: key.into(),
                        range_end: range_end.into(),
                        prev_kv: false,
                    })),
                }
            }
            _ => {
                let keys: BTreeSet<Vec<u8>> = (0..3).map(|_| self.key()).collect();
                let success = keys.into_iter().map(|k| self.put_op(k)).collect();
                RequestOp {
                    request: Some(Request::RequestTxn(TxnRequest {
                        success,
                        ..Default::default()
                    })),
                }
            }
        };
        let mut txn = self.backend.write_txn().unwrap();
        let events = match request.request {
            Some(Request::RequestPut(r)) => self.store.put(&mut txn, &r, &NoLeases).unwrap().events,
            Some(Request::RequestDeleteRange(r)) => {
                self.store.delete_range(&mut txn, &r).unwrap().events
            }
            Some(Request::RequestTxn(r)) => self.store.txn(&mut txn, &r, &NoLeases).unwrap().events,
            _ => unreachable!(),
        };
        txn.commit().unwrap();
        self.truth.extend(events.iter().cloned());
        self.hub.notify(&events);
    }

    fn watch(&mut self) {
        let stream = self.streams[self.rng.random_range(0..2)];
        let current = self.store.current_revision();
        let resume = self.rng.random_bool(0.3) && !self.watchers.is_empty();
        let (key, end, start) = if resume {
            // Resume an existing watcher right after the last event it received.
            let w = &self.watchers[self.rng.random_range(0..self.watchers.len())];
            let start = w.received.last().map_or(w.start, |e| rev(e) + 1);
            (w.key.clone(), w.end.clone(), start)
        } else {
            let key = self.key();
            let end = match self.rng.random_range(0..3) {
                0 => None,
                1 => Some(None),
                _ => Some(Some(b"b".to_vec())),
            };
            let start = match self.rng.random_range(0..3) {
                0 => 0,
                1 => self.rng.random_range(1..=current + 3),
                _ => (current - self.rng.random_range(0..6)).max(1),
            };
            (key, end, start)
        };
        if let Some(Some(e)) = &end
            && key >= *e
        {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let create = WatchCreateRequest {
            key: key.clone().into(),
            range_end: match &end {
                None => Vec::new(),
                Some(None) => vec![0],
                Some(Some(e)) => e.clone(),
            }
            .into(),
            start_revision: start,
            progress_notify: self.rng.random_bool(0.5),
            filters: if self.rng.random_bool(0.1) {
                vec![self.rng.random_range(0..2)]
            } else {
                Vec::new()
            },
            prev_kv: self.rng.random_bool(0.5),
            watch_id: id,
            fragment: self.rng.random_bool(0.5),
        };
        let watcher = Watcher {
            stream,
            id,
            key,
            end,
            start: if start == 0 { current + 1 } else { start },
            prev_kv: create.prev_kv,
            no_put: create.filters.contains(&0),
            no_delete: create.filters.contains(&1),
            received: Vec::new(),
            group: Vec::new(),
            compacted: None,
            created_seen: false,
        };
        self.watchers.push(watcher);
        self.hub.request(
            stream,
            WatchRequest {
                request_union: Some(RequestUnion::CreateRequest(create)),
            },
            &self.store,
        );
    }

    fn check_bookmark(&self, stream: StreamId, at: i64, context: &str) {
        for w in self
            .watchers
            .iter()
            .filter(|w| w.stream == stream && w.compacted.is_none() && w.created_seen)
        {
            let want: Vec<&Event> = w
                .expected(&self.truth)
                .into_iter()
                .filter(|e| rev(e) <= at)
                .collect();
            let got: Vec<&Event> = w.received.iter().filter(|e| rev(e) <= at).collect();
            assert_eq!(
                got.len(),
                want.len(),
                "{context}: progress at {at} ahead of watcher {}",
                w.id
            );
        }
    }

    fn handle(&mut self, stream: StreamId, r: WatchResponse, context: &str) {
        let at = r.header.as_ref().map_or(0, |h| h.revision);
        if r.watch_id == -1 {
            assert!(!r.created, "{context}: refused create {r:?}");
            self.check_bookmark(stream, at, context);
            return;
        }
        let Some(w) = self
            .watchers
            .iter_mut()
            .find(|w| w.stream == stream && w.id == r.watch_id)
        else {
            panic!("{context}: response for unknown watcher {r:?}");
        };
        if r.compact_revision != 0 {
            assert!(r.canceled);
            w.compacted = Some(r.compact_revision);
            return;
        }
        if r.created {
            w.created_seen = true;
            return;
        }
        if r.canceled {
            return;
        }
        if r.events.is_empty() {
            // Periodic progress for this watcher: nothing <= at may be missing.
            let id = w.id;
            let want = w
                .expected(&self.truth)
                .into_iter()
                .filter(|e| rev(e) <= at)
                .count();
            let got = w.received.iter().filter(|e| rev(e) <= at).count();
            assert_eq!(
                got,
                want,
                "{context}: progress at {at} ahead of watcher {id} (start {}, received {:?}, truth {:?})",
                w.start,
                w.received.iter().map(rev).collect::<Vec<_>>(),
                w.expected(&self.truth)
                    .iter()
                    .map(|e| rev(e))
                    .collect::<Vec<_>>()
            );
            return;
        }
        w.group.extend(r.events.iter().cloned());
        w.received.extend(r.events);
        if r.fragment {
            return;
        }
        let group = std::mem::take(&mut w.group);
        let revs: BTreeSet<i64> = group.iter().map(rev).collect();
        for revision in revs {
            let want = w
                .expected(&self.truth)
                .into_iter()
                .filter(|e| rev(e) == revision)
                .count();
            let got = group.iter().filter(|e| rev(e) == revision).count();
            assert_eq!(
                got, want,
                "{context}: revision {revision} split across responses for watcher {}",
                w.id
            );
        }
    }

    fn drain(&mut self, context: &str) {
        for stream in self.streams.clone() {
            if self.held.contains(&stream) {
                continue;
            }
            // A slow reader: its shell has room for a random number of bytes, sometimes none.
            let room = match self.rng.random_range(0..4) {
                0 => 0,
                1 => self.rng.random_range(1..200),
                _ => usize::MAX,
            };
            for r in self.hub.take_responses(stream, room) {
                self.handle(stream, r, context);
            }
        }
    }

    fn sync(&mut self) {
        let read = self.backend.read_txn().unwrap();
        self.hub.sync(&self.store, &read).unwrap();
    }

    fn step(&mut self, context: &str) {
        match self.rng.random_range(0..100) {
            0..=44 => self.write(),
            45..=59 => self.watch(),
            60..=74 => self.sync(),
            75..=84 => {
                let stream = self.streams[self.rng.random_range(0..2)];
                if !self.held.remove(&stream) {
                    self.held.insert(stream);
                }
            }
            85..=89 => {
                let stream = self.streams[self.rng.random_range(0..2)];
                let request = WatchRequest {
                    request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
                };
                self.hub.request(stream, request, &self.store);
            }
            90..=95 => self.hub.tick(&self.store),
            _ => {
                let low = self.store.compact_revision().max(0) + 1;
                let high = self.store.current_revision();
                if low <= high {
                    let revision = self.rng.random_range(low..=high);
                    let mut txn = self.backend.write_txn().unwrap();
                    self.store
                        .compact(
                            &mut txn,
                            &CompactionRequest {
                                revision,
                                physical: false,
                            },
                        )
                        .unwrap();
                    txn.commit().unwrap();
                }
            }
        }
        self.drain(context);
    }

    fn finish(&mut self, context: &str) {
        self.held.clear();
        for _ in 0..10_000 {
            self.drain(context);
            if self.hub.unsynced_watchers() == 0 && self.hub.streams_with_responses().is_empty() {
                break;
            }
            self.sync();
        }
        assert_eq!(
            self.hub.unsynced_watchers(),
            0,
            "{context}: watchers never caught up"
        );
        let final_compact = self.store.compact_revision();
        for w in &self.watchers {
            let want = w.expected(&self.truth);
            if let Some(compact) = w.compacted {
                assert!(w.received.len() <= want.len());
                assert!(
                    want.get(w.received.len())
                        .is_none_or(|next| rev(next) < compact)
                        || w.received.last().is_none_or(|last| rev(last) < compact),
                    "{context}: watcher {} canceled at {compact} but was not behind it",
                    w.id
                );
            } else {
                assert_eq!(
                    w.received.len(),
                    want.len(),
                    "{context}: watcher {} lost or repeated events",
                    w.id
                );
            }
            for (got, truth) in w.received.iter().zip(&want) {
                assert_eq!(got.r#type, truth.r#type, "{context}: watcher {}", w.id);
                assert_eq!(
                    got.kv, truth.kv,
                    "{context}: watcher {} got a wrong event",
                    w.id
                );
                if !w.prev_kv {
                    assert_eq!(got.prev_kv, None);
                } else if got.prev_kv != truth.prev_kv {
                    assert!(
                        got.prev_kv.is_none() && rev(truth) - 1 < final_compact,
                        "{context}: watcher {} wrong prev_kv {:?} vs {:?}",
                        w.id,
                        got.prev_kv,
                        truth.prev_kv
                    );
                }
            }
        }
    }
}

#[test]
fn watch_guarantees_hold_under_random_schedules() {
    let seeds: u64 = std::env::var("QRAFT_WATCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut checked_events = 0;
    for seed in 0..seeds {
        let mut world = World::new(seed);
        for step in 0..300 {
            world.step(&format!("seed {seed} step {step}"));
        }
        world.finish(&format!("seed {seed} end"));
        checked_events += world
            .watchers
            .iter()
            .map(|w| w.received.len())
            .sum::<usize>();
    }
    assert!(
        checked_events > 1000,
        "too few events checked: {checked_events}"
    );
}
