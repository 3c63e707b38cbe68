//! Limits password guessing: after a few consecutive failed sign-ins for a user, further
//! attempts for that user are refused without checking the password until a pause has passed.
//!
//! Member-local bookkeeping, like tokens: each member limits the attempts it receives. Only
//! existing users are tracked (a sign-in for an unknown user fails at once, without bcrypt),
//! so the table is bounded by the number of users. The limit is per user name because the core
//! does not know who the client is; the price is that someone guessing root's password also
//! delays root's own sign-in, by at most [`LOCKOUT_MS`] after their last failure.

use std::collections::BTreeMap;

/// Consecutive failures allowed before the pause applies.
pub const FREE_FAILURES: u32 = 5;
/// After [`FREE_FAILURES`], one more attempt is allowed per this many milliseconds.
pub const LOCKOUT_MS: u64 = 1_000;
/// A user's failures are forgotten after this long without a new one.
const FORGET_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: u64,
}

#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: BTreeMap<String, Failures>,
}

impl LoginLimiter {
    /// Whether a sign-in for `user` may have its password checked now.
    pub fn allows(&self, user: &str, now_ms: u64) -> bool {
        match self.failures.get(user) {
            None => true,
            Some(f) => f.count < FREE_FAILURES || now_ms >= f.last_ms.saturating_add(LOCKOUT_MS),
        }
    }

    pub fn failed(&mut self, user: &str, now_ms: u64) {
        let entry = self.failures.entry(user.to_string()).or_insert(Failures {
            count: 0,
            last_ms: now_ms,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last_ms = now_ms;
    }

    pub fn succeeded(&mut self, user: &str) {
        self.failures.remove(user);
    }

    /// Forgets old failures and users that no longer exist.
    pub fn sweep(&mut self, now_ms: u64, exists: impl Fn(&str) -> bool) {
        self.failures
            .retain(|user, f| exists(user) && f.last_ms.saturating_add(FORGET_MS) > now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_after_the_free_failures_and_resets_on_success() {
        let mut limiter = LoginLimiter::default();
        for _ in 0..FREE_FAILURES {
            assert!(limiter.allows("root", 0));
            limiter.failed("root", 0);
        }
        assert!(!limiter.allows("root", LOCKOUT_MS - 1));
        assert!(limiter.allows("alice", 0), "other users are not affected");
        assert!(limiter.allows("root", LOCKOUT_MS));
        limiter.failed("root", LOCKOUT_MS);
        assert!(!limiter.allows("root", LOCKOUT_MS + 1));
        limiter.succeeded("root");
        assert!(limiter.allows("root", LOCKOUT_MS + 1));
        limiter.failed("root", 0);
        limiter.sweep(FORGET_MS, |_| true);
        assert!(limiter.failures.is_empty());
    }
}
