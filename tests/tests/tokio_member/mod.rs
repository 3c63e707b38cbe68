//! The member task of `tokio_runtime.rs`: one core, carried out on tokio (see that file's
//! documentation; split out to keep each file about one thing).

use super::*;

/// One member's runtime: the core, the watch hub it serves watches from, the clients waiting.
pub(super) struct Shell {
    pub(super) server: Member,
    pub(super) hub: WatchHub,
    /// Its own inbox, for results of work it runs elsewhere (bcrypt, reopening the state).
    pub(super) inbox: mpsc::UnboundedSender<Input>,
    pub(super) wire: mpsc::UnboundedSender<Wire>,
    /// The process's clock origin: the core's time is milliseconds since it, monotonic.
    pub(super) epoch: Instant,
    pub(super) next_request: RequestId,
    pub(super) waiting: BTreeMap<RequestId, oneshot::Sender<ClientResponse>>,
    /// Requests other members forwarded here, by this member's request ID: who asked, with
    /// which request ID and attempt.
    pub(super) forwarded: BTreeMap<RequestId, (u64, RequestId, u64)>,
    pub(super) watch_streams: BTreeMap<StreamId, mpsc::UnboundedSender<WatchResponse>>,
    pub(super) snapshots_installed: u64,
}

impl Shell {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The member's loop. Returns its disk when it crashes, or the error that stopped it.
    pub(super) async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Input>,
    ) -> Result<Disk, Fatal> {
        loop {
            // Sleep until an input or the core's next deadline, whichever comes first.
            let wake = self.epoch + Duration::from_millis(self.server.poll_timeout());
            let first = tokio::select! {
                input = inbox.recv() => input,
                () = sleep_until(wake) => None,
            };
            // Feed every input that is there, then do the work they made in one turn.
            let mut next = first;
            while let Some(input) = next {
                if matches!(input, Input::Crash) {
                    let (storage, backend) = self.server.into_storage();
                    return Ok(Disk { storage, backend });
                }
                self.on_input(input)?;
                next = inbox.try_recv().ok();
            }
            // While the state reopens there is none to report progress from.
            if self.server.handle_timeout(self.now_ms())
                && let Some(state) = self.server.state()
            {
                self.hub.tick(&state.mvcc);
            }
            self.process()?;
        }
    }

    fn on_input(&mut self, input: Input) -> Result<(), Fatal> {
        match input {
            Input::Raft(message) => self.server.step(message),
            Input::Unreachable(peer) => self.server.report_unreachable(peer),
            Input::SnapshotSent { to, delivered } => self.server.report_snapshot(to, delivered),
            Input::Client(request, reply) => {
                let id = self.next_request;
                self.next_request += 1;
                self.waiting.insert(id, reply);
                self.server.request(id, request);
            }
            Input::WatchOpen(responses, reply) => {
                let stream = self.hub.open_stream();
                self.watch_streams.insert(stream, responses);
                let _ = reply.send(stream);
            }
            // No auth in this cluster: no token, no certificate name.
            Input::Watch(stream, request) => {
                self.server
                    .watch_request(&mut self.hub, stream, ("", "", None), request)
            }
            Input::PasswordDone(done) => self.server.password_done(done),
            Input::StateOpened(opened) => self.server.state_opened(*opened, &mut self.hub)?,
            Input::Forwarded {
                from,
                id,
                attempt,
                request,
            } => {
                let here = self.next_request;
                self.next_request += 1;
                self.forwarded.insert(here, (from, id, attempt));
                self.server.forwarded_request(here, from, request);
            }
            Input::ForwardAnswer {
                id,
                attempt,
                answer,
            } => self.server.forward_answered(id, attempt, answer),
            Input::Status(reply) => {
                let _ = reply.send(Status {
                    leader: self.server.leader(),
                    // No revision to report while the state reopens.
                    revision: self
                        .server
                        .state()
                        .map_or(0, |state| state.mvcc.current_revision()),
                    snapshots_installed: self.snapshots_installed,
                });
            }
            Input::Crash => unreachable!("handled by the loop"),
        }
        Ok(())
    }

    /// Carries out the core's raft work, in the order `RaftWork` prescribes.
    fn process(&mut self) -> Result<(), Fatal> {
        // Entries that waited for the state to reopen, when no raft work comes to carry them.
        if self.server.has_entries_to_apply() {
            self.server.apply_waiting()?;
            self.deliver()?;
        }
        while let Some(work) = self.server.ready() {
            let RaftWork {
                messages,
                snapshot,
                entries,
                hard_state,
                must_sync: _, // memory is as durable as this store gets
                persisted_messages,
            } = work;
            // 1. Messages may leave before the write (raft lets the leader persist in
            //    parallel with replication).
            self.send(messages);
            // 2. Persist: the leader's snapshot first, then entries, then the hard state.
            let storage = self.server.raft_storage_mut();
            if let Some(snapshot) = snapshot {
                storage.apply_snapshot(snapshot)?;
            }
            storage.append(&entries)?;
            if let Some(hard_state) = hard_state {
                storage.set_hard_state(hard_state);
            }
            // 3. Only now the acknowledgements: they promise the write above is durable.
            self.send(persisted_messages);
            // 4. Apply what was committed; answers and events come out as outputs.
            self.server.advance()?;
            self.deliver()?;
        }
        // Outputs of inputs that made no raft work (local answers, refusals).
        self.deliver()?;
        self.serve_watchers()
    }

    fn send(&self, messages: Vec<Message>) {
        for message in messages {
            let _ = self.wire.send(Wire::Send(message));
        }
    }

    /// Carries out every output the core produced.
    fn deliver(&mut self) -> Result<(), Fatal> {
        let outputs = self.server.take_outputs();
        // Before the batch's events: a watcher whose user lost permission gets none of them.
        self.server.recheck_watchers(&mut self.hub);
        for output in outputs {
            match output {
                Output::Respond { id, response } => {
                    if let Some((to, id, attempt)) = self.forwarded.remove(&id) {
                        let answer = Wire::Answer {
                            to,
                            id,
                            attempt,
                            response,
                        };
                        let _ = self.wire.send(answer);
                    } else if let Some(reply) = self.waiting.remove(&id) {
                        let _ = reply.send(response);
                    }
                }
                // Leader-only requests (lease keep-alive) go to the leader over the switch;
                // the core gives the attempt up on its own clock, so no timer here.
                Output::Forward {
                    id,
                    attempt,
                    to,
                    request,
                    timeout_ms: _,
                } => {
                    let from = self.server.member_id();
                    let _ = self.wire.send(Wire::Forward {
                        from,
                        to,
                        id,
                        attempt,
                        request,
                    });
                }
                Output::Events { events, .. } => self.hub.notify(&events),
                // Configuration and snapshots belong to the raft log storage.
                Output::ConfState(conf_state) => {
                    self.server.raft_storage_mut().set_conf_state(conf_state)
                }
                Output::Snapshot {
                    index,
                    conf_state,
                    data,
                    compact_to,
                } => {
                    let storage = self.server.raft_storage_mut();
                    storage.create_snapshot(index, Some(conf_state), data)?;
                    if compact_to >= storage.first_index()? {
                        storage.compact(compact_to)?;
                    }
                }
                // O(keys): on a blocking thread over a snapshot of the backend, never here.
                Output::OpenState(job) => {
                    let txn = self.server.backend().read_txn()?;
                    let inbox = self.inbox.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = inbox.send(Input::StateOpened(Box::new(job.run(&txn, None))));
                    });
                }
                // The key space jumped (the core had the hub's watchers catch up from it).
                Output::SnapshotInstalled { .. } => self.snapshots_installed += 1,
                // Snapshot data travels inside raft's message here: nothing kept beside it.
                Output::SnapshotRefused { .. } => {}
                Output::LeaderChanged { leader, term } => {
                    eprintln!(
                        "n{}: leader {leader} at term {term}",
                        self.server.member_id()
                    )
                }
                // Out of the cluster: the member stops, as etcd's does.
                Output::Removed => return Err("removed from the cluster".into()),
                // A memory backend has no free space to give back: the copy is done at once.
                Output::Defragment { id } => self.server.defragment_done(id, Ok(())),
                // Slow by design: off the loop, and always back, or the client never hears.
                Output::PasswordWork(work) => {
                    let inbox = self.inbox.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = inbox.send(Input::PasswordDone(work.run()));
                    });
                }
            }
        }
        Ok(())
    }

    /// Catches up watchers that fell behind (a bounded batch per turn), then hands every
    /// stream its responses (headers filled in by the core). These channels are unbounded; a
    /// runtime with back-pressure gives `take_watch_responses` the room its stream has instead.
    fn serve_watchers(&mut self) -> Result<(), Fatal> {
        if let Some(state) = self.server.state()
            && self.hub.unsynced_watchers() > 0
        {
            let txn = self.server.backend().read_txn()?;
            self.hub.sync(&state.mvcc, &txn)?;
        }
        for stream in self.hub.streams_with_responses() {
            let responses = self
                .server
                .take_watch_responses(&mut self.hub, stream, usize::MAX);
            let open = self
                .watch_streams
                .get(&stream)
                .is_some_and(|sink| responses.into_iter().all(|r| sink.send(r).is_ok()));
            if !open {
                self.hub.close_stream(stream);
                self.watch_streams.remove(&stream);
            }
        }
        Ok(())
    }
}
