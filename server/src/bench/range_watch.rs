//! Watchers on key ranges beside a put workload (`put --range-watchers W`): W watchers split
//! the key space into W disjoint ranges before the puts start, as a Kubernetes API server
//! watches one prefix per resource type while objects are written. Every put is an event for
//! exactly one watcher, so the events received must equal the puts acknowledged; the summary's
//! `items` is the events received (within a grace period after the last put).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::keys::encode_key;
use super::target::{Conn, EventStream};

/// How long watchers wait for the remaining events once the puts are over.
const GRACE: Duration = Duration::from_secs(30);
/// How often a waiting watcher checks whether it is done.
const POLL: Duration = Duration::from_millis(100);

/// Opens `watchers` watchers, watcher j on keys `[j·S/W, (j+1)·S/W)` of a key space of `S`
/// keys of `key_size` bytes, spread over the connections.
pub async fn open_range_watchers(
    conns: &[Box<dyn Conn>],
    watchers: u64,
    key_space: u64,
    key_size: usize,
) -> anyhow::Result<Vec<Box<dyn EventStream>>> {
    let mut streams = Vec::new();
    for j in 0..watchers {
        let start = encode_key(j * key_space / watchers, key_size);
        let end = encode_key((j + 1) * key_space / watchers, key_size);
        let conn = &conns[(j % conns.len() as u64) as usize];
        streams.push(conn.watch_range(start, end).await?);
    }
    Ok(streams)
}

/// Counts the events of every stream into `received` until it reaches `expected` (set once the
/// puts are over; `u64::MAX` until then) or the grace period after that ends.
pub async fn count_events(
    stream: &mut dyn EventStream,
    received: &AtomicU64,
    expected: &AtomicU64,
) {
    let mut give_up: Option<Instant> = None;
    loop {
        let want = expected.load(Ordering::Acquire);
        if want != u64::MAX {
            if received.load(Ordering::Acquire) >= want {
                return;
            }
            if Instant::now() >= *give_up.get_or_insert_with(|| Instant::now() + GRACE) {
                return;
            }
        }
        match qraft_io::runtime::timeout(POLL, stream.next()).await {
            Err(_elapsed) => {}
            Ok(Ok(Some(values))) => {
                received.fetch_add(values.len() as u64, Ordering::AcqRel);
            }
            // An ended or failed stream shows as missing events.
            Ok(Ok(None) | Err(_)) => return,
        }
    }
}
