//! What the loop records in [`Metrics`], kept out of the turn itself: the loop calls these
//! hooks where the events happen. Each costs a few atomic operations; nothing allocates or
//! locks.

use std::sync::Arc;
use std::time::Duration;

use qraft_core::backend::Backend;
use qraft_core::raft::Storage;
use qraft_core::server::{Server, ServerStats};
use qraft_core::watch::WatchHub;
use qraft_proto::mvccpb::{Event, event::EventType};

use crate::metrics::{Metrics, SLOW_APPLY};

pub(super) struct LoopMetrics {
    metrics: Arc<Metrics>,
    /// The core's counters at the last [`LoopMetrics::after_turn`].
    recorded: ServerStats,
    /// Live keys: a baseline counted from the key space, then moved by every applied event.
    keys: KeyCount,
}

impl LoopMetrics {
    pub fn new(metrics: Arc<Metrics>, stats: ServerStats, live_keys: usize) -> Self {
        let keys = KeyCount::new(live_keys);
        metrics.mvcc.keys_total.set(keys.get());
        LoopMetrics {
            metrics,
            recorded: stats,
            keys,
        }
    }

    /// The turn's LMDB commit took `elapsed`; it synced raft log entries, vote or term
    /// (`log`: raft's `must_sync`) and/or carried applied entries (`applied`).
    pub fn committed(&self, elapsed: Duration, log: bool, applied: bool) {
        record_commit(&self.metrics, elapsed, log, applied);
    }

    /// Applying one batch of committed entries took `elapsed`.
    pub fn applied(&self, elapsed: Duration) {
        if elapsed > SLOW_APPLY {
            self.metrics.server.slow_apply.inc();
            tracing::warn!(
                took = ?elapsed,
                expected = ?SLOW_APPLY,
                "apply request took too long"
            );
        }
    }

    /// Applied changes of one revision.
    pub fn events(&mut self, events: &[Event]) {
        self.metrics.mvcc.keys_total.set(self.keys.apply(events));
    }

    /// The key space was replaced (a snapshot from the leader): count again.
    pub fn rebase_keys(&mut self, live_keys: usize) {
        self.keys = KeyCount::new(live_keys);
        self.metrics.mvcc.keys_total.set(self.keys.get());
    }

    /// Watch responses with `events` events in all went out to watchers.
    pub fn watch_events_sent(&self, events: usize) {
        self.metrics.mvcc.events.inc_by(events as u64);
    }

    pub fn leader_changed(&self, leader: u64, me: u64) {
        let server = &self.metrics.server;
        server.has_leader.set(i64::from(leader != 0));
        server.is_leader.set(i64::from(leader != 0 && leader == me));
    }

    /// End of a turn: the core's counters and gauges as they are now.
    pub fn after_turn<S: Storage, B: Backend>(&mut self, server: &Server<S, B>, hub: &WatchHub) {
        self.record(TurnState {
            stats: server.stats(),
            committed_index: server.committed_index(),
            applied_index: server.applied_index(),
            pending_proposals: server.pending_proposals(),
            watchers: hub.watchers(),
        });
    }

    fn record(&mut self, turn: TurnState) {
        let server = &self.metrics.server;
        server.proposals_committed.set(gauge(turn.committed_index));
        server.proposals_applied.set(gauge(turn.applied_index));
        server
            .proposals_pending
            .set(gauge(turn.pending_proposals as u64));
        self.metrics
            .mvcc
            .watcher_total
            .set(gauge(turn.watchers as u64));
        let (now, before) = (turn.stats, self.recorded);
        if now != before {
            server
                .proposals_failed
                .inc_by(now.proposals_failed - before.proposals_failed);
            let lease = &self.metrics.lease;
            lease
                .granted
                .inc_by(now.leases_granted - before.leases_granted);
            lease
                .revoked
                .inc_by(now.leases_revoked - before.leases_revoked);
            lease
                .renewed
                .inc_by(now.leases_renewed - before.leases_renewed);
            server
                .leader_changes_seen
                .inc_by(now.leader_changes - before.leader_changes);
            self.recorded = now;
        }
    }
}

/// The state [`LoopMetrics::after_turn`] mirrors.
struct TurnState {
    pub stats: ServerStats,
    pub committed_index: u64,
    pub applied_index: u64,
    pub pending_proposals: usize,
    pub watchers: usize,
}

fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Live keys, kept up to date from applied events: a put that creates a key (version 1 — a
/// new key, or one put again after its deletion) adds one, a delete removes one (deletes are
/// reported only for live keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyCount(i64);

impl KeyCount {
    fn new(live_keys: usize) -> Self {
        KeyCount(gauge(live_keys as u64))
    }

    fn get(self) -> i64 {
        self.0
    }

    fn apply(&mut self, events: &[Event]) -> i64 {
        for event in events {
            if event.r#type == EventType::Delete as i32 {
                self.0 -= 1;
            } else if event.kv.as_ref().is_some_and(|kv| kv.version == 1) {
                self.0 += 1;
            }
        }
        self.0
    }
}

/// An LMDB commit took `elapsed`; it synced raft log entries, vote or term (`log`) and/or
/// carried applied entries (`applied`). (The held batch records its own commits.)
pub(super) fn record_commit(metrics: &Metrics, elapsed: Duration, log: bool, applied: bool) {
    let seconds = elapsed.as_secs_f64();
    if log {
        metrics.disk.wal_fsync_duration_seconds.observe(seconds);
    }
    if applied {
        metrics
            .disk
            .backend_commit_duration_seconds
            .observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qraft_proto::mvccpb::KeyValue;

    fn put(key: &str, version: i64) -> Event {
        Event {
            r#type: EventType::Put as i32,
            kv: Some(KeyValue {
                key: key.as_bytes().to_vec().into(),
                version,
                ..Default::default()
            }),
            prev_kv: None,
        }
    }

    fn delete(key: &str) -> Event {
        Event {
            r#type: EventType::Delete as i32,
            kv: Some(KeyValue {
                key: key.as_bytes().to_vec().into(),
                ..Default::default()
            }),
            prev_kv: None,
        }
    }

    #[test]
    fn live_keys_follow_creations_and_deletions() {
        let mut keys = KeyCount::new(2);
        assert_eq!(keys.apply(&[put("a", 1), put("b", 1)]), 4);
        assert_eq!(
            keys.apply(&[put("a", 2), put("a", 3)]),
            4,
            "updates add nothing"
        );
        assert_eq!(keys.apply(&[delete("a"), delete("b")]), 2);
        assert_eq!(
            keys.apply(&[put("a", 1)]),
            3,
            "a key put again after its deletion"
        );
    }

    fn stats(failed: u64, granted: u64, revoked: u64, renewed: u64) -> ServerStats {
        ServerStats {
            proposals_failed: failed,
            leases_granted: granted,
            leases_revoked: revoked,
            leases_renewed: renewed,
            leader_changes: 0,
        }
    }

    fn turn(stats: ServerStats) -> TurnState {
        TurnState {
            stats,
            committed_index: 12,
            applied_index: 11,
            pending_proposals: 3,
            watchers: 2,
        }
    }

    #[test]
    fn turns_record_what_the_core_counted_since_the_last_turn() {
        let metrics = Arc::new(Metrics::new());
        // Counts from before the loop started (none here, but a baseline is not re-counted).
        let mut recorder = LoopMetrics::new(metrics.clone(), stats(1, 1, 0, 0), 5);
        recorder.record(turn(stats(1, 3, 1, 4)));
        recorder.record(turn(stats(2, 3, 2, 6)));
        assert_eq!(metrics.server.proposals_failed.get(), 1);
        assert_eq!(metrics.lease.granted.get(), 2);
        assert_eq!(metrics.lease.revoked.get(), 2);
        assert_eq!(metrics.lease.renewed.get(), 6);
        assert_eq!(metrics.server.proposals_committed.get(), 12);
        assert_eq!(metrics.server.proposals_applied.get(), 11);
        assert_eq!(metrics.server.proposals_pending.get(), 3);
        assert_eq!(metrics.mvcc.watcher_total.get(), 2);
        assert_eq!(metrics.mvcc.keys_total.get(), 5);
    }

    #[test]
    fn slow_applies_and_commits_are_recorded() {
        let metrics = Arc::new(Metrics::new());
        let recorder = LoopMetrics::new(metrics.clone(), ServerStats::default(), 0);
        recorder.applied(Duration::from_millis(5));
        recorder.applied(Duration::from_millis(150));
        assert_eq!(metrics.server.slow_apply.get(), 1);
        recorder.committed(Duration::from_millis(2), true, false);
        recorder.committed(Duration::from_millis(3), true, true);
        let text = metrics.encode();
        assert!(text.contains("qraft_disk_wal_fsync_duration_seconds_count 2\n"));
        assert!(text.contains("qraft_disk_backend_commit_duration_seconds_count 1\n"));
    }

    #[test]
    fn leader_changes_set_the_leader_gauges_and_the_core_counts_them() {
        let metrics = Arc::new(Metrics::new());
        let mut recorder = LoopMetrics::new(metrics.clone(), ServerStats::default(), 0);
        recorder.leader_changed(7, 7);
        assert_eq!(metrics.server.is_leader.get(), 1);
        recorder.leader_changed(0, 7);
        assert_eq!(metrics.server.has_leader.get(), 0);
        assert_eq!(metrics.server.is_leader.get(), 0);
        recorder.leader_changed(8, 7);
        assert_eq!(metrics.server.has_leader.get(), 1);
        assert_eq!(metrics.server.is_leader.get(), 0);
        let counted = ServerStats {
            leader_changes: 2,
            ..ServerStats::default()
        };
        recorder.record(turn(counted));
        assert_eq!(metrics.server.leader_changes_seen.get(), 2);
    }
}
