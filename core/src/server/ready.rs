//! The raft cycle as the shell drives it: [`Server::ready`] hands out the work (messages,
//! entries and hard state to persist, a snapshot to install, committed entries), the shell
//! carries it out, and [`Server::advance`] (or [`Server::advance_in`], inside the shell's own
//! transaction) applies what was committed and lets raft move on. Leadership changes seen in
//! a ready move lease tracking between members here.

use crate::backend::{Backend, WriteTxn};
use crate::error::Result;
use crate::raft::{StateRole, Storage};

use super::output::{Output, RaftWork};
use super::propose::read_ctx_round;
use super::state_machine::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// Raft work for the shell, if any (see [`RaftWork`] for the order to carry it out in).
    /// Call [`Server::advance`] once it is done.
    pub fn ready(&mut self) -> Option<RaftWork> {
        self.propose_accepted();
        if !self.node.has_ready() {
            return None;
        }
        let ready = self.node.ready();
        if let Some(soft) = ready.soft_state {
            self.on_soft_state(soft.leader_id, soft.role);
        }
        if let Some(hard) = &ready.hard_state {
            self.leadership.on_hard_state(hard.term, hard.commit);
        }
        if let Some((leader, term)) = self.leadership.take_change() {
            if leader != 0 {
                self.stats.leader_changes += 1;
            }
            self.outputs.push(Output::LeaderChanged { leader, term });
        }
        for read in &ready.read_states {
            if let Some(round) = read_ctx_round(self.config.member_id, &read.request_ctx) {
                self.read_round_done(round, read.index);
            }
        }
        // Entries held back by a pause wait in front of the new ones, in order.
        self.apply_queue
            .push_ready(ready.committed_entries, ready.snapshot.clone());
        Some(RaftWork {
            messages: ready.messages,
            snapshot: ready.snapshot,
            entries: ready.entries,
            hard_state: ready.hard_state,
            must_sync: ready.must_sync,
            persisted_messages: ready.persisted_messages,
        })
    }

    /// The shell has carried out the last [`RaftWork`]: apply the committed entries (one backend
    /// write transaction, with the applied index), serve reads that became possible, and let
    /// raft move on. A backend error is fatal for the member. A shell that called
    /// [`Server::advance_in`] for this work calls this after committing that transaction; the
    /// entries applied there are not applied again.
    pub fn advance(&mut self) -> Result<()> {
        if let Some(snapshot) = self.apply_queue.take_snapshot() {
            // Drops the state and asks the shell to reopen it (`super::reopen`).
            self.install_snapshot(&snapshot)?;
        }
        if self.apply_queue.is_held() {
            // Raft moves on (its log and messages do not need the backend); the committed
            // entries wait in the apply queue, and the reads that need them with them.
            self.node.advance();
            return Ok(());
        }
        self.apply_pending()?;
        self.node.advance();
        self.after_apply();
        Ok(())
    }

    /// After [`Server::defragment_done`] or [`Server::state_opened`]: applies the committed
    /// entries that waited (one backend
    /// write transaction) and serves what they made possible. No raft step; a shell whose
    /// next turn has no ready of its own calls this instead of waiting for one.
    pub fn apply_waiting(&mut self) -> Result<()> {
        if self.apply_queue.is_held() {
            return Ok(());
        }
        self.apply_pending()?;
        self.after_apply();
        Ok(())
    }

    /// Applies the waiting entries in one backend transaction, then the storage migration and the
    /// periodic snapshot if anything was applied (here or by `advance_in`).
    fn apply_pending(&mut self) -> Result<()> {
        let entries = self.apply_queue.take_entries();
        if !entries.is_empty() {
            let (backend, mut applier) = self.applier();
            let mut txn = backend.write_txn()?;
            applier.apply_entries(&mut txn, &entries)?;
            txn.commit()?;
            self.apply_queue.mark_applied();
            self.retry_sign_ins();
        }
        if self.apply_queue.take_applied() {
            self.migrate_storage()?;
            self.maybe_snapshot()?;
        }
        Ok(())
    }

    pub(super) fn after_apply(&mut self) {
        if self
            .leadership
            .lease_catch_up_done(self.state.applied_index)
        {
            // Checkpoints committed by the previous leader are applied only now; promoting
            // again starts every lease from its latest remainder (never earlier than now +
            // election timeout + remainder, so still no early expiry).
            self.state
                .lessor
                .promote(self.config.election_timeout_ms(), self.now_ms);
        }
        self.serve_reads();
        self.serve_token_waits();
        self.reroute_forwards();
    }

    /// Group commit: applies the committed entries of the last [`Server::ready`] inside the
    /// shell's own write transaction `txn` — the one that also persists that ready's entries
    /// and hard state — so a turn costs one commit (one fsync) instead of two. `txn` is a
    /// write transaction of the server's backend: every later read of the applied state goes
    /// through [`Backend::read_txn`], which sees it once committed (see the backend's
    /// contract; qraft-io's backend keeps it open across turns and reads through it). Then
    /// call [`Server::advance`]. A dropped (uncommitted) `txn` is a fatal error for the
    /// member: the in-memory state has already moved on.
    ///
    /// A ready that carries a snapshot from the leader is not applied here (installing it
    /// drops the state, which the shell then reopens off its loop: [`Output::OpenState`]):
    /// [`Server::advance`] installs it, and the entries wait for [`Server::state_opened`]. Atomicity makes applying in the appending transaction safe: the applied
    /// index and the entries it covers become durable together, or neither does.
    pub fn advance_in<T: WriteTxn + ?Sized>(&mut self, txn: &mut T) -> Result<()> {
        let entries = self.apply_queue.take_for_shell_txn();
        if entries.is_empty() {
            return Ok(());
        }
        self.applier().1.apply_entries(txn, &entries)?;
        self.apply_queue.mark_applied();
        self.retry_sign_ins();
        Ok(())
    }

    /// Whether committed entries wait to be applied at the next advance (none while applying
    /// is paused or the state reopens: they wait for [`Server::defragment_done`] or
    /// [`Server::state_opened`]).
    pub fn has_entries_to_apply(&self) -> bool {
        self.apply_queue.has_entries_to_apply()
    }

    fn on_soft_state(&mut self, leader: u64, role: StateRole) {
        let was_leader = self.is_leader();
        self.leadership.set_leader(leader);
        let is_leader = role == StateRole::Leader;
        if is_leader && !was_leader {
            // Clients get an election timeout to find the new leader before anything expires.
            self.state
                .lessor
                .promote(self.config.election_timeout_ms(), self.now_ms);
            self.schedule.next_lease_check_ms = self.now_ms;
            self.leadership
                .start_lease_catch_up(self.node.raft.raft_log.last_index());
        } else if !is_leader && was_leader {
            self.state.lessor.demote();
            self.leadership.end_lease_catch_up();
        }
        self.reissue_unanswered_reads();
    }
}
