//! The watch workload: `watchers` streams watch `watch_keys` keys (watcher i the key i mod
//! `watch_keys`; with one key, a pure broadcast) while the requesters put them in turn. Each
//! put's value carries its send time, so every watcher measures put-to-event latency from the
//! event alone; a watcher that has not seen every acknowledged put of its key within a grace
//! period after the last one counts the missing events as errors. Watchers are spread over the
//! connections (watcher i on connection i mod `--conns`), as a fan-out of many clients' watches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::join;

use super::budget::Budget;
use super::keys::{encode_key, read_stamp, stamped_value};
use super::runner::run_requesters;
use super::stats::Recorder;
use super::target::{Conn, EventStream};
use super::workload::Load;

/// How long watchers wait for the remaining events once the last put was acknowledged.
const GRACE: Duration = Duration::from_secs(10);
/// How often a waiting watcher checks whether the puts are over.
const POLL: Duration = Duration::from_millis(100);

/// Not yet known: the puts are still running.
const UNKNOWN: u64 = u64::MAX;

/// The shape of a watch run.
pub struct WatchShape {
    pub watchers: u64,
    pub watch_keys: u64,
    pub key_size: usize,
    pub val_size: usize,
}

pub async fn run_watch(
    conns: &[Box<dyn Conn>],
    load: &Load,
    budget: &Budget,
    shape: &WatchShape,
    origin: Instant,
) -> anyhow::Result<Recorder> {
    let keys: Vec<Vec<u8>> = (0..shape.watch_keys.max(1))
        .map(|k| encode_key(k, shape.key_size))
        .collect();
    let mut streams = Vec::new();
    for i in 0..shape.watchers {
        let conn = &conns[(i % conns.len() as u64) as usize];
        let key = (i % keys.len() as u64) as usize;
        streams.push((key, conn.watch(keys[key].clone()).await?));
    }
    // Puts acknowledged per key; the watchers' targets once the puts are over.
    let acked: Vec<AtomicU64> = keys.iter().map(|_| AtomicU64::new(0)).collect();
    let expected: Vec<AtomicU64> = keys.iter().map(|_| AtomicU64::new(UNKNOWN)).collect();
    let next = AtomicU64::new(0);
    let puts = async {
        let recorder = run_requesters(conns, load, budget, |conn, budget, _| {
            put_loop(conn, budget, &keys, &next, &acked, shape.val_size, origin)
        })
        .await;
        for (target, count) in expected.iter().zip(&acked) {
            target.store(count.load(Ordering::Acquire), Ordering::Release);
        }
        recorder
    };
    let events = futures::future::join_all(
        streams
            .iter_mut()
            .map(|(key, stream)| watch_loop(stream.as_mut(), &expected[*key], origin)),
    );
    let (put_recorder, event_recorders) = join(puts, events).await;
    let mut events = Recorder::new();
    for recorder in &event_recorders {
        events.merge(recorder);
    }
    if put_recorder.errors() > 0 {
        events.error(format!("{} puts failed", put_recorder.errors()));
    }
    Ok(events)
}

async fn put_loop(
    conn: &dyn Conn,
    budget: &Budget,
    keys: &[Vec<u8>],
    next: &AtomicU64,
    acked: &[AtomicU64],
    val_size: usize,
    origin: Instant,
) -> Recorder {
    let mut recorder = Recorder::new();
    while budget.claim().is_some() {
        let key = (next.fetch_add(1, Ordering::Relaxed) % keys.len() as u64) as usize;
        let stamp = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let sent = Instant::now();
        match conn
            .put(keys[key].clone(), stamped_value(val_size, stamp))
            .await
        {
            Ok(()) => {
                acked[key].fetch_add(1, Ordering::AcqRel);
                recorder.success(sent.elapsed());
            }
            Err(err) => recorder.error(err.0),
        }
        budget.finished();
    }
    recorder
}

async fn watch_loop(
    stream: &mut dyn EventStream,
    expected: &AtomicU64,
    origin: Instant,
) -> Recorder {
    let mut recorder = Recorder::new();
    let mut received = 0u64;
    let mut give_up: Option<Instant> = None;
    loop {
        let want = expected.load(Ordering::Acquire);
        if want != UNKNOWN {
            if received >= want {
                break;
            }
            let give_up = *give_up.get_or_insert_with(|| Instant::now() + GRACE);
            if Instant::now() >= give_up {
                recorder.error(format!("{} events missing", want - received));
                break;
            }
        }
        match qraft_io::runtime::timeout(POLL, stream.next()).await {
            Err(_elapsed) => continue,
            Ok(Ok(Some(values))) => {
                let now = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                for value in values {
                    received += 1;
                    match read_stamp(&value) {
                        Some(stamp) => {
                            recorder.success(Duration::from_nanos(now.saturating_sub(stamp)))
                        }
                        None => recorder.error("event without a timestamp"),
                    }
                }
            }
            Ok(Ok(None)) => {
                recorder.error("watch stream ended");
                break;
            }
            Ok(Err(err)) => {
                recorder.error(err.0);
                break;
            }
        }
    }
    recorder
}
