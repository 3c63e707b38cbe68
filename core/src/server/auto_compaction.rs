//! etcd's auto compaction (`--auto-compaction-mode`, `--auto-compaction-retention`): the
//! leader compacts the key space on its own, as etcd's `v3compactor` does, by proposing a
//! compaction like a client's `Compact`.
//!
//! - **Periodic** (keep `retention` of history): every `retention / 10` (at most every 6
//!   minutes: the interval is capped at a tenth of an hour) every member samples the current
//!   revision and keeps the last `retention / interval + 1` samples, so the oldest sample is the
//!   revision seen `retention` ago. The leader compacts to that sample once `retention` has
//!   passed since the member started (or since its last compaction, `min(retention, 1h)` after
//!   the first one), unless it is the revision it compacted to last.
//! - **Revision** (keep `retention` revisions): every 5 minutes the leader compacts to
//!   `current − retention` when that is positive and not the revision it compacted to last.
//!
//! A member that is not the leader keeps sampling but compacts nothing (etcd pauses its
//! compactor). A compaction counts as done when this member's compaction point reaches its
//! revision — also when someone else compacted further meanwhile, which etcd counts as done
//! too; one not done within the request timeout counts as failed and is tried again at the
//! next interval. Time is the ticks' `now_ms`, so none of this reads a clock.

use std::collections::VecDeque;

use qraft_proto::etcdserverpb::CompactionRequest;
use qraft_proto::qraftpb::internal_request::Request;

use crate::backend::Backend;
use crate::raft::Storage;

use super::state_machine::Server;

/// How much history the leader keeps (`--auto-compaction-mode` and its retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// `periodic`: keep `retention_ms` of history.
    Periodic { retention_ms: u64 },
    /// `revision`: keep the last `retention` revisions.
    Revision { retention: i64 },
}

/// etcd's revision-mode interval.
pub const REVISION_MODE_INTERVAL_MS: u64 = 5 * 60 * 1000;
/// The periodic mode's interval is a tenth of the retention, the retention capped at an hour.
const PERIOD_CAP_MS: u64 = 60 * 60 * 1000;
const SAMPLES_PER_PERIOD: u64 = 10;

impl AutoCompaction {
    /// How often the compactor wakes: to sample (periodic) or to compact (revision).
    fn interval_ms(self) -> u64 {
        match self {
            AutoCompaction::Periodic { retention_ms } => {
                (retention_ms.min(PERIOD_CAP_MS) / SAMPLES_PER_PERIOD).max(1)
            }
            AutoCompaction::Revision { .. } => REVISION_MODE_INTERVAL_MS,
        }
    }
}

/// A compaction this member proposed and has not seen applied yet.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    revision: i64,
    proposed_ms: u64,
}

/// The compactor's schedule and memory (not replicated: a restarted member starts afresh, as
/// etcd's compactor does).
#[derive(Debug)]
pub(crate) struct AutoCompactor {
    mode: Option<AutoCompaction>,
    /// When the compactor next wakes; `None` until the first tick.
    next_wake_ms: Option<u64>,
    /// Periodic: the sampled revisions, oldest first.
    samples: VecDeque<i64>,
    /// Periodic: the time to wait after `last_done_ms` before compacting (the retention at
    /// first, then at most an hour).
    wait_ms: u64,
    last_done_ms: u64,
    /// The revision last compacted to (0 = none yet).
    last_revision: i64,
    in_flight: Option<InFlight>,
}

impl AutoCompactor {
    pub(crate) fn new(mode: Option<AutoCompaction>) -> Self {
        let wait_ms = match mode {
            Some(AutoCompaction::Periodic { retention_ms }) => retention_ms,
            _ => 0,
        };
        Self {
            mode,
            next_wake_ms: None,
            samples: VecDeque::new(),
            wait_ms,
            last_done_ms: 0,
            last_revision: 0,
            in_flight: None,
        }
    }
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Called on every tick: settles the compaction in flight, and when the compactor is due,
    /// samples the revision and (as leader) proposes the next compaction.
    pub(super) fn auto_compaction_tick(&mut self) {
        let Some(mode) = self.auto_compactor.mode else {
            return;
        };
        let now = self.now_ms;
        let current = self.state.mvcc.current_revision();
        self.settle_auto_compaction(mode);
        let Some(wake) = self.auto_compactor.next_wake_ms else {
            // Started: the first sample, and the periodic wait counts from now.
            let compactor = &mut self.auto_compactor;
            compactor.next_wake_ms = Some(now.saturating_add(mode.interval_ms()));
            compactor.last_done_ms = now;
            compactor.samples.push_back(current);
            return;
        };
        if now < wake {
            return;
        }
        self.auto_compactor.next_wake_ms = Some(now.saturating_add(mode.interval_ms()));
        if let Some(revision) = self.auto_compaction_due(mode, current) {
            self.start_auto_compaction(mode, revision);
        }
        if let AutoCompaction::Periodic { retention_ms } = mode {
            let compactor = &mut self.auto_compactor;
            compactor.samples.push_back(current);
            let keep = retention_ms / mode.interval_ms() + 1;
            while compactor.samples.len() as u64 > keep {
                compactor.samples.pop_front();
            }
        }
    }

    /// The revision to compact to now, if any.
    fn auto_compaction_due(&mut self, mode: AutoCompaction, current: i64) -> Option<i64> {
        if !self.is_leader() || self.auto_compactor.in_flight.is_some() {
            return None;
        }
        let compactor = &mut self.auto_compactor;
        match mode {
            AutoCompaction::Periodic { retention_ms } => {
                let revision = *compactor.samples.front()?;
                let waited = self.now_ms.saturating_sub(compactor.last_done_ms);
                if waited < compactor.wait_ms || revision == compactor.last_revision {
                    return None;
                }
                compactor.wait_ms = retention_ms.min(PERIOD_CAP_MS);
                Some(revision)
            }
            AutoCompaction::Revision { retention } => {
                let revision = current.saturating_sub(retention);
                (revision > 0 && revision != compactor.last_revision).then_some(revision)
            }
        }
    }

    fn start_auto_compaction(&mut self, mode: AutoCompaction, revision: i64) {
        log_starting(mode, revision);
        let request = Request::Compaction(CompactionRequest {
            revision,
            physical: false,
        });
        match self.propose(None, request, crate::auth::ROOT.to_string()) {
            Ok(()) => {
                self.auto_compactor.in_flight = Some(InFlight {
                    revision,
                    proposed_ms: self.now_ms,
                })
            }
            Err((err, _)) => log_failed(mode, revision, &err.to_string()),
        }
    }

    /// Done once the compaction point reached the revision; failed after the request timeout.
    fn settle_auto_compaction(&mut self, mode: AutoCompaction) {
        let Some(in_flight) = self.auto_compactor.in_flight else {
            return;
        };
        let took_ms = self.now_ms.saturating_sub(in_flight.proposed_ms);
        if self.state.mvcc.compact_revision() >= in_flight.revision {
            log_completed(mode, in_flight.revision, took_ms);
            let compactor = &mut self.auto_compactor;
            compactor.in_flight = None;
            compactor.last_revision = in_flight.revision;
            compactor.last_done_ms = self.now_ms;
        } else if took_ms >= self.config.request_timeout_ms {
            log_failed(mode, in_flight.revision, "not applied in time");
            self.auto_compactor.in_flight = None;
        }
    }
}

// etcd's log lines (zap messages and fields of its v3compactor).

fn log_starting(mode: AutoCompaction, revision: i64) {
    match mode {
        AutoCompaction::Periodic { retention_ms } => tracing::info!(
            revision,
            compact_period_ms = retention_ms,
            "starting auto periodic compaction"
        ),
        AutoCompaction::Revision { retention } => tracing::info!(
            revision,
            revision_compaction_retention = retention,
            "starting auto revision compaction"
        ),
    }
}

fn log_completed(mode: AutoCompaction, revision: i64, took_ms: u64) {
    match mode {
        AutoCompaction::Periodic { retention_ms } => tracing::info!(
            revision,
            compact_period_ms = retention_ms,
            took_ms,
            "completed auto periodic compaction"
        ),
        AutoCompaction::Revision { retention } => tracing::info!(
            revision,
            revision_compaction_retention = retention,
            took_ms,
            "completed auto revision compaction"
        ),
    }
}

fn log_failed(mode: AutoCompaction, revision: i64, error: &str) {
    let retry_interval_ms = mode.interval_ms();
    match mode {
        AutoCompaction::Periodic { retention_ms } => tracing::warn!(
            revision,
            compact_period_ms = retention_ms,
            retry_interval_ms,
            error,
            "failed auto periodic compaction"
        ),
        AutoCompaction::Revision { retention } => tracing::warn!(
            revision,
            revision_compaction_retention = retention,
            retry_interval_ms,
            error,
            "failed auto revision compaction"
        ),
    }
}
