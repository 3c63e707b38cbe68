//! Exponential backoff with full jitter for reconnects.

use std::time::Duration;

/// Doubles the delay after each failure up to `max`; [`Backoff::reset`] after a success.
/// Jitter spreads reconnect attempts of many members so a restarted node is not hit in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Self {
            min,
            max,
            current: min,
            seed: seed | 1,
        }
    }

    /// The delay to wait before the next attempt: uniformly in [current/2, current].
    pub fn next_delay(&mut self) -> Duration {
        // xorshift64: cheap, seeded, good enough for jitter.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = base / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if jitter_nanos == 0 {
            0
        } else {
            self.seed % jitter_nanos
        };
        half + Duration::from_nanos(jitter)
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(80), 42);
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        let caps = [10, 20, 40, 80, 80, 80];
        for (d, cap) in delays.iter().zip(caps) {
            assert!(*d <= Duration::from_millis(cap), "{d:?} > {cap}ms");
            assert!(*d >= Duration::from_millis(cap) / 2, "{d:?} < {cap}/2 ms");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(10));
    }
}
