//! Streams, watchers and the live path: creating and cancelling watchers, progress, and
//! delivering the events of each applied write to synced watchers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use prost::Message;
use qraft_proto::etcdserverpb::watch_create_request::FilterType;
use qraft_proto::etcdserverpb::watch_request::RequestUnion;
use qraft_proto::etcdserverpb::{
    ResponseHeader, WatchCancelRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};
use qraft_proto::mvccpb::Event;
use qraft_proto::mvccpb::event::EventType;

use super::fragment::fragments;
use super::{ERR_DUPLICATE_ID, ERR_EMPTY_RANGE};
use crate::mvcc::validate::MAX_REQUEST_BYTES;
use crate::mvcc::{KeyRange, MvccStore};

/// Identifies one client watch stream (chosen by the hub).
pub type StreamId = u64;

/// Watch id etcd uses for stream-wide answers (progress) and refused creates.
const INVALID_WATCH_ID: i64 = -1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// Ticks between periodic progress notifications (etcd: 10 minutes).
    pub progress_interval_ticks: u64,
    /// Responses at or above this size are split for watchers that asked for fragments.
    pub max_response_bytes: usize,
    /// Responses a stream may have queued; beyond it the stream's watchers stop receiving live
    /// events and catch up from the backend once the queue drains.
    pub max_queued_responses: usize,
    /// Encoded bytes a stream may have queued, the same way: the stream is full once its queue
    /// reaches this size (one response may overshoot it, so the bound is this plus one
    /// response, and a response is at most one catch-up batch or one revision's events).
    pub max_queued_bytes: usize,
    /// Revisions that have events read from the backend per [`WatchHub::sync`] call (etcd's
    /// `watchBatchMaxRevs`, 1,000).
    pub sync_batch_revisions: i64,
    /// Encoded bytes of events after which a [`WatchHub::sync`] read stops at the end of the
    /// revision it is in, so one catch-up batch stays small whatever the values' sizes.
    pub sync_batch_bytes: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            progress_interval_ticks: 6000,
            max_response_bytes: MAX_REQUEST_BYTES,
            max_queued_responses: 1024,
            max_queued_bytes: 256 * 1024,
            sync_batch_revisions: 1000,
            sync_batch_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stream {
    next_watch_id: i64,
    /// Queued responses with their encoded sizes.
    queue: VecDeque<(WatchResponse, usize)>,
    /// Encoded size of `queue`.
    queued_bytes: usize,
}

/// The watched keys: `end = None` is a single key, `Some(None)` every key from `key`.
#[derive(Debug, Clone)]
pub(crate) struct Watcher {
    key: Vec<u8>,
    end: Option<Option<Vec<u8>>>,
    /// The lowest revision whose events this watcher has not been given yet.
    pub next_rev: i64,
    /// Synced watchers get live events from `notify`; others catch up in `sync`.
    pub synced: bool,
    pub prev_kv: bool,
    no_put: bool,
    no_delete: bool,
    pub progress_notify: bool,
    pub fragment: bool,
    /// Whether events were queued since the last periodic progress notification.
    pub events_since_progress: bool,
    /// The user who created it (`None` with auth disabled): its read permission on the
    /// watched keys is checked again whenever the auth store changes (`super::access`).
    pub user: Option<String>,
}

impl Watcher {
    /// The watched range as the create request gave it (`key`, `range_end`), for the
    /// permission check.
    pub fn requested_range(&self) -> (&[u8], &[u8]) {
        let end: &[u8] = match &self.end {
            None => &[],
            Some(None) => &[0],
            Some(Some(end)) => end,
        };
        (&self.key, end)
    }

    fn range(&self) -> KeyRange<'_> {
        match &self.end {
            None => KeyRange::Single(&self.key),
            Some(end) => KeyRange::Span {
                start: &self.key,
                end: end.as_deref(),
            },
        }
    }

    /// The event as this watcher should see it, if it wants it at all.
    pub fn select(&self, event: &Event) -> Option<Event> {
        let kv = event.kv.as_ref()?;
        if !self.range().contains(&kv.key) {
            return None;
        }
        let is_put = event.r#type == EventType::Put as i32;
        if (is_put && self.no_put) || (!is_put && self.no_delete) {
            return None;
        }
        let mut event = event.clone();
        if !self.prev_kv {
            event.prev_kv = None;
        }
        Some(event)
    }
}

/// All watch streams and watchers of a member. See the module documentation.
#[derive(Debug, Default)]
pub struct WatchHub {
    pub(crate) config: WatchConfig,
    pub(crate) streams: BTreeMap<StreamId, Stream>,
    next_stream: StreamId,
    pub(crate) watchers: BTreeMap<(StreamId, i64), Watcher>,
    /// Single-key watchers by key, so a write only visits the watchers of its keys...
    by_key: BTreeMap<Vec<u8>, BTreeSet<(StreamId, i64)>>,
    /// ...plus every range watcher.
    ranged: BTreeSet<(StreamId, i64)>,
    ticks: u64,
    /// The auth store's (enabled, revision) the watchers were last checked against.
    pub(crate) auth_checked: Option<(bool, u64)>,
}

pub(crate) fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..ResponseHeader::default()
    })
}

impl WatchHub {
    pub fn new(config: WatchConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    pub fn open_stream(&mut self) -> StreamId {
        self.next_stream += 1;
        self.streams.insert(self.next_stream, Stream::default());
        self.next_stream
    }

    /// Drops the stream, its watchers and anything still queued for it.
    pub fn close_stream(&mut self, stream: StreamId) {
        self.streams.remove(&stream);
        let ids: Vec<(StreamId, i64)> = self
            .watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for id in ids {
            self.remove_watcher(id);
        }
    }

    fn insert_watcher(&mut self, id: (StreamId, i64), watcher: Watcher) {
        match &watcher.end {
            None => {
                self.by_key
                    .entry(watcher.key.clone())
                    .or_default()
                    .insert(id);
            }
            Some(_) => {
                self.ranged.insert(id);
            }
        }
        self.watchers.insert(id, watcher);
    }

    pub(crate) fn remove_watcher(&mut self, id: (StreamId, i64)) -> Option<Watcher> {
        let watcher = self.watchers.remove(&id)?;
        if watcher.end.is_some() {
            self.ranged.remove(&id);
        } else if let Some(ids) = self.by_key.get_mut(&watcher.key) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_key.remove(&watcher.key);
            }
        }
        Some(watcher)
    }

    /// Responses queued for `stream`, oldest first, as many as fit in `room` encoded bytes
    /// (the shell's report of how much more the stream's connection can take; at least one
    /// response when `room` is not 0, so a response larger than any room still goes). With no
    /// room nothing is taken: the queue fills up, and once it is full the stream's watchers
    /// stop receiving live events and catch up later from the backend, at the stream's pace.
    pub fn take_responses(&mut self, stream: StreamId, room: usize) -> Vec<WatchResponse> {
        let Some(state) = self.streams.get_mut(&stream) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        let mut left = room;
        while left > 0 {
            let Some(&(_, size)) = state.queue.front() else {
                break;
            };
            if size > left && !taken.is_empty() {
                break;
            }
            let Some((response, _)) = state.queue.pop_front() else {
                break;
            };
            state.queued_bytes = state.queued_bytes.saturating_sub(size);
            left = left.saturating_sub(size);
            taken.push(response);
        }
        taken
    }

    /// Every response queued for `stream` (a shell without its own bound: tests).
    pub fn take_all_responses(&mut self, stream: StreamId) -> Vec<WatchResponse> {
        self.take_responses(stream, usize::MAX)
    }

    /// Whether `stream` has responses queued.
    pub fn has_responses(&self, stream: StreamId) -> bool {
        self.streams
            .get(&stream)
            .is_some_and(|s| !s.queue.is_empty())
    }

    /// Streams that have responses queued.
    pub fn streams_with_responses(&self) -> Vec<StreamId> {
        self.streams
            .iter()
            .filter(|(_, s)| !s.queue.is_empty())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Number of watchers not yet caught up (for metrics and tests).
    pub fn unsynced_watchers(&self) -> usize {
        self.watchers.values().filter(|w| !w.synced).count()
    }

    /// Makes every watcher catch up from the backend through [`WatchHub::sync`], keeping
    /// its position. For when the key space changed without `notify` (a snapshot from the
    /// leader was installed, the store was reopened): nothing the watchers have not seen can
    /// be skipped, and if that history is gone they get the compacted answer.
    pub fn resync(&mut self) {
        for w in self.watchers.values_mut() {
            w.synced = false;
        }
    }

    pub fn watchers(&self) -> usize {
        self.watchers.len()
    }

    pub(crate) fn stream_full(&self, stream: StreamId) -> bool {
        self.streams.get(&stream).is_none_or(|s| {
            s.queue.len() >= self.config.max_queued_responses
                || s.queued_bytes >= self.config.max_queued_bytes
        })
    }

    pub(crate) fn push(&mut self, stream: StreamId, response: WatchResponse, fragment: bool) {
        let Some(state) = self.streams.get_mut(&stream) else {
            return;
        };
        let parts = if fragment {
            fragments(response, self.config.max_response_bytes)
        } else {
            vec![response]
        };
        for part in parts {
            let size = part.encoded_len();
            state.queued_bytes += size;
            state.queue.push_back((part, size));
        }
    }

    /// Handles one request of the stream with no user behind it, for a member without auth
    /// (see [`WatchHub::request_as`] for the checked entry). Unknown streams are ignored.
    pub fn request(&mut self, stream: StreamId, request: WatchRequest, store: &MvccStore) {
        self.request_by(stream, request, store, None);
    }

    /// `request` after its permission was checked: creates are made for `user`.
    pub(crate) fn request_by(
        &mut self,
        stream: StreamId,
        request: WatchRequest,
        store: &MvccStore,
        user: Option<String>,
    ) {
        if !self.streams.contains_key(&stream) {
            return;
        }
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(stream, create, store, user),
            Some(RequestUnion::CancelRequest(WatchCancelRequest { watch_id }))
                if self.remove_watcher((stream, watch_id)).is_some() =>
            {
                let response = WatchResponse {
                    header: header(store.current_revision()),
                    watch_id,
                    canceled: true,
                    ..WatchResponse::default()
                };
                self.push(stream, response, false);
            }
            // Cancelling an unknown watcher gets no answer, as in etcd.
            Some(RequestUnion::CancelRequest(_)) => {}
            Some(RequestUnion::ProgressRequest(_)) => self.progress_all(stream, store),
            None => {}
        }
    }

    pub(crate) fn refuse(&mut self, stream: StreamId, store: &MvccStore, reason: &str) {
        let response = WatchResponse {
            header: header(store.current_revision()),
            watch_id: INVALID_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason: reason.to_owned(),
            ..WatchResponse::default()
        };
        self.push(stream, response, false);
    }

    fn create(
        &mut self,
        stream: StreamId,
        create: WatchCreateRequest,
        store: &MvccStore,
        user: Option<String>,
    ) {
        let current = store.current_revision();
        let key = if create.key.is_empty() {
            vec![0]
        } else {
            create.key.to_vec()
        };
        let end = match create.range_end.as_ref() {
            [] => None,
            [0] => Some(None),
            end => Some(Some(end.to_vec())),
        };
        if let Some(Some(end)) = &end
            && key.as_slice() >= end.as_slice()
        {
            return self.refuse(stream, store, ERR_EMPTY_RANGE);
        }
        let id = if create.watch_id == 0 {
            let Some(state) = self.streams.get_mut(&stream) else {
                return;
            };
            while self.watchers.contains_key(&(stream, state.next_watch_id)) {
                state.next_watch_id += 1;
            }
            state.next_watch_id += 1;
            state.next_watch_id - 1
        } else if self.watchers.contains_key(&(stream, create.watch_id)) {
            return self.refuse(stream, store, ERR_DUPLICATE_ID);
        } else {
            create.watch_id
        };
        let start = create.start_revision;
        let synced = start == 0 || start > current;
        let watcher = Watcher {
            key,
            end,
            next_rev: if synced {
                start.max(current + 1)
            } else {
                start
            },
            synced,
            prev_kv: create.prev_kv,
            no_put: create.filters.contains(&(FilterType::Noput as i32)),
            no_delete: create.filters.contains(&(FilterType::Nodelete as i32)),
            progress_notify: create.progress_notify,
            fragment: create.fragment,
            events_since_progress: false,
            user,
        };
        let created = WatchResponse {
            header: header(current),
            watch_id: id,
            created: true,
            ..WatchResponse::default()
        };
        self.push(stream, created, false);
        if !synced && watcher.next_rev < store.compact_revision() {
            self.push_compacted(stream, id, store);
            return;
        }
        self.insert_watcher((stream, id), watcher);
    }

    /// The cancellation of a watch that starts below the compaction: as etcd, its header
    /// carries revision 0 (no revision was read for it).
    pub(crate) fn push_compacted(&mut self, stream: StreamId, id: i64, store: &MvccStore) {
        let response = WatchResponse {
            header: header(0),
            watch_id: id,
            canceled: true,
            compact_revision: store.compact_revision(),
            ..WatchResponse::default()
        };
        self.push(stream, response, false);
    }

    /// Answers a progress request when every watcher of the stream is synced (and there is
    /// at least one), as etcd does.
    fn progress_all(&mut self, stream: StreamId, store: &MvccStore) {
        let mut any = false;
        for ((s, _), w) in &self.watchers {
            if *s == stream {
                if !w.synced {
                    return;
                }
                any = true;
            }
        }
        if any {
            let response = WatchResponse {
                header: header(store.current_revision()),
                watch_id: INVALID_WATCH_ID,
                ..WatchResponse::default()
            };
            self.push(stream, response, false);
        }
    }

    /// Advances time; every `progress_interval_ticks` each synced watcher that asked for
    /// progress notifications and got no events since the last one receives one.
    pub fn tick(&mut self, store: &MvccStore) {
        self.ticks += 1;
        if self.config.progress_interval_ticks == 0
            || !self
                .ticks
                .is_multiple_of(self.config.progress_interval_ticks)
        {
            return;
        }
        let mut due = Vec::new();
        for (&(stream, id), w) in &mut self.watchers {
            if w.progress_notify && w.synced && !w.events_since_progress {
                due.push((stream, id));
            }
            w.events_since_progress = false;
        }
        for (stream, id) in due {
            let response = WatchResponse {
                header: header(store.current_revision()),
                watch_id: id,
                ..WatchResponse::default()
            };
            self.push(stream, response, false);
        }
    }

    /// Delivers the events of applied writes to synced watchers. Events are grouped by
    /// revision; each watcher gets one response per revision with the events it selects.
    /// A watcher whose stream queue is full becomes unsynced at that revision and catches up
    /// through [`WatchHub::sync`].
    pub fn notify(&mut self, events: &[Event]) {
        let mut start = 0;
        while start < events.len() {
            let rev = revision_of(&events[start]);
            let len = events[start..]
                .iter()
                .take_while(|e| revision_of(e) == rev)
                .count();
            self.notify_revision(rev, &events[start..start + len]);
            start += len;
        }
    }

    fn notify_revision(&mut self, rev: i64, events: &[Event]) {
        let mut keys = self.ranged.clone();
        for event in events {
            if let Some(kv) = &event.kv
                && let Some(ids) = self.by_key.get(kv.key.as_ref())
            {
                keys.extend(ids.iter().copied());
            }
        }
        for (stream, id) in keys {
            let full = self.stream_full(stream);
            let Some(w) = self.watchers.get_mut(&(stream, id)) else {
                continue;
            };
            if !w.synced || rev < w.next_rev {
                continue;
            }
            let selected: Vec<Event> = events.iter().filter_map(|e| w.select(e)).collect();
            if selected.is_empty() {
                w.next_rev = rev + 1;
                continue;
            }
            if full {
                w.synced = false;
                w.next_rev = rev;
                continue;
            }
            w.next_rev = rev + 1;
            w.events_since_progress = true;
            let fragment = w.fragment;
            let response = WatchResponse {
                header: header(rev),
                watch_id: id,
                events: selected,
                ..WatchResponse::default()
            };
            self.push(stream, response, fragment);
        }
    }
}

pub(crate) fn revision_of(event: &Event) -> i64 {
    event.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}
