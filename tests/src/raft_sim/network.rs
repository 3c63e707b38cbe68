//! An in-memory network with seeded faults: loss, duplication, delay (hence reordering) and
//! partitions.

use qraft_proto::raftpb::Message;
use rand::Rng;
use rand::rngs::SmallRng;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    /// Messages take 0..=max_delay steps.
    pub max_delay: u64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        max_delay: 0,
    };
}

#[derive(Default)]
pub struct Network {
    /// (deliver_at, sequence, message); unordered, scanned each step.
    in_flight: Vec<(u64, u64, Message)>,
    seq: u64,
    /// Nodes in different groups can't talk. `None` = fully connected.
    pub groups: Option<Vec<BTreeSet<u64>>>,
}

impl Network {
    pub fn connected(&self, a: u64, b: u64) -> bool {
        match &self.groups {
            None => true,
            Some(gs) => gs.iter().any(|g| g.contains(&a) && g.contains(&b)),
        }
    }

    /// Queues `m`; returns false when the network lost it.
    pub fn send(&mut self, m: Message, now: u64, faults: &Faults, rng: &mut SmallRng) -> bool {
        if faults.drop > 0.0 && rng.random_bool(faults.drop) {
            return false;
        }
        let copies = if faults.duplicate > 0.0 && rng.random_bool(faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if faults.max_delay > 0 {
                rng.random_range(0..=faults.max_delay)
            } else {
                0
            };
            self.seq += 1;
            self.in_flight.push((now + delay, self.seq, m.clone()));
        }
        true
    }

    /// Messages due at `now`, in a seeded random order, and those lost crossing a partition.
    pub fn due(&mut self, now: u64, rng: &mut SmallRng) -> (Vec<Message>, Vec<Message>) {
        let (mut due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.in_flight = keep;
        due.sort_by_key(|(at, seq, _)| (*at, *seq));
        // Shuffle deterministically (Fisher-Yates with the sim's RNG).
        for i in (1..due.len()).rev() {
            let j = rng.random_range(0..=i);
            due.swap(i, j);
        }
        due.into_iter()
            .map(|(_, _, m)| m)
            .partition(|m| self.connected(m.from, m.to))
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }
}
