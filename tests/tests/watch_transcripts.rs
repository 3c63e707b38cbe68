//! Transcript tests of watches: each `tests/testdata/watch/*.txt` script drives an MVCC store
//! on a MemBackend plus a `WatchHub`; after every command the responses queued on every
//! stream that is not held are printed (`[sN] ...`).
//!
//! Commands: the KV writes of `common` (`put`, `del`, `txn` blocks) and `compact REV`, each
//! followed by `notify` of its events; `config KEY=N...` (`queue`, `qbytes`, `batch`,
//! `sbytes`, `progress`, `bytes`; recreates the hub); `open` (a stream); `watch S KEY [end=..|prefix|from] [rev=N]
//! [id=N] [prev_kv] [noput] [nodelete] [progress] [fragment]`; `cancel S ID`; `progress S`;
//! `close S`; `tick [N]`; `sync [N]` (N catch-up steps, default 1); `hold S` / `release S`
//! (stop / resume draining a stream, to simulate a slow client); `room S N` (a held stream's
//! shell reports room for N bytes: what the hub hands over is printed); `silent_put ...` (a write
//! the hub is not notified of, as when a snapshot is installed); `resync`; `status`.

// Tests read their scripts from disk; the IO ban is for the library.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;

use common::*;
use qraft_core::backend::{Backend, MemBackend, WriteTxn};
use qraft_core::mvcc::{MvccStore, NoLeases};
use qraft_core::watch::{StreamId, WatchConfig, WatchHub};
use qraft_proto::etcdserverpb::watch_request::RequestUnion;
use qraft_proto::etcdserverpb::{
    CompactionRequest, WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
    WatchResponse,
};
use qraft_proto::mvccpb::Event;

struct Runner {
    backend: MemBackend,
    store: MvccStore,
    hub: WatchHub,
    held: BTreeSet<StreamId>,
}

fn fmt_response(stream: StreamId, r: &WatchResponse, out: &mut String) {
    let mut line = format!(
        "[s{stream}] id={} rev={}",
        r.watch_id,
        r.header.as_ref().map_or(0, |h| h.revision)
    );
    for (flag, name) in [
        (r.created, "created"),
        (r.canceled, "canceled"),
        (r.fragment, "fragment"),
    ] {
        if flag {
            line.push(' ');
            line.push_str(name);
        }
    }
    if r.compact_revision != 0 {
        line.push_str(&format!(" compact_revision={}", r.compact_revision));
    }
    if !r.cancel_reason.is_empty() {
        line.push_str(&format!(" reason={:?}", r.cancel_reason));
    }
    if r.events.is_empty() && !r.created && !r.canceled {
        line.push_str(" (progress)");
    }
    out.push_str(&line);
    out.push('\n');
    for ev in &r.events {
        out.push_str(&format!("    {}\n", fmt_event(ev)));
    }
}

impl Runner {
    fn new(config: WatchConfig) -> Self {
        let backend = MemBackend::new();
        let store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
        Self {
            backend,
            store,
            hub: WatchHub::new(config),
            held: BTreeSet::new(),
        }
    }

    fn write(
        &mut self,
        out: &mut String,
        f: impl FnOnce(
            &mut MvccStore,
            &mut <MemBackend as Backend>::WriteTxn<'_>,
            &mut String,
        ) -> Vec<Event>,
    ) {
        let mut txn = self.backend.write_txn().unwrap();
        let events = f(&mut self.store, &mut txn, out);
        txn.commit().unwrap();
        self.hub.notify(&events);
    }

    fn run(&mut self, line: &str, lines: &mut dyn Iterator<Item = String>, out: &mut String) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let stream = |i: usize| -> StreamId { words[i].trim_start_matches('s').parse().unwrap() };
        match words[0] {
            "config" => {
                let mut config = WatchConfig::default();
                for w in &words[1..] {
                    let (k, v) = w.split_once('=').unwrap();
                    let n: u64 = v.parse().unwrap();
                    match k {
                        "queue" => config.max_queued_responses = n as usize,
                        "qbytes" => config.max_queued_bytes = n as usize,
                        "batch" => config.sync_batch_revisions = n as i64,
                        "sbytes" => config.sync_batch_bytes = n as usize,
                        "progress" => config.progress_interval_ticks = n,
                        "bytes" => config.max_response_bytes = n as usize,
                        _ => panic!("unknown config {k}"),
                    }
                }
                self.hub = WatchHub::new(config);
            }
            "put" => {
                let req = parse_put(&words[1..]);
                self.write(out, |store, txn, out| {
                    match store.put(txn, &req, &NoLeases) {
                        Ok(a) => {
                            out.push_str(&format!(
                                "put rev={}\n",
                                a.response.header.unwrap().revision
                            ));
                            a.events
                        }
                        Err(e) => {
                            out.push_str(&format!("{}\n", fmt_error(&e)));
                            Vec::new()
                        }
                    }
                });
            }
            "del" => {
                let req = parse_delete(&words[1..]);
                self.write(out, |store, txn, out| match store.delete_range(txn, &req) {
                    Ok(a) => {
                        out.push_str(&format!(
                            "del rev={} deleted={}\n",
                            a.response.header.unwrap().revision,
                            a.response.deleted
                        ));
                        a.events
                    }
                    Err(e) => {
                        out.push_str(&format!("{}\n", fmt_error(&e)));
                        Vec::new()
                    }
                });
            }
            "txn" => {
                let req = parse_txn_block(lines);
                self.write(out, |store, txn, out| {
                    match store.txn(txn, &req, &NoLeases) {
                        Ok(a) => {
                            out.push_str(&format!(
                                "txn rev={} succeeded={}\n",
                                a.response.header.unwrap().revision,
                                a.response.succeeded
                            ));
                            a.events
                        }
                        Err(e) => {
                            out.push_str(&format!("{}\n", fmt_error(&e)));
                            Vec::new()
                        }
                    }
                });
            }
            "compact" => {
                let req = CompactionRequest {
                    revision: words[1].parse().unwrap(),
                    physical: false,
                };
                self.write(out, |store, txn, out| {
                    match store.compact(txn, &req) {
                        Ok(_) => out.push_str(&format!("compacted at {}\n", req.revision)),
                        Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                    }
                    Vec::new()
                });
            }
            "open" => {
                let id = self.hub.open_stream();
                out.push_str(&format!("stream s{id}\n"));
            }
            "close" => self.hub.close_stream(stream(1)),
            "watch" => {
                let key = bytes(words[2]);
                let mut create = WatchCreateRequest {
                    key: key.clone().into(),
                    ..Default::default()
                };
                for w in &words[3..] {
                    let (name, value) = w.split_once('=').unwrap_or((w, ""));
                    match name {
                        "prefix" => create.range_end = prefix_end(&key).into(),
                        "from" => create.range_end = vec![0].into(),
                        "end" => create.range_end = bytes(value).into(),
                        "rev" => create.start_revision = value.parse().unwrap(),
                        "id" => create.watch_id = value.parse().unwrap(),
                        "prev_kv" => create.prev_kv = true,
                        "noput" => create.filters.push(0),
                        "nodelete" => create.filters.push(1),
                        "progress" => create.progress_notify = true,
                        "fragment" => create.fragment = true,
                        _ => panic!("unknown watch option {w}"),
                    }
                }
                let request = WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(create)),
                };
                self.hub.request(stream(1), request, &self.store);
            }
            "cancel" => {
                let request = WatchRequest {
                    request_union: Some(RequestUnion::CancelRequest(WatchCancelRequest {
                        watch_id: words[2].parse().unwrap(),
                    })),
                };
                self.hub.request(stream(1), request, &self.store);
            }
            "progress" => {
                let request = WatchRequest {
                    request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
                };
                self.hub.request(stream(1), request, &self.store);
            }
            "tick" => {
                let n: usize = words.get(1).map_or(1, |w| w.parse().unwrap());
                for _ in 0..n {
                    self.hub.tick(&self.store);
                }
            }
            "sync" => {
                let n: usize = words.get(1).map_or(1, |w| w.parse().unwrap());
                for _ in 0..n {
                    let read = self.backend.read_txn().unwrap();
                    self.hub.sync(&self.store, &read).unwrap();
                }
                out.push_str(&format!("unsynced={}\n", self.hub.unsynced_watchers()));
            }
            "resync" => self.hub.resync(),
            "silent_put" => {
                // A write the hub is not told about (as when a snapshot is installed).
                let req = parse_put(&words[1..]);
                let mut txn = self.backend.write_txn().unwrap();
                self.store.put(&mut txn, &req, &NoLeases).unwrap();
                txn.commit().unwrap();
            }
            "hold" => {
                self.held.insert(stream(1));
            }
            "release" => {
                self.held.remove(&stream(1));
            }
            "room" => {
                let room: usize = words[2].parse().unwrap();
                for response in self.hub.take_responses(stream(1), room) {
                    fmt_response(stream(1), &response, out);
                }
            }
            "status" => out.push_str(&format!(
                "rev={} compacted={} watchers={} unsynced={}\n",
                self.store.current_revision(),
                self.store.compact_revision(),
                self.hub.watchers(),
                self.hub.unsynced_watchers()
            )),
            other => panic!("unknown command {other}"),
        }
        for stream in self.hub.streams_with_responses() {
            if self.held.contains(&stream) {
                continue;
            }
            for response in self.hub.take_all_responses(stream) {
                fmt_response(stream, &response, out);
            }
        }
    }
}

#[test]
fn watch_transcripts() {
    insta::glob!("../testdata/watch", "*.txt", |path| {
        let script = std::fs::read_to_string(path).unwrap();
        let mut runner = Runner::new(WatchConfig::default());
        let out = qraft_tests::transcript::run_script_with_blocks(
            &script,
            &["txn"],
            |line, block, out| runner.run(line, block, out),
        );
        insta::assert_snapshot!(out);
    });
}
