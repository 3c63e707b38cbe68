//! Runs a workload against a target: opens `--conns` connections, drives `--clients`
//! requesters concurrently on one executor thread until the budget is spent, and merges their
//! latency records into one summary.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use futures::future::join_all;

use super::budget::Budget;
use super::keys::{KeyGen, KeyOrder, stamped_value};
use super::list::run_list;
use super::mixed::{MixedShape, run_mixed};
use super::progress::Progress;
use super::range_watch::{count_events, open_range_watchers};
use super::stats::{Recorder, Summary};
use super::target::{BoxFut, Conn, Target};
use super::watch::{WatchShape, run_watch};
use super::workload::{Consistency, Load, Workload};

/// Runs one workload to completion and returns its summary.
pub async fn run(
    target: &dyn Target,
    load: &Load,
    workload: &Workload,
    progress: bool,
) -> anyhow::Result<Summary> {
    if load.total.is_none() && load.duration.is_none() {
        bail!("a run needs --total, --duration or both");
    }
    let conns = connect(target, load.conns).await?;
    let start = Instant::now();
    let budget = Arc::new(Budget::new(load.total, load.duration, start));
    let bar = Progress::start(budget.clone(), progress);
    let mut items = None;
    let mut reads = None;
    let mut tally = None;
    let recorder = match workload {
        Workload::Watch {
            watchers,
            watch_keys,
            key_size,
            val_size,
            grace,
        } => {
            let shape = WatchShape {
                watchers: *watchers,
                watch_keys: *watch_keys,
                key_size: *key_size,
                val_size: *val_size,
                grace: *grace,
            };
            let (recorder, watched) = run_watch(&conns, load, &budget, &shape, start).await?;
            tally = Some(watched);
            recorder
        }
        Workload::LeaseKeepalive => run_requesters(&conns, load, &budget, keep_alive_loop).await,
        Workload::Put {
            keys,
            range_watchers,
            ..
        } if *range_watchers > 0 => {
            let mut streams =
                open_range_watchers(&conns, *range_watchers, keys.key_space_size, keys.key_size)
                    .await?;
            let received = AtomicU64::new(0);
            let expected = AtomicU64::new(u64::MAX);
            let puts = async {
                let recorder = run_requesters(&conns, load, &budget, |conn, budget, client| {
                    request_loop(
                        conn,
                        budget,
                        workload,
                        load.seed.wrapping_add(client),
                        start,
                    )
                })
                .await;
                expected.store(recorder.count(), Ordering::Release);
                recorder
            };
            let counting = join_all(
                streams
                    .iter_mut()
                    .map(|stream| count_events(stream.as_mut(), &received, &expected)),
            );
            let (recorder, _) = futures::future::join(puts, counting).await;
            items = Some(received.load(Ordering::Acquire));
            recorder
        }
        Workload::Mixed {
            writers,
            readers,
            keys,
            val_size,
            consistency,
        } => {
            let shape = MixedShape {
                writers: *writers,
                readers: *readers,
                key_size: keys.key_size,
                key_space_size: keys.key_space_size,
                val_size: *val_size,
                consistency: *consistency,
            };
            let (writes, read_records) = run_mixed(&conns, &budget, &shape, load.seed).await;
            reads = Some(read_records);
            writes
        }
        Workload::List { page_size } => {
            let (recorder, listed) = run_list(conns[0].as_ref(), &budget, *page_size).await;
            items = Some(listed);
            recorder
        }
        _ => {
            run_requesters(&conns, load, &budget, |conn, budget, client| {
                request_loop(
                    conn,
                    budget,
                    workload,
                    load.seed.wrapping_add(client),
                    start,
                )
            })
            .await
        }
    };
    let elapsed = start.elapsed();
    bar.finish();
    let mut summary = recorder.summary(workload.name(), target.name(), elapsed);
    summary.items = items;
    summary.reads = reads.map(|r: Recorder| Box::new(r.summary("reads", target.name(), elapsed)));
    summary.watch = tally;
    Ok(summary)
}

pub async fn connect(target: &dyn Target, count: u64) -> anyhow::Result<Vec<Box<dyn Conn>>> {
    let mut conns = Vec::new();
    for i in 0..count {
        let conn = target
            .connect()
            .await
            .with_context(|| format!("opening connection {i} to {}", target.name()))?;
        conns.push(conn);
    }
    Ok(conns)
}

/// Starts `--clients` requesters (requester i on connection i mod conns) and merges their records.
pub async fn run_requesters<'a, F, Fut>(
    conns: &'a [Box<dyn Conn>],
    load: &Load,
    budget: &'a Budget,
    requester: F,
) -> Recorder
where
    F: Fn(&'a dyn Conn, &'a Budget, u64) -> Fut,
    Fut: std::future::Future<Output = Recorder> + 'a,
{
    let requesters = (0..load.clients).map(|client| {
        let conn = &conns[(client % conns.len() as u64) as usize];
        requester(conn.as_ref(), budget, client)
    });
    let mut total = Recorder::new();
    for recorder in join_all(requesters).await {
        total.merge(&recorder);
    }
    total
}

async fn request_loop(
    conn: &dyn Conn,
    budget: &Budget,
    workload: &Workload,
    seed: u64,
    origin: Instant,
) -> Recorder {
    let mut recorder = Recorder::new();
    let mut keys = match workload {
        Workload::Put { keys, .. }
        | Workload::Range { keys, .. }
        | Workload::TxnPut { keys, .. } => {
            KeyGen::new(keys.key_size, keys.key_space_size, keys.key_order, seed)
        }
        _ => KeyGen::new(8, 1, KeyOrder::Sequential, seed),
    };
    while let Some(n) = budget.claim() {
        let call = request(conn, workload, keys.key(n), origin);
        let sent = Instant::now();
        match call.await {
            Ok(()) => recorder.success(sent.elapsed()),
            Err(err) => recorder.error(err.0),
        }
        budget.finished();
    }
    recorder
}

fn request<'a>(
    conn: &'a dyn Conn,
    workload: &Workload,
    key: Vec<u8>,
    origin: Instant,
) -> BoxFut<'a, ()> {
    let stamp = || u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
    match workload {
        Workload::Put { val_size, .. } => conn.put(key, stamped_value(*val_size, stamp())),
        Workload::TxnPut { val_size, .. } => conn.txn_put(key, stamped_value(*val_size, stamp())),
        Workload::Range { consistency, .. } => conn.range(key, *consistency == Consistency::S),
        Workload::Watch { .. }
        | Workload::LeaseKeepalive
        | Workload::List { .. }
        | Workload::Mixed { .. } => {
            Box::pin(async { Err(super::target::TargetError::new("not a request workload")) })
        }
    }
}

/// Lease TTL of the keep-alive workload: long enough never to expire during a run.
const KEEP_ALIVE_TTL: i64 = 60;

async fn keep_alive_loop(conn: &dyn Conn, budget: &Budget, _client: u64) -> Recorder {
    let mut recorder = Recorder::new();
    let stream = match conn.lease_grant(KEEP_ALIVE_TTL).await {
        Ok(lease) => conn.lease_keep_alive(lease).await,
        Err(err) => Err(err),
    };
    let mut stream = match stream {
        Ok(stream) => stream,
        Err(err) => {
            recorder.error(format!("setup: {err}"));
            return recorder;
        }
    };
    while budget.claim().is_some() {
        let sent = Instant::now();
        match stream.keep_alive().await {
            Ok(()) => recorder.success(sent.elapsed()),
            Err(err) => recorder.error(err.0),
        }
        budget.finished();
    }
    recorder
}
