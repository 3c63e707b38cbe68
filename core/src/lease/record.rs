//! One lease as the lessor keeps it.

use std::collections::BTreeSet;

use qraft_proto::Bytes;

/// A granted lease.
///
/// Invariant: `ttl` is the granted (already adjusted) TTL in seconds, in `[min_ttl, MAX_TTL]`;
/// `remaining_ttl` is the last checkpointed remaining TTL in seconds, `0` meaning "none, use
/// `ttl`". `expiry_ms` is only meaningful on the primary; on other members it is `None`
/// ("never"), because only the primary decides that a lease expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub ttl: i64,
    pub remaining_ttl: i64,
    pub keys: BTreeSet<Bytes>,
    pub(crate) expiry_ms: Option<u64>,
    /// When the primary next replicates this lease's remaining TTL (`None` = not scheduled);
    /// mirrors the lease's entry in the lessor's checkpoint queue.
    pub(crate) next_checkpoint_ms: Option<u64>,
    /// When the primary next looks at this lease for expiry: the deadline, or after the lease was
    /// reported expired, the time to report it again if its revoke has not been applied by then.
    /// Mirrors the lease's entry in the lessor's expiry queue.
    pub(crate) next_expiry_check_ms: Option<u64>,
}

impl Lease {
    pub(crate) fn new(id: i64, ttl: i64, remaining_ttl: i64) -> Self {
        Lease {
            id,
            ttl,
            remaining_ttl,
            keys: BTreeSet::new(),
            expiry_ms: None,
            next_checkpoint_ms: None,
            next_expiry_check_ms: None,
        }
    }

    /// The TTL a fresh deadline starts from: the checkpointed remainder if there is one.
    pub(crate) fn ttl_for_refresh(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }

    /// The deadline in ms, `None` when this member does not track it.
    pub fn expiry_ms(&self) -> Option<u64> {
        self.expiry_ms
    }

    /// Milliseconds left at `now_ms`; `None` when this member tracks no deadline.
    pub fn remaining_ms(&self, now_ms: u64) -> Option<u64> {
        self.expiry_ms.map(|expiry| expiry.saturating_sub(now_ms))
    }
}
