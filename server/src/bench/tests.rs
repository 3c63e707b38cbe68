//! The driver's own logic (bounds, fan-out over connections, event accounting) against a small
//! in-process key-value target. The real systems are exercised by the smoke test and
//! `bench/compare.sh`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use futures::channel::mpsc;
use futures::executor::block_on;

use super::target::{
    BoxFut, Conn, EventStream, KeepAlive, Page, Target, TargetError, WatchedEvent,
};
use super::workload::{Load, Workload};

/// Watched key, range end (empty: the key alone) and where its events go.
type WatcherList = Vec<(Vec<u8>, Vec<u8>, mpsc::UnboundedSender<Vec<WatchedEvent>>)>;

#[derive(Default)]
struct Shared {
    data: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    watchers: Mutex<WatcherList>,
    connections: AtomicU64,
    calls: AtomicU64,
    /// Every n-th call fails when non-zero.
    fail_every: u64,
    /// The store's revision: one per write.
    revision: AtomicU64,
    /// When non-zero, the event of every n-th write reaches no watcher.
    lose_event_every: u64,
}

struct MemTarget(Arc<Shared>);
struct MemConn(Arc<Shared>);

impl Target for MemTarget {
    fn name(&self) -> &'static str {
        "mem"
    }
    fn connect(&self) -> BoxFut<'_, Box<dyn Conn>> {
        self.0.connections.fetch_add(1, Ordering::Relaxed);
        let conn: Box<dyn Conn> = Box::new(MemConn(self.0.clone()));
        Box::pin(async move { Ok(conn) })
    }
}

impl MemConn {
    fn call(&self) -> Result<(), TargetError> {
        let n = self.0.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if self.0.fail_every != 0 && n.is_multiple_of(self.0.fail_every) {
            return Err(TargetError::new("injected failure"));
        }
        Ok(())
    }

    fn store(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), TargetError> {
        self.call()?;
        let revision = self.0.revision.fetch_add(1, Ordering::Relaxed) + 1;
        let lost = self.0.lose_event_every != 0 && revision.is_multiple_of(self.0.lose_event_every);
        for (watched, end, tx) in self.0.watchers.lock().map_err(TargetError::new)?.iter() {
            let hit = if end.is_empty() {
                *watched == key
            } else {
                *watched <= key && key < *end
            };
            if hit && !lost {
                let _ = tx.unbounded_send(vec![(revision as i64, value.clone())]);
            }
        }
        self.0
            .data
            .lock()
            .map_err(TargetError::new)?
            .insert(key, value);
        Ok(())
    }
}

impl Conn for MemConn {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFut<'_, ()> {
        Box::pin(async move { self.store(key, value) })
    }
    fn range(&self, key: Vec<u8>, _serializable: bool) -> BoxFut<'_, ()> {
        Box::pin(async move {
            self.call()?;
            let _ = self.0.data.lock().map_err(TargetError::new)?.get(&key);
            Ok(())
        })
    }
    fn range_page(&self, from: Vec<u8>, limit: i64, _revision: i64) -> BoxFut<'_, Page> {
        Box::pin(async move {
            self.call()?;
            let data = self.0.data.lock().map_err(TargetError::new)?;
            let mut keys: Vec<&Vec<u8>> = data.keys().filter(|k| **k >= from).collect();
            keys.sort();
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let page = &keys[..keys.len().min(limit)];
            Ok(Page {
                keys: page.len() as u64,
                more_after: (keys.len() > limit).then(|| page[page.len() - 1].clone()),
                revision: 1,
            })
        })
    }
    fn txn_put(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFut<'_, ()> {
        Box::pin(async move { self.store(key, value) })
    }
    fn lease_grant(&self, _ttl: i64) -> BoxFut<'_, i64> {
        Box::pin(async move { self.call().map(|()| 7) })
    }
    fn lease_keep_alive(&self, _lease: i64) -> BoxFut<'_, Box<dyn KeepAlive>> {
        Box::pin(async move { Ok(Box::new(MemKeepAlive) as Box<dyn KeepAlive>) })
    }
    fn watch_range(&self, key: Vec<u8>, range_end: Vec<u8>) -> BoxFut<'_, Box<dyn EventStream>> {
        let (tx, rx) = mpsc::unbounded();
        Box::pin(async move {
            self.0
                .watchers
                .lock()
                .map_err(TargetError::new)?
                .push((key, range_end, tx));
            Ok(Box::new(MemEvents(rx)) as Box<dyn EventStream>)
        })
    }
}

struct MemKeepAlive;
impl KeepAlive for MemKeepAlive {
    fn keep_alive(&mut self) -> BoxFut<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

struct MemEvents(mpsc::UnboundedReceiver<Vec<WatchedEvent>>);
impl EventStream for MemEvents {
    fn next(&mut self) -> BoxFut<'_, Option<Vec<WatchedEvent>>> {
        Box::pin(async move { Ok(self.0.next().await) })
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: Load,
    #[command(subcommand)]
    workload: Workload,
}

fn run(shared: &Arc<Shared>, args: &str) -> super::Summary {
    let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.split_whitespace()))
        .unwrap_or_else(|e| panic!("{e}"));
    let target = MemTarget(shared.clone());
    block_on(super::run(&target, &cli.load, &cli.workload, false)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_total_is_spread_over_clients_and_connections_exactly() {
    let shared = Arc::new(Shared::default());
    let summary = run(
        &shared,
        "--clients 8 --conns 3 --total 500 put --key-space-size 50 --val-size 16",
    );
    assert_eq!((summary.ok, summary.errors), (500, 0));
    assert_eq!(shared.connections.load(Ordering::Relaxed), 3);
    assert_eq!(shared.calls.load(Ordering::Relaxed), 500);
    let data = shared.data.lock().unwrap_or_else(|e| e.into_inner());
    assert!(data.len() <= 50 && !data.is_empty());
    assert!(data.values().all(|v| v.len() == 16));
}

#[test]
fn sequential_keys_cover_the_key_space() {
    let shared = Arc::new(Shared::default());
    run(
        &shared,
        "--clients 4 --total 64 txn-put --key-space-size 64 --key-order sequential --key-size 10",
    );
    let data = shared.data.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(data.len(), 64);
    assert!(data.keys().all(|k| k.len() == 10));
}

#[test]
fn failures_are_counted_not_fatal() {
    let shared = Arc::new(Shared {
        fail_every: 4,
        ..Shared::default()
    });
    let summary = run(&shared, "--clients 2 --total 100 range --consistency s");
    assert_eq!((summary.ok, summary.errors), (75, 25));
    assert_eq!(summary.workload, "range-serializable");
    assert_eq!(summary.error_samples, vec!["injected failure".to_owned()]);
}

#[test]
fn every_watcher_sees_every_put() {
    let shared = Arc::new(Shared::default());
    let summary = run(
        &shared,
        "--clients 2 --total 40 watch --watchers 3 --val-size 32",
    );
    assert_eq!((summary.ok, summary.errors), (120, 0));
    let tally = summary
        .watch
        .unwrap_or_else(|| panic!("a watch run has a tally"));
    assert_eq!((tally.missing, tally.out_of_order), (0, 0));
}

#[test]
fn lost_events_are_counted_exactly_once_the_grace_ran_out() {
    // 2 keys, 2 watchers each; 40 puts (20 per key); the events of writes 5, 10, .., 40 never
    // arrive: 8 lost writes, each watched by 2 watchers.
    let shared = Arc::new(Shared {
        lose_event_every: 5,
        ..Shared::default()
    });
    let started = std::time::Instant::now();
    let summary = run(
        &shared,
        "--clients 1 --total 40 watch --watchers 4 --watch-keys 2 --val-size 16 --grace 300ms",
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let tally = summary
        .watch
        .unwrap_or_else(|| panic!("a watch run has a tally"));
    assert_eq!(tally.missing, 16);
    assert_eq!(tally.incomplete_watchers, 4);
    assert_eq!(tally.out_of_order, 0);
    assert_eq!(summary.ok, 4 * 20 - 16);
    assert_eq!(summary.errors, 4);
}

#[test]
fn a_duration_bounds_a_run_without_a_total() {
    let shared = Arc::new(Shared::default());
    let started = std::time::Instant::now();
    let summary = run(&shared, "--clients 2 --duration 200ms lease-keepalive");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(summary.ok > 0);
    assert_eq!(summary.errors, 0);
}

#[test]
fn an_unbounded_run_is_refused() {
    let cli = Cli::try_parse_from(["bench", "put"]).unwrap_or_else(|e| panic!("{e}"));
    let target = MemTarget(Arc::new(Shared::default()));
    let refused = block_on(super::run(&target, &cli.load, &cli.workload, false));
    assert!(refused.is_err());
}

#[test]
fn a_paged_list_returns_every_key_once() {
    let shared = Arc::new(Shared::default());
    run(
        &shared,
        "--clients 4 --total 1234 put --key-space-size 1234 --key-order sequential",
    );
    let summary = run(&shared, "--total 1000 list --page-size 100");
    // 12 full pages and one of 34.
    assert_eq!(
        (summary.ok, summary.errors, summary.items),
        (13, 0, Some(1234))
    );
}

#[test]
fn range_watchers_see_every_put_once() {
    let shared = Arc::new(Shared::default());
    let summary = run(
        &shared,
        "--clients 4 --total 300 put --key-space-size 300 --key-order sequential --range-watchers 7",
    );
    assert_eq!(
        (summary.ok, summary.errors, summary.items),
        (300, 0, Some(300))
    );
}

#[test]
fn a_mixed_run_reports_writes_and_reads_apart() {
    // The in-memory target answers without yielding, so the first requester would take the
    // whole budget: each role is checked on its own.
    let shared = Arc::new(Shared::default());
    let writes = run(
        &shared,
        "--total 300 mixed --writers 2 --readers 0 --key-space-size 50",
    );
    let reads = writes.reads.as_ref().expect("reads reported");
    assert_eq!((writes.ok, reads.ok, writes.errors), (300, 0, 0));
    assert!(
        !shared
            .data
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    );
    let only_reads = run(
        &shared,
        "--total 200 mixed --writers 0 --readers 3 --key-space-size 50",
    );
    let reads = only_reads.reads.as_ref().expect("reads reported");
    assert_eq!((only_reads.ok, reads.ok, reads.errors), (0, 200, 0));
    assert_eq!(only_reads.workload, "mixed");
}
