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

use super::server::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// The time (the shell's monotonic clock, in ms) at which the core next needs
    /// [`Server::handle_timeout`]. Call it again after every input: it only moves forward.
    pub fn poll_timeout(&self) -> u64 {
        self.next_tick_ms
    }

    /// Time passed: runs a tick if one is due at `now_ms` and returns whether it did (a
    /// shell that owns a [`crate::watch::WatchHub`] ticks it then, for progress
    /// notifications). Early calls do nothing, so a shell may call this on every wake-up.
    /// A shell uses either this or [`Server::tick`] at a fixed rate, not both.
    pub fn handle_timeout(&mut self, now_ms: u64) -> bool {
        if now_ms < self.next_tick_ms {
            return false;
        }
        self.tick(now_ms);
        true
    }

    /// After a tick at `now_ms`: the next point of the tick grid after `now_ms` (a tick called
    /// before the deadline, by a shell with its own ticker, leaves the deadline where it was).
    pub(super) fn schedule_next_tick(&mut self, now_ms: u64) {
        if now_ms < self.next_tick_ms {
            return;
        }
        let period = self.config.tick_ms.max(1);
        let missed = (now_ms - self.next_tick_ms) / period;
        self.next_tick_ms += period * (missed + 1);
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
