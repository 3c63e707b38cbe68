//! The corruption check (etcd's `--experimental-initial-corrupt-check` and
//! `--experimental-corrupt-check-time`), through raft instead of peer HTTP requests.
//!
//! A member proposes its hash of the key space up to its current revision
//! (`HashCheckRequest`): the leader every `corrupt_check_ticks`, and any member once after it
//! starts when `initial_corrupt_check` is set. Every member applying that entry hashes its own
//! key space up to the same revision. All members apply the same log, so at that entry they
//! hold the same history and — compactions being entries too — the same compaction point; a
//! hash that differs at the same compaction point means a member's stored data changed
//! outside raft. The member that finds the difference raises CORRUPT through raft.
//!
//! Which member is wrong cannot be told from one comparison (the proposer may be the corrupt
//! one), so the alarm names member 0, as etcd 3.5 does for its corruption alarm; both members
//! are named in the log. Entries proposed with a compaction point that has moved since, or at a
//! revision a member has compacted, are not compared.
//!
//! The comparison changes no replicated state (the finding is local; the alarm it leads to is
//! a raft entry of its own), so applying the entry is deterministic whatever the hash says.

use qraft_proto::etcdserverpb::AlarmType;
use qraft_proto::qraftpb::HashCheckRequest;
use qraft_proto::qraftpb::internal_request::Request;

use crate::backend::{Backend, ReadTxn};
use crate::raft::Storage;

use super::state::AppState;
use super::state_machine::Server;

/// The alarm's member: the cluster, not one member (see the module documentation).
pub const CORRUPT_ALARM_MEMBER: u64 = 0;

#[derive(Debug, Default)]
pub(crate) struct CorruptCheck {
    /// Ticks since the leader last proposed its hash.
    ticks: u64,
    /// The start-up check is still to be proposed.
    initial_pending: bool,
}

impl CorruptCheck {
    pub fn new(initial: bool) -> Self {
        Self {
            ticks: 0,
            initial_pending: initial,
        }
    }
}

impl AppState {
    /// Compares this member's hash at the proposed revision with the proposer's.
    pub(crate) fn check_hash<T: ReadTxn + ?Sized>(&mut self, txn: &T, proposed: &HashCheckRequest) {
        let Ok(mine) = self.mvcc.hash_kv(txn, proposed.revision) else {
            return; // compacted or not yet written here: nothing to compare
        };
        if mine.compact_revision != proposed.compact_revision || mine.hash == proposed.hash {
            return;
        }
        tracing::error!(
            proposer = format_args!("{:x}", proposed.member_id),
            revision = proposed.revision,
            compact_revision = proposed.compact_revision,
            proposed_hash = proposed.hash,
            local_hash = mine.hash,
            "the key space differs from another member's at the same revision: data corruption"
        );
        self.hash_mismatch = true;
    }
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Proposes this member's hash when the check is due; raises CORRUPT after a mismatch.
    pub(crate) fn corrupt_tick(&mut self) {
        if self.leadership.leader() == 0 {
            return;
        }
        if self.state.hash_mismatch {
            // Also forgets the proposal in flight once the alarm is active, so a mismatch
            // found after a disarm raises it again at once.
            self.raise_alarm_for(CORRUPT_ALARM_MEMBER, AlarmType::Corrupt);
            if self
                .state
                .alarms
                .has(CORRUPT_ALARM_MEMBER, AlarmType::Corrupt)
            {
                self.state.hash_mismatch = false;
            }
        }
        let mut due = std::mem::take(&mut self.corrupt.initial_pending);
        if self.is_leader() && self.config.corrupt_check_ticks > 0 {
            self.corrupt.ticks += 1;
            if self.corrupt.ticks >= self.config.corrupt_check_ticks {
                self.corrupt.ticks = 0;
                due = true;
            }
        }
        if due {
            self.propose_hash();
        }
    }

    fn propose_hash(&mut self) {
        let hashed = self
            .backend
            .read_txn()
            .map_err(crate::error::Error::from)
            .and_then(|txn| self.state.mvcc.hash_kv(&txn, 0));
        let hashed = match hashed {
            Ok(hashed) => hashed,
            Err(err) => {
                tracing::warn!(%err, "cannot hash the key space for the corruption check");
                return;
            }
        };
        let request = Request::HashCheck(HashCheckRequest {
            member_id: self.config.member_id,
            revision: hashed.hash_revision,
            compact_revision: hashed.compact_revision,
            hash: hashed.hash,
        });
        let _ = self.propose(None, request, crate::auth::ROOT.to_string());
    }
}
