//! Applying committed raft entries: client and internal requests go to the application state,
//! version entries to the version negotiator, conf changes to raft and the members table; the
//! proposing member's waiting clients get their answers. Everything happens in one write
//! transaction that also records the applied index, so an entry is applied exactly once even
//! across a crash. [`Applier`] borrows the whole server but its backend, so that transaction
//! can be the backend's own or the shell's.

use prost::Message as _;
use qraft_proto::etcdserverpb::ResponseHeader;
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::qraftpb::{ConfChangeContext, InternalRequest, MemberRecord};
use qraft_proto::raftpb::{ConfChange, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType};

use crate::backend::{Backend, Table, WriteTxn, meta};
use crate::error::{Error, Result};
use crate::raft::{ConfChangeProposal, RawNode, Storage};
use crate::version::VersionNegotiator;

use super::apply::{ApplyContext, set_header};
use super::config::ServerConfig;
use super::output::Output;
use super::pending::Pending;
use super::publish::is_own_attrs;
use super::response::{error_response, header, ok_response};
use super::state::AppState;
use super::state_machine::Server;
use super::stats::ServerStats;
use super::version::{apply_version_entry, is_version_request};

/// What applying entries touches: the whole server but its backend, so that a transaction
/// borrowed from the backend (or the shell's own) can be open meanwhile.
pub(super) struct Applier<'a, S: Storage> {
    config: &'a ServerConfig,
    node: &'a mut RawNode<S>,
    state: &'a mut AppState,
    versions: &'a mut VersionNegotiator,
    pending: &'a mut Pending,
    outputs: &'a mut Vec<Output>,
    attrs_applied: &'a mut bool,
    stats: &'a mut ServerStats,
    now_ms: u64,
    term: u64,
}

impl<S: Storage> Applier<'_, S> {
    /// Applies `entries` in `txn`, with the applied index; the caller commits `txn` before the
    /// responses pushed to `outputs` here are delivered.
    pub(super) fn apply_entries<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        entries: &[Entry],
    ) -> Result<()> {
        // (client, result, store revision right after its entry): a response names the
        // revision its own write produced, as etcd's do, not the revision at the end of the
        // batch (clients watch from it and compare it with the key's mod revision).
        let mut responses = Vec::new();
        let mut last = (self.state.applied_index, self.state.applied_term);
        for entry in entries {
            if entry.index <= self.state.applied_index {
                continue; // already in the backend (restart replays from the raft log)
            }
            last = (entry.index, entry.term);
            match EntryType::try_from(entry.r#type) {
                Ok(EntryType::EntryNormal) => {
                    if entry.data.is_empty() {
                        continue; // a new leader's empty entry
                    }
                    let Ok(request) = InternalRequest::decode(entry.data.as_ref()) else {
                        tracing::warn!(index = entry.index, "undecodable entry skipped");
                        continue;
                    };
                    self.versions.check_entry(entry.index, &request)?;
                    if is_version_request(&request) {
                        let rejected = apply_version_entry(self.versions, txn, &request)?;
                        if let Some(pending) = self.pending.proposals.remove(&request.id)
                            && let Some(client) = pending.client
                        {
                            let revision = self.state.mvcc.current_revision();
                            responses.push((
                                client,
                                rejected.map_or(Ok(pending.reply), Err),
                                revision,
                            ));
                        }
                        continue;
                    }
                    *self.attrs_applied |= is_own_attrs(self.config, &request);
                    let ctx = ApplyContext {
                        index: entry.index,
                        term: entry.term,
                        now_ms: self.now_ms,
                    };
                    let outcome = self.state.apply(txn, &request, ctx)?;
                    if outcome.result.is_ok() {
                        match &request.request {
                            Some(Request::LeaseGrant(_)) => self.stats.leases_granted += 1,
                            Some(Request::LeaseRevoke(_)) => self.stats.leases_revoked += 1,
                            _ => {}
                        }
                    }
                    if !outcome.events.is_empty() {
                        self.outputs.push(Output::Events {
                            revision: self.state.mvcc.current_revision(),
                            events: outcome.events,
                        });
                    }
                    if let Some(pending) = self.pending.proposals.remove(&request.id)
                        && let Some(client) = pending.client
                    {
                        let result = match (pending.reply, outcome.result) {
                            (Some(reply), Ok(_)) => Ok(Some(reply)),
                            (_, result) => result,
                        };
                        match (result, pending.sign_in_retry) {
                            // Users or roles changed after the password was checked: check
                            // it again (after the batch) instead of failing the client.
                            (Err(Error::AuthOldRevision), Some(retry)) => {
                                self.pending.sign_in_retries.push((client, retry));
                            }
                            (result, _) => {
                                responses.push((client, result, self.state.mvcc.current_revision()))
                            }
                        }
                    }
                }
                Ok(EntryType::EntryConfChange) => {
                    let Ok(cc) = ConfChange::decode(entry.data.as_ref()) else {
                        continue;
                    };
                    let applied =
                        apply_conf_change(self.node, txn, ConfChangeProposal::V1(cc.clone()))?;
                    let result = match applied {
                        Some(conf_state) => {
                            self.configuration_applied(conf_state);
                            record_member_change(
                                self.state,
                                txn,
                                cc.r#type(),
                                cc.node_id,
                                &cc.context,
                            )?;
                            self.versions
                                .set_members(self.state.members.keys().copied());
                            self.pending
                                .member_changes
                                .remove(&cc.id)
                                .map(|change| self.state.member_change_response(change))
                                .ok_or(Error::NotCapable)
                                .map(Some)
                        }
                        None => Err(Error::MemberNotEnoughStarted),
                    };
                    if let Some(pending) = self.pending.proposals.remove(&cc.id)
                        && let Some(client) = pending.client
                    {
                        responses.push((client, result, self.state.mvcc.current_revision()));
                    }
                }
                Ok(EntryType::EntryConfChangeV2) => {
                    let Ok(cc) = ConfChangeV2::decode(entry.data.as_ref()) else {
                        continue;
                    };
                    let Some(conf_state) =
                        apply_conf_change(self.node, txn, ConfChangeProposal::V2(cc.clone()))?
                    else {
                        continue;
                    };
                    self.configuration_applied(conf_state);
                    for change in &cc.changes {
                        record_member_change(
                            self.state,
                            txn,
                            change.r#type(),
                            change.node_id,
                            &cc.context,
                        )?;
                    }
                    self.versions
                        .set_members(self.state.members.keys().copied());
                }
                Err(_) => {}
            }
        }
        meta::put_u64(txn, meta::CONSISTENT_INDEX, last.0)?;
        meta::put_u64(txn, meta::TERM, last.1)?;
        self.state.applied_index = last.0;
        self.state.applied_term = last.1;
        let header = self.header();
        for (client, result, revision) in responses {
            let response = match result {
                Ok(Some(mut response)) => {
                    set_header(&mut response, ResponseHeader { revision, ..header });
                    ok_response(response)
                }
                Ok(None) => continue,
                Err(err) => error_response(&err, 0),
            };
            self.outputs.push(Output::Respond {
                id: client,
                response,
            });
        }
        Ok(())
    }

    /// A configuration now in force: the shell persists it; one that leaves this member out
    /// means it was removed, and the shell stops it.
    fn configuration_applied(&mut self, conf_state: ConfState) {
        let removed = leaves_out(&conf_state, self.config.member_id);
        self.outputs.push(Output::ConfState(conf_state));
        if removed {
            self.outputs.push(Output::Removed);
        }
    }

    fn header(&self) -> qraft_proto::etcdserverpb::ResponseHeader {
        header(
            self.config.cluster_id,
            self.config.member_id,
            self.state.mvcc.current_revision(),
            self.term,
        )
    }
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Splits the server into its backend and the rest, for applying entries in a transaction
    /// of that backend.
    pub(super) fn applier(&mut self) -> (&B, Applier<'_, S>) {
        (
            &self.backend,
            Applier {
                config: &self.config,
                node: &mut self.node,
                state: &mut self.state,
                versions: &mut self.versions,
                pending: &mut self.pending,
                outputs: &mut self.outputs,
                attrs_applied: &mut self.attrs_applied,
                stats: &mut self.stats,
                now_ms: self.now_ms,
                term: self.leadership.term(),
            },
        )
    }
}

/// Applies a committed conf change to raft and stores the configuration now in force.
/// A change raft refuses (it would be unsafe in the current configuration) is skipped on
/// every member alike: `Ok(None)`.
fn apply_conf_change<S: Storage, T: WriteTxn + ?Sized>(
    node: &mut RawNode<S>,
    txn: &mut T,
    cc: ConfChangeProposal,
) -> Result<Option<ConfState>> {
    let conf_state = match node.apply_conf_change(&cc) {
        Ok(conf_state) => conf_state,
        Err(err) => {
            tracing::warn!(%err, "committed conf change refused by raft; skipped");
            return Ok(None);
        }
    };
    txn.put(Table::Meta, meta::CONF_STATE, &conf_state.encode_to_vec())?;
    Ok(Some(conf_state))
}

/// Whether a configuration leaves `me` out (an empty one, before any is known, does not).
fn leaves_out(conf_state: &ConfState, me: u64) -> bool {
    let in_config = conf_state
        .voters
        .iter()
        .chain(&conf_state.learners)
        .chain(&conf_state.voters_outgoing)
        .chain(&conf_state.learners_next)
        .any(|&id| id == me);
    !in_config && !conf_state.voters.is_empty()
}

/// Keeps the members table in step with the configuration: the member record travels in
/// the conf change's context (`qraftpb.ConfChangeContext`).
fn record_member_change<T: WriteTxn + ?Sized>(
    state: &mut AppState,
    txn: &mut T,
    kind: ConfChangeType,
    node_id: u64,
    context: &[u8],
) -> Result<()> {
    match kind {
        ConfChangeType::ConfChangeAddNode
        | ConfChangeType::ConfChangeAddLearnerNode
        | ConfChangeType::ConfChangeUpdateNode => {
            let member = ConfChangeContext::decode(context)
                .ok()
                .and_then(|ctx| ctx.member)
                .unwrap_or_default();
            state.put_member(
                txn,
                MemberRecord {
                    id: node_id,
                    ..member
                },
            )
        }
        ConfChangeType::ConfChangeRemoveNode => state.remove_member(txn, node_id),
    }
}
