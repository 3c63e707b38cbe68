//! A small linearizability checker for a single register (Wing & Gong search with memoisation),
//! with reads, writes and compare-and-set.
//!
//! Each key of the simulated KV store is an independent register, so a history is checked key
//! by key. Histories are kept short by the simulation and the fault suite (at most 128
//! operations per key), which keeps the exponential worst case of the search out of reach.
//! The fault suite ([`crate::fault_history`]) checks its real clusters' histories with this
//! same checker.

use std::collections::HashSet;

/// What a client did and what it observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Wrote this (unique) value.
    Write(u64),
    /// Read this value (`None`: never written).
    Read(Option<u64>),
    /// Compare-and-set: if the register holds `expect` (`None`: never written), write the
    /// (unique) value `new`. With a response it swapped; without one (`ret == None`) it may
    /// have swapped or not (a failed compare changes nothing, as if it never happened).
    Cas { expect: Option<u64>, new: u64 },
    /// A compare-and-set that answered "not swapped", having found `found` in the register
    /// (read in the same transaction): it linearizes where the register held `found`, which
    /// must differ from `expect`.
    CasFailed {
        expect: Option<u64>,
        found: Option<u64>,
    },
}

/// One operation with its invocation and response times. `ret == None` means the client never
/// learned the outcome (a write that may or may not have taken effect).
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: OpKind,
    pub call: u64,
    pub ret: Option<u64>,
}

/// Whether the register history is linearizable. Reads without a response must be left out by
/// the caller (they constrain nothing); a write or compare-and-set without one may be placed
/// anywhere after its call or left out.
pub fn is_linearizable(ops: &[Op]) -> bool {
    assert!(ops.len() <= 128, "history too long for the checker");
    let mut seen = HashSet::new();
    search(ops, 0u128, None, &mut seen)
}

fn search(
    ops: &[Op],
    done: u128,
    state: Option<u64>,
    seen: &mut HashSet<(u128, Option<u64>)>,
) -> bool {
    let pending = || (0..ops.len()).filter(move |&i| done & (1u128 << i) == 0);
    // Every remaining op is a write with unknown outcome: they may all never have happened.
    if pending().all(|i| ops[i].ret.is_none()) {
        return true;
    }
    if !seen.insert((done, state)) {
        return false;
    }
    // An op can be linearized next only if it was invoked before every pending op returned.
    let horizon = pending()
        .filter_map(|i| ops[i].ret)
        .min()
        .unwrap_or(u64::MAX);
    for i in pending() {
        let op = &ops[i];
        if op.call > horizon {
            continue;
        }
        let next = match op.kind {
            OpKind::Write(v) => Some(v),
            OpKind::Read(v) if v == state => state,
            OpKind::Read(_) => continue,
            OpKind::Cas { expect, new } if expect == state => Some(new),
            OpKind::Cas { .. } => continue,
            OpKind::CasFailed { expect, found } if found == state && expect != state => state,
            OpKind::CasFailed { .. } => continue,
        };
        if search(ops, done | (1u128 << i), next, seen) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, call: u64, ret: Option<u64>) -> Op {
        Op { kind, call, ret }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            op(OpKind::Write(1), 0, Some(1)),
            op(OpKind::Read(Some(1)), 2, Some(3)),
        ];
        assert!(is_linearizable(&h));
    }

    #[test]
    fn stale_read_after_completed_write_is_not() {
        let h = [
            op(OpKind::Write(1), 0, Some(1)),
            op(OpKind::Write(2), 2, Some(3)),
            op(OpKind::Read(Some(1)), 4, Some(5)),
        ];
        assert!(!is_linearizable(&h));
    }

    #[test]
    fn concurrent_read_may_see_either_value() {
        let h = [
            op(OpKind::Write(1), 0, Some(1)),
            op(OpKind::Write(2), 2, Some(6)),
            op(OpKind::Read(Some(1)), 3, Some(4)),
            op(OpKind::Read(Some(2)), 5, Some(7)),
        ];
        assert!(is_linearizable(&h));
    }

    #[test]
    fn unknown_write_may_or_may_not_apply() {
        let seen = [
            op(OpKind::Write(1), 0, None),
            op(OpKind::Read(Some(1)), 5, Some(6)),
        ];
        let unseen = [
            op(OpKind::Write(1), 0, None),
            op(OpKind::Read(None), 5, Some(6)),
        ];
        assert!(is_linearizable(&seen));
        assert!(is_linearizable(&unseen));
    }

    #[test]
    fn value_flip_flop_is_not() {
        let h = [
            op(OpKind::Write(1), 0, Some(1)),
            op(OpKind::Write(2), 0, Some(1)),
            op(OpKind::Read(Some(1)), 2, Some(3)),
            op(OpKind::Read(Some(2)), 4, Some(5)),
            op(OpKind::Read(Some(1)), 6, Some(7)),
        ];
        assert!(!is_linearizable(&h));
    }

    fn cas(expect: Option<u64>, new: u64) -> OpKind {
        OpKind::Cas { expect, new }
    }

    fn cas_failed(expect: Option<u64>, found: Option<u64>) -> OpKind {
        OpKind::CasFailed { expect, found }
    }

    #[test]
    fn cas_chain_is_linearizable() {
        let h = [
            op(cas(None, 1), 0, Some(1)),
            op(cas(Some(1), 2), 2, Some(3)),
            op(cas_failed(Some(1), Some(2)), 4, Some(5)),
            op(OpKind::Read(Some(2)), 6, Some(7)),
        ];
        assert!(is_linearizable(&h));
    }

    #[test]
    fn two_cas_from_the_same_value_cannot_both_swap() {
        let h = [
            op(OpKind::Write(1), 0, Some(1)),
            op(cas(Some(1), 2), 2, Some(5)),
            op(cas(Some(1), 3), 2, Some(5)),
        ];
        assert!(!is_linearizable(&h));
    }

    #[test]
    fn cas_that_swapped_against_a_value_already_overwritten_is_not() {
        let h = [
            op(OpKind::Write(1), 0, Some(1)),
            op(OpKind::Write(2), 2, Some(3)),
            op(cas(Some(1), 3), 4, Some(5)),
        ];
        assert!(!is_linearizable(&h));
    }

    #[test]
    fn failed_cas_must_have_found_a_current_value_other_than_expected() {
        let equal = [
            op(OpKind::Write(1), 0, Some(1)),
            op(cas_failed(Some(1), Some(1)), 2, Some(3)),
        ];
        let stale = [
            op(OpKind::Write(1), 0, Some(1)),
            op(OpKind::Write(2), 2, Some(3)),
            op(cas_failed(Some(3), Some(1)), 4, Some(5)),
        ];
        let concurrent = [
            op(OpKind::Write(1), 0, Some(1)),
            op(OpKind::Write(2), 2, Some(6)),
            op(cas_failed(Some(3), Some(1)), 3, Some(4)),
        ];
        assert!(!is_linearizable(&equal));
        assert!(!is_linearizable(&stale));
        assert!(is_linearizable(&concurrent));
    }

    #[test]
    fn cas_with_unknown_outcome_may_or_may_not_apply() {
        let applied = [
            op(OpKind::Write(1), 0, Some(1)),
            op(cas(Some(1), 2), 2, None),
            op(OpKind::Read(Some(2)), 5, Some(6)),
        ];
        let not_applied = [
            op(OpKind::Write(1), 0, Some(1)),
            op(cas(Some(1), 2), 2, None),
            op(OpKind::Read(Some(1)), 5, Some(6)),
        ];
        // It cannot have applied against a value the register no longer held.
        let impossible = [
            op(OpKind::Write(1), 0, Some(1)),
            op(OpKind::Write(3), 2, Some(3)),
            op(cas(Some(1), 2), 4, None),
            op(OpKind::Read(Some(2)), 5, Some(6)),
        ];
        assert!(is_linearizable(&applied));
        assert!(is_linearizable(&not_applied));
        assert!(!is_linearizable(&impossible));
    }
}
