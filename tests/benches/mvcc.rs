//! MVCC benchmark on the in-memory backend: apply throughput of puts and txns (grouped into
//! write transactions as the state machine applies committed entries), range latency on a
//! store of 1M keys, and resident memory per key. Prints figures; asserts nothing.
//!
//! `cargo bench -p qraft-tests --bench mvcc` (set `QRAFT_BENCH_KEYS` to change the 1M).

// A benchmark measures wall-clock time and reads its own RSS; the IO bans are for the library.
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_types,
    clippy::disallowed_methods
)]

use std::time::{Duration, Instant};

use qraft_core::backend::{Backend, MemBackend, WriteTxn};
use qraft_core::mvcc::{MvccStore, NoLeases};
use qraft_core::watch::{WatchConfig, WatchHub};
use qraft_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::watch_request::RequestUnion;
use qraft_proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use qraft_proto::etcdserverpb::{WatchCreateRequest, WatchRequest};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn key(i: u64) -> Vec<u8> {
    format!("/registry/pods/ns-{:04}/pod-{:08}", i % 1000, i).into_bytes()
}

fn put(i: u64, value: &[u8]) -> PutRequest {
    PutRequest {
        key: key(i).into(),
        value: value.to_vec().into(),
        ..Default::default()
    }
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn bench_puts(batch: u64, total: u64) {
    let backend = MemBackend::new();
    let mut store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
    let value = vec![b'v'; 128];
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let mut txn = backend.write_txn().unwrap();
        for _ in 0..batch {
            store
                .put(&mut txn, &put(i % 50_000, &value), &NoLeases)
                .unwrap();
            i += 1;
        }
        txn.commit().unwrap();
    }
    let elapsed = start.elapsed();
    println!(
        "put (128 B values, 50k keys, {batch} per backend txn): {:>9.0} puts/s",
        per_sec(total, elapsed)
    );
}

fn bench_txns(batch: u64, total: u64) {
    let backend = MemBackend::new();
    let mut store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
    let value = vec![b'v'; 128];
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let mut txn = backend.write_txn().unwrap();
        for _ in 0..batch {
            let k = i % 50_000;
            let req = TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Greater as i32,
                    target: CompareTarget::Version as i32,
                    key: key(k).into(),
                    target_union: Some(TargetUnion::Version(-1)),
                    range_end: Default::default(),
                }],
                success: vec![
                    RequestOp {
                        request: Some(Request::RequestPut(put(k, &value))),
                    },
                    RequestOp {
                        request: Some(Request::RequestPut(put(k + 50_000, &value))),
                    },
                ],
                failure: Vec::new(),
            };
            store.txn(&mut txn, &req, &NoLeases).unwrap();
            i += 1;
        }
        txn.commit().unwrap();
    }
    let elapsed = start.elapsed();
    println!(
        "txn (1 compare + 2 puts, {batch} per backend txn):  {:>9.0} txns/s",
        per_sec(total, elapsed)
    );
}

fn bench_ranges(keys: u64) {
    let rss_before = rss_bytes();
    let backend = MemBackend::new();
    let mut store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
    let value = vec![b'v'; 64];
    let load = Instant::now();
    let mut i = 0;
    while i < keys {
        let mut txn = backend.write_txn().unwrap();
        for _ in 0..10_000.min(keys - i) {
            store.put(&mut txn, &put(i, &value), &NoLeases).unwrap();
            i += 1;
        }
        txn.commit().unwrap();
    }
    let load = load.elapsed();
    let rss_after = rss_bytes();
    println!(
        "load {keys} keys (10k puts per backend txn): {:.2} s ({:.0} puts/s)",
        load.as_secs_f64(),
        per_sec(keys, load)
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let key_len = key(0).len();
        println!(
            "memory: {:.0} bytes per key (RSS growth, key {key_len} B + value 64 B, index + backend)",
            (after.saturating_sub(before)) as f64 / keys as f64
        );
    }

    let read = backend.read_txn().unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    for (name, limit, prefix) in [
        ("get one key", 0, false),
        ("range limit 100", 100, true),
        ("range count_only (prefix of ~1000 keys)", 0, true),
    ] {
        let mut samples = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let k = rng.random_range(0..keys);
            let req = if prefix {
                let ns = format!("/registry/pods/ns-{:04}/", k % 1000).into_bytes();
                let mut end = ns.clone();
                *end.last_mut().unwrap() += 1;
                RangeRequest {
                    key: ns.into(),
                    range_end: end.into(),
                    limit,
                    count_only: limit == 0,
                    ..Default::default()
                }
            } else {
                RangeRequest {
                    key: key(k).into(),
                    ..Default::default()
                }
            };
            let t = Instant::now();
            let r = store.range(&read, &req).unwrap();
            samples.push(t.elapsed());
            assert!(r.count > 0 || keys < 1000);
        }
        samples.sort();
        println!(
            "{name:<40} on {keys} keys: p50 {:>8.1} µs  p99 {:>8.1} µs",
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6
        );
    }
}

/// Puts with watchers attached: `single` watchers on distinct keys and `prefixes` prefix
/// watchers; every put is notified to the hub and responses are drained as a shell would.
fn bench_watch(single: u64, prefixes: u64, total: u64) {
    let backend = MemBackend::new();
    let mut store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
    let mut hub = WatchHub::new(WatchConfig::default());
    let stream = hub.open_stream();
    for i in 0..single {
        let create = WatchCreateRequest {
            key: key(i).into(),
            ..Default::default()
        };
        let request = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create)),
        };
        hub.request(stream, request, &store);
    }
    for p in 0..prefixes {
        let prefix = format!("/registry/pods/ns-{p:04}/").into_bytes();
        let mut end = prefix.clone();
        *end.last_mut().unwrap() += 1;
        let create = WatchCreateRequest {
            key: prefix.into(),
            range_end: end.into(),
            ..Default::default()
        };
        let request = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create)),
        };
        hub.request(stream, request, &store);
    }
    hub.take_all_responses(stream);
    let value = vec![b'v'; 128];
    let mut delivered = 0usize;
    let start = Instant::now();
    let mut i = 0;
    while i < total {
        let mut txn = backend.write_txn().unwrap();
        let mut events = Vec::new();
        for _ in 0..100 {
            events.push(
                store
                    .put(&mut txn, &put(i % (single * 2), &value), &NoLeases)
                    .unwrap()
                    .events,
            );
            i += 1;
        }
        txn.commit().unwrap();
        for e in &events {
            hub.notify(e);
        }
        delivered += hub.take_all_responses(stream).len();
    }
    let elapsed = start.elapsed();
    println!(
        "put + watch ({single} key watchers, {prefixes} prefix watchers): {:>9.0} puts/s, {delivered} responses",
        per_sec(total, elapsed)
    );
}

fn main() {
    let keys = std::env::var("QRAFT_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000u64);
    // First, so the RSS growth is not hidden by memory freed by the other runs.
    bench_ranges(keys);
    bench_puts(1, 100_000);
    bench_puts(1000, 300_000);
    bench_txns(1000, 100_000);
    bench_watch(10_000, 10, 100_000);
}
