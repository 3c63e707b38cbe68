//! Delivering what the core produced: answers to their requesters, watch events to the watch
//! hub and its responses to their streams, configurations and snapshots to storage, leader
//! changes to the metrics, password work to its threads, and the member's state to
//! [`NodeInfo`](super::NodeInfo) readers.

use std::collections::HashMap;
use std::time::Duration;

use futures::channel::oneshot;
use qraft_core::server::{Output, RequestId};
use qraft_proto::qraftpb::ClientResponse;

use super::handle::DriverError;
use super::persist;
use super::run::Loop;
use super::storage_contract::{DriverBatch, DriverStorage};

/// Sends every `Respond` of `outputs` to its waiting requester, keeping the other outputs.
pub(super) fn release_responses(
    waiting: &mut HashMap<RequestId, oneshot::Sender<ClientResponse>>,
    outputs: &mut Vec<Output>,
) {
    outputs.retain_mut(|output| {
        let Output::Respond { id, response } = output else {
            return true;
        };
        if let Some(reply) = waiting.remove(id) {
            let _ = reply.send(std::mem::take(response));
        }
        false
    });
}

impl<S: DriverStorage> Loop<'_, S> {
    /// Delivers the outputs the core produced since the last call; returns whether the
    /// configuration changed.
    pub(super) fn deliver_outputs(&mut self) -> Result<bool, DriverError> {
        let outputs = self.server.take_outputs();
        self.deliver(outputs)
    }

    /// Returns whether the configuration changed.
    pub(super) fn deliver(&mut self, outputs: Vec<Output>) -> Result<bool, DriverError> {
        let mut conf_changed = false;
        // Before any event of the batch: a watcher whose user lost its permission in it gets
        // nothing more.
        self.server.recheck_watchers(&mut self.hub);
        if outputs
            .iter()
            .any(|o| matches!(o, Output::ConfState(_) | Output::Snapshot { .. }))
        {
            // They are written outside the held batch.
            self.backend.held().commit()?;
        }
        for output in outputs {
            match output {
                Output::Respond { id, response } => {
                    if let Some(reply) = self.waiting.remove(&id) {
                        let _ = reply.send(response);
                    }
                }
                Output::Events { events, .. } => {
                    self.metrics.events(&events);
                    self.hub.notify(&events);
                }
                Output::ConfState(conf_state) => {
                    self.storage
                        .write(|batch| batch.set_conf_state(&conf_state))?;
                    conf_changed = true;
                }
                Output::Removed => self.removed = true,
                Output::Snapshot {
                    index,
                    conf_state,
                    compact_to,
                    ..
                } => persist::store_snapshot(self.storage, index, &conf_state, compact_to)?,
                Output::OpenState(job) => {
                    tracing::info!(
                        index = job.index(),
                        "installed the leader's snapshot; reopening the state off the loop"
                    );
                    self.state_opener.submit(self.storage, job);
                }
                Output::SnapshotInstalled {
                    index,
                    revision,
                    live_keys,
                } => {
                    tracing::info!(index, revision, "the leader's snapshot is in place");
                    self.metrics.rebase_keys(live_keys);
                }
                Output::SnapshotRefused { index } => {
                    tracing::info!(
                        index,
                        "refused a snapshot from the leader (already caught up)"
                    );
                    self.storage.discard_received_snapshots(index);
                }
                Output::PasswordWork(work) => self.passwords.submit(work),
                Output::Defragment { id } => self.start_defrag(id),
                Output::Forward {
                    id,
                    attempt,
                    to,
                    request,
                    timeout_ms,
                } => {
                    self.forwarder
                        .send(id, attempt, to, request, Duration::from_millis(timeout_ms))
                }
                Output::LeaderChanged { leader, term } => {
                    self.metrics.leader_changed(leader, self.server.member_id());
                    tracing::info!(leader = format_args!("{leader:x}"), term, "leader changed");
                }
            }
        }
        Ok(conf_changed)
    }

    pub(super) fn sync_watchers(&mut self) -> Result<(), DriverError> {
        // While the state reopens there is none to catch up from.
        if let Some(state) = self.server.state()
            && self.hub.unsynced_watchers() > 0
        {
            let view = self.backend.held().view()?;
            self.hub.sync(&state.mvcc, &view)?;
        }
        for stream in self.hub.streams_with_responses() {
            let Some(sink) = self.watch_streams.get(&stream) else {
                self.hub.close_stream(stream);
                continue;
            };
            // No more than the stream (and its connection) has room for: the rest waits in
            // the hub, whose watchers fall back to catching up once its queue is full.
            let room = sink.room();
            let responses = self
                .server
                .take_watch_responses(&mut self.hub, stream, room);
            if self.hub.has_responses(stream) {
                sink.held_back();
            }
            if responses.is_empty() {
                continue;
            }
            let events = responses.iter().map(|r| r.events.len()).sum();
            let gone = match self.watch_streams.get(&stream) {
                Some(sink) => sink.send(responses).is_err(),
                None => true,
            };
            if !gone {
                self.metrics.watch_events_sent(events);
            }
            if gone {
                self.hub.close_stream(stream);
                self.watch_streams.remove(&stream);
            }
        }
        Ok(())
    }

    /// Raft's side always; the state's side only while there is one (while it reopens after
    /// a snapshot, readers keep the last one published).
    pub(super) fn publish_info(&self) {
        let state = self.server.state();
        let me = self.server.member_id();
        let leader_changes = self.server.stats().leader_changes;
        let versions = self.server.versions().report();
        self.info.update(|i| {
            i.member_id = me;
            i.cluster_id = self.config.server.cluster_id;
            i.leader = self.server.leader();
            i.term = self.server.term();
            i.committed_index = self.server.committed_index();
            i.leader_changes = leader_changes;
            i.versions = Some(versions);
            if let Some(state) = state {
                i.applied_index = self.server.applied_index();
                i.revision = state.mvcc.current_revision();
                i.compact_revision = state.mvcc.compact_revision();
                i.is_learner = self.server.is_learner();
                i.published = self.server.attributes_published();
                i.alarms = self.server.alarms();
            }
        });
    }
}
