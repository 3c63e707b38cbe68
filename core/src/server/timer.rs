//! When the core next needs the shell: a deadline on the shell's monotonic clock, as
//! a sans-IO QUIC connection's `poll_timeout`. A runtime sleeps until [`Server::poll_timeout`]
//! (or until an input arrives) and then calls [`Server::handle_timeout`] with its clock, instead
//! of keeping a ticker of its own. Time stays an argument: nothing here reads a clock.
//!
//! Everything the core does with time — raft's election and heartbeat counters, request
//! deadlines, lease expiry and checkpoints, version checks, token sweeps — runs from a tick,
//! so the only deadline is the next tick. Ticks fall on a grid of `tick_ms` from the time the
//! server was opened; a shell that wakes late gets one tick, not a burst of the missed ones (a
//! burst would expire election timeouts at once after a stall, e.g. a long fsync).

use crate::backend::Backend;
use crate::raft::Storage;

use super::state_machine::Server;

/// The core's own schedule: the tick grid, the leader's lease checks, the token sweep, and
/// the tick counters of the periodic checks (versions, attribute publishing, the quota).
/// Everything here is on the shell's clock, given as an argument; `Server::tick` runs it.
#[derive(Debug)]
pub(super) struct Schedule {
    /// When the next tick is due on the shell's clock.
    pub next_tick_ms: u64,
    /// When the leader next looks for expired leases and due checkpoints.
    pub next_lease_check_ms: u64,
    /// When expired simple tokens are next swept.
    pub next_token_sweep_ms: u64,
    /// Ticks since the last version check (`super::version`).
    pub version: TickCount,
    /// Ticks since this member last considered publishing its attributes (`super::publish`).
    pub publish: TickCount,
    /// Ticks since the last quota check (`super::quota`).
    pub quota: TickCount,
}

impl Schedule {
    /// Opened at `now_ms`: the first tick one `tick_ms` later; the version check and the
    /// attributes publish due on the first tick with a leader (counters already at their
    /// periods), the quota check after a full period.
    pub fn new(now_ms: u64, tick_ms: u64, version_period: u64, publish_period: u64) -> Self {
        Schedule {
            next_tick_ms: now_ms.saturating_add(tick_ms.max(1)),
            next_lease_check_ms: now_ms,
            next_token_sweep_ms: now_ms,
            version: TickCount(version_period),
            publish: TickCount(publish_period),
            quota: TickCount(0),
        }
    }
}

/// Ticks counted towards a periodic check.
#[derive(Debug)]
pub(super) struct TickCount(u64);

impl TickCount {
    /// One more tick. True once `period` ticks have passed and the check can run (`ready`);
    /// the count then starts again. Not ready: the count keeps growing, so the check runs on
    /// the first tick it can.
    pub fn due(&mut self, period: u64, ready: bool) -> bool {
        self.0 += 1;
        if self.0 < period || !ready {
            return false;
        }
        self.0 = 0;
        true
    }
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// The time (the shell's monotonic clock, in ms) at which the core next needs
    /// [`Server::handle_timeout`]. Call it again after every input: it only moves forward.
    pub fn poll_timeout(&self) -> u64 {
        self.schedule.next_tick_ms
    }

    /// Time passed: runs a tick if one is due at `now_ms` and returns whether it did (a
    /// shell that owns a [`crate::watch::WatchHub`] ticks it then, for progress
    /// notifications). Early calls do nothing, so a shell may call this on every wake-up.
    /// A shell uses either this or [`Server::tick`] at a fixed rate, not both.
    pub fn handle_timeout(&mut self, now_ms: u64) -> bool {
        if now_ms < self.schedule.next_tick_ms {
            return false;
        }
        self.tick(now_ms);
        true
    }

    /// After a tick at `now_ms`: the next point of the tick grid after `now_ms` (a tick called
    /// before the deadline, by a shell with its own ticker, leaves the deadline where it was).
    pub(super) fn schedule_next_tick(&mut self, now_ms: u64) {
        let schedule = &mut self.schedule;
        if now_ms < schedule.next_tick_ms {
            return;
        }
        let period = self.config.tick_ms.max(1);
        let missed = (now_ms - schedule.next_tick_ms) / period;
        schedule.next_tick_ms += period * (missed + 1);
    }
}

#[cfg(test)]
mod tests {
    use qraft_proto::raftpb::ConfState;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use crate::backend::MemBackend;
    use crate::raft::MemStorage;
    use crate::server::{Server, ServerConfig};

    fn single_member(now_ms: u64) -> Server<MemStorage, MemBackend> {
        let storage = MemStorage::new_with_conf_state(ConfState {
            voters: vec![1],
            ..Default::default()
        });
        let config = ServerConfig::new(1, 1);
        let secrets = Box::new(StdRng::seed_from_u64(1));
        Server::new(config, storage, MemBackend::new(), now_ms, secrets).unwrap()
    }

    #[test]
    fn deadlines_follow_the_tick_grid_and_skip_missed_ticks() {
        let mut server = single_member(1_000);
        assert_eq!(server.poll_timeout(), 1_100);
        assert!(!server.handle_timeout(1_099), "early: nothing due");
        assert_eq!(server.poll_timeout(), 1_100);
        assert!(server.handle_timeout(1_100));
        assert_eq!(server.poll_timeout(), 1_200);
        // Woken 250 ms late: one tick, and the next stays on the grid.
        assert!(server.handle_timeout(1_450));
        assert_eq!(server.poll_timeout(), 1_500);
        // A fixed-rate shell calling tick() early does not push the deadline.
        server.tick(1_460);
        assert_eq!(server.poll_timeout(), 1_500);
    }

    #[test]
    fn a_member_driven_by_deadlines_elects_itself() {
        let mut server = single_member(0);
        let mut now = 0;
        for _ in 0..100 {
            now = server.poll_timeout();
            server.handle_timeout(now);
            while let Some(work) = server.ready() {
                let storage = server.raft_storage_mut();
                storage.append(&work.entries).unwrap();
                if let Some(hard_state) = work.hard_state {
                    storage.set_hard_state(hard_state);
                }
                server.advance().unwrap();
            }
            if server.is_leader() {
                break;
            }
        }
        assert!(server.is_leader(), "no leader after {now} ms");
        // Elected within two election timeouts (randomized in [10, 20) ticks).
        assert!(now <= 2_000, "{now}");
    }
}
