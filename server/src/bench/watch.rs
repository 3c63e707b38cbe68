//! The watch workload: `watchers` streams watch `watch_keys` keys (watcher i the key i mod
//! `watch_keys`; with one key, a pure broadcast) while the requesters put them in turn. Each
//! put's value carries its send time, so every watcher measures put-to-event latency from the
//! event alone. Watchers are spread over the connections (watcher i on connection i mod
//! `--conns`), as a fan-out of many clients' watches.
//!
//! Every event is accounted for: each watcher checks that its events' revisions strictly
//! increase (so none is duplicated or reordered), counts those that arrive after the last put
//! was acknowledged (late), and once the grace period after that has passed, counts the
//! events of its key's acknowledged puts it still has not seen (missing). Since each
//! acknowledged put of a key is one revision of that key, late + on time + missing is exact.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{Either, Shared, join, select};
use serde::Serialize;

use super::budget::Budget;
use super::keys::{encode_key, read_stamp, stamped_value};
use super::runner::run_requesters;
use super::stats::Recorder;
use super::target::{Conn, EventStream};
use super::workload::Load;

/// Not yet known: the puts are still running.
const UNKNOWN: u64 = u64::MAX;

/// The shape of a watch run.
pub struct WatchShape {
    pub watchers: u64,
    pub watch_keys: u64,
    pub key_size: usize,
    pub val_size: usize,
    /// How long watchers wait for their remaining events once the last put was acknowledged.
    pub grace: Duration,
}

/// Where the events went, beyond the latency histogram (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatchTally {
    /// Events received after the last put was acknowledged (within the grace).
    pub late: u64,
    /// Events of acknowledged puts not received when the grace ran out.
    pub missing: u64,
    /// Watchers that missed at least one event.
    pub incomplete_watchers: u64,
    /// Events whose revision was not above the watcher's previous one (duplicated or reordered).
    pub out_of_order: u64,
    /// How long after the last put's acknowledgement the last event arrived, in milliseconds.
    pub last_event_after_ms: u64,
    /// Watch streams the client had to reopen (qraft's client resumes broken streams).
    pub resumed_streams: u64,
}

impl WatchTally {
    fn merge(&mut self, other: &WatchTally) {
        self.late += other.late;
        self.missing += other.missing;
        self.incomplete_watchers += other.incomplete_watchers;
        self.out_of_order += other.out_of_order;
        self.last_event_after_ms = self.last_event_after_ms.max(other.last_event_after_ms);
        self.resumed_streams += other.resumed_streams;
    }
}

/// A one-shot signal any number of watchers can wait for.
type Signal = Shared<oneshot::Receiver<()>>;

/// What the watchers learn from the puts: how many events each key's watchers must see, when
/// the puts were over, and when the grace ran out.
struct Progress {
    expected: Vec<AtomicU64>,
    /// Nanoseconds from the origin to the last put's acknowledgement (`UNKNOWN` before).
    ended_at: AtomicU64,
    puts_done: Signal,
    grace_over: Signal,
}

pub async fn run_watch(
    conns: &[Box<dyn Conn>],
    load: &Load,
    budget: &Budget,
    shape: &WatchShape,
    origin: Instant,
) -> anyhow::Result<(Recorder, WatchTally)> {
    let keys: Vec<Vec<u8>> = (0..shape.watch_keys.max(1))
        .map(|k| encode_key(k, shape.key_size))
        .collect();
    let mut streams = Vec::new();
    for i in 0..shape.watchers {
        let conn = &conns[(i % conns.len() as u64) as usize];
        let key = (i % keys.len() as u64) as usize;
        streams.push((key, conn.watch(keys[key].clone()).await?));
    }
    let (puts_done_tx, puts_done) = oneshot::channel();
    let (grace_over_tx, grace_over) = oneshot::channel();
    let progress = Progress {
        expected: keys.iter().map(|_| AtomicU64::new(UNKNOWN)).collect(),
        ended_at: AtomicU64::new(UNKNOWN),
        puts_done: puts_done.shared(),
        grace_over: grace_over.shared(),
    };
    // Puts acknowledged per key.
    let acked: Vec<AtomicU64> = keys.iter().map(|_| AtomicU64::new(0)).collect();
    let next = AtomicU64::new(0);
    let puts = async {
        let recorder = run_requesters(conns, load, budget, |conn, budget, _| {
            put_loop(conn, budget, &keys, &next, &acked, shape.val_size, origin)
        })
        .await;
        progress
            .ended_at
            .store(nanos_since(origin), Ordering::Release);
        for (target, count) in progress.expected.iter().zip(&acked) {
            target.store(count.load(Ordering::Acquire), Ordering::Release);
        }
        let _ = puts_done_tx.send(());
        recorder
    };
    let grace_timer = async {
        let _ = progress.puts_done.clone().await;
        qraft_io::runtime::sleep(shape.grace).await;
        let _ = grace_over_tx.send(());
    };
    let watching = async {
        let watchers = futures::future::join_all(
            streams
                .iter_mut()
                .map(|(key, stream)| watch_loop(stream.as_mut(), *key, &progress, origin)),
        );
        // The timer only runs while some watcher still waits.
        match select(Box::pin(watchers), Box::pin(grace_timer)).await {
            Either::Left((done, _)) => done,
            Either::Right(((), watchers)) => watchers.await,
        }
    };
    let (put_recorder, watched) = join(puts, watching).await;
    let mut events = Recorder::new();
    let mut tally = WatchTally::default();
    for (recorder, watcher) in &watched {
        events.merge(recorder);
        tally.merge(watcher);
    }
    for (_, stream) in &streams {
        tally.resumed_streams += stream.resumes();
    }
    if put_recorder.errors() > 0 {
        events.error(format!("{} puts failed", put_recorder.errors()));
    }
    Ok((events, tally))
}

fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
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
        let stamp = nanos_since(origin);
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

/// Reads one watcher's events until it has them all or the grace ran out. `next` is only
/// abandoned when a signal fires (twice at most), never on a timer.
async fn watch_loop(
    stream: &mut dyn EventStream,
    key: usize,
    progress: &Progress,
    origin: Instant,
) -> (Recorder, WatchTally) {
    let mut recorder = Recorder::new();
    let mut tally = WatchTally::default();
    let mut received = 0u64;
    let mut last_revision = 0i64;
    loop {
        let want = progress.expected[key].load(Ordering::Acquire);
        if want != UNKNOWN && received >= want {
            break;
        }
        let signal = if want == UNKNOWN {
            progress.puts_done.clone()
        } else {
            progress.grace_over.clone()
        };
        let item = match select(stream.next(), signal).await {
            Either::Left((item, _)) => item,
            // The puts are over: look at the target again.
            Either::Right(_) if want == UNKNOWN => continue,
            Either::Right(_) => {
                let missing = want - received;
                tally.missing += missing;
                tally.incomplete_watchers += 1;
                recorder.error(format!("{missing} events missing"));
                break;
            }
        };
        match item {
            Ok(Some(events)) => {
                let now = nanos_since(origin);
                let ended = progress.ended_at.load(Ordering::Acquire);
                if ended != UNKNOWN && now > ended {
                    tally.late += events.len() as u64;
                    let after = Duration::from_nanos(now - ended).as_millis();
                    tally.last_event_after_ms = tally
                        .last_event_after_ms
                        .max(u64::try_from(after).unwrap_or(u64::MAX));
                }
                for (revision, value) in events {
                    if revision <= last_revision {
                        tally.out_of_order += 1;
                        recorder.error("an event out of revision order or repeated");
                        continue;
                    }
                    received += 1;
                    last_revision = revision;
                    match read_stamp(&value) {
                        Some(stamp) => {
                            recorder.success(Duration::from_nanos(now.saturating_sub(stamp)))
                        }
                        None => recorder.error("event without a timestamp"),
                    }
                }
            }
            Ok(None) => {
                recorder.error("watch stream ended");
                break;
            }
            Err(err) => {
                recorder.error(err.0);
                break;
            }
        }
    }
    (recorder, tally)
}
