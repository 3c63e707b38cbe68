//! The leader's view of one follower's log, and the flow-control state machine.

use super::inflights::Inflights;
use std::fmt;

/// How the leader currently sends entries to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// The follower's match point is unknown: send at most one append per heartbeat interval
    /// and walk `next` back on rejections.
    Probe,
    /// The follower is known to match up to `matched`: stream appends optimistically, bounded by
    /// the in-flight window.
    Replicate,
    /// The follower needs a snapshot; nothing is sent until it reports the snapshot's outcome.
    Snapshot,
}

impl fmt::Display for ProgressState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Probe => "probe",
            Self::Replicate => "replicate",
            Self::Snapshot => "snapshot",
        };
        f.write_str(s)
    }
}

/// Invariant: `matched < next`.
#[derive(Debug, Clone)]
pub struct Progress {
    pub matched: u64,
    pub next: u64,
    pub state: ProgressState,
    /// In `Snapshot` state: the index of the snapshot being sent.
    pub pending_snapshot: u64,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// In `Probe` state: an append is outstanding, wait for a response or heartbeat.
    pub msg_app_flow_paused: bool,
    pub inflights: Inflights,
    pub is_learner: bool,
}

impl Progress {
    pub fn new(next: u64, max_inflight: usize, max_inflight_bytes: u64) -> Self {
        Self {
            matched: 0,
            next,
            state: ProgressState::Probe,
            pending_snapshot: 0,
            recent_active: false,
            msg_app_flow_paused: false,
            inflights: Inflights::new(max_inflight, max_inflight_bytes),
            is_learner: false,
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.msg_app_flow_paused = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.inflights.reset();
    }

    pub fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            let pending = self.pending_snapshot;
            self.reset_state(ProgressState::Probe);
            self.next = (self.matched + 1).max(pending + 1);
        } else {
            self.reset_state(ProgressState::Probe);
            self.next = self.matched + 1;
        }
    }

    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next = self.matched + 1;
    }

    pub fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
    }

    /// Records that an append carrying entries up to `last_index` (0 entries: `None`) was sent.
    pub fn sent_entries(&mut self, last_index: Option<u64>, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if let Some(last) = last_index {
                    self.next = last + 1;
                    self.inflights.add(last, bytes);
                }
            }
            ProgressState::Probe => self.msg_app_flow_paused = true,
            ProgressState::Snapshot => {}
        }
    }

    /// An acknowledgement up to `index` arrived. Returns whether it told us something new.
    pub fn maybe_update(&mut self, index: u64) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.msg_app_flow_paused = false;
        }
        self.next = self.next.max(index + 1);
        updated
    }

    /// A rejection of the append at `rejected` arrived with the follower's hint. Returns false if
    /// it is stale (out of order) and must be ignored.
    pub fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
            self.next = self.matched + 1;
            return true;
        }
        if self.next == 0 || self.next - 1 != rejected {
            return false;
        }
        self.next = (rejected.min(match_hint + 1)).max(self.matched + 1).max(1);
        self.msg_app_flow_paused = false;
        true
    }

    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.msg_app_flow_paused,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot => true,
        }
    }
}
