//! The bound of a run: a total number of operations, a duration, or both — never neither, so
//! every load loop ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Budget {
    total: u64,
    deadline: Instant,
    claimed: AtomicU64,
    done: AtomicU64,
}

impl Budget {
    /// `None` for both is refused by the caller; a missing side is unbounded on that axis only.
    pub fn new(total: Option<u64>, duration: Option<Duration>, start: Instant) -> Self {
        // A century is "no deadline" without the overflow of Instant arithmetic.
        let duration = duration.unwrap_or(Duration::from_secs(100 * 365 * 24 * 3600));
        Self {
            total: total.unwrap_or(u64::MAX),
            deadline: start.checked_add(duration).unwrap_or(start),
            claimed: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    /// The index of the next operation to run, or `None` when the run is over.
    pub fn claim(&self) -> Option<u64> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let n = self.claimed.fetch_add(1, Ordering::Relaxed);
        (n < self.total).then_some(n)
    }

    /// Counts a finished operation (for the progress bar).
    pub fn finished(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The progress bar's length: the total when there is one.
    pub fn total(&self) -> Option<u64> {
        (self.total != u64::MAX).then_some(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_total_hands_out_exactly_that_many_operations() {
        let budget = Budget::new(Some(3), None, Instant::now());
        let claimed: Vec<_> = std::iter::from_fn(|| budget.claim()).collect();
        assert_eq!(claimed, vec![0, 1, 2]);
        assert_eq!(budget.claim(), None);
    }

    #[test]
    fn a_passed_deadline_hands_out_nothing() {
        let budget = Budget::new(None, Some(Duration::ZERO), Instant::now());
        assert_eq!(budget.claim(), None);
    }
}
