//! One member's shell in the in-memory cluster: it carries out the member's raft work (persist,
//! then send) and its outputs as a real runtime does — configurations and snapshots into the
//! raft storage, worker jobs (bcrypt, reopening the state, defragmentation) run inline or held
//! as the script says, forwarded requests over the network — and prints the rest.

use std::fmt::Write as _;

use qraft_core::raft::Storage;
use qraft_core::server::Output;
use qraft_proto::qraftpb::ClientRequest;

use super::worker_jobs::open_state;
use super::{Cluster, FORWARDED_IDS};

impl Cluster {
    /// Runs member `id`'s raft work and carries out its outputs; returns whether anything
    /// moved.
    pub(super) fn run_member(&mut self, id: u64) -> bool {
        let mut moved = false;
        let member = self.members.get_mut(&id).unwrap();
        let Some(server) = member.server.as_mut() else {
            return moved;
        };
        while let Some(work) = server.ready() {
            moved = true;
            self.net.extend(work.messages);
            let storage = server.raft_storage_mut();
            if let Some(snapshot) = work.snapshot {
                storage.apply_snapshot(snapshot).unwrap();
            }
            storage.append(&work.entries).unwrap();
            if let Some(hard_state) = work.hard_state {
                storage.set_hard_state(hard_state);
            }
            // What is persisted survives a crash.
            member.storage = storage.clone();
            self.net.extend(work.persisted_messages);
            if let Err(err) = server.advance() {
                // A fatal error (e.g. the cluster left this member's version
                // window): the member stops, as the real server exits.
                writeln!(self.out, "n{id} stopped: {err}").unwrap();
                member.server = None;
                break;
            }
        }
        let Some(server) = member.server.as_mut() else {
            return moved;
        };
        let outputs = server.take_outputs();
        let mut forwards = Vec::new();
        let mut printable = Vec::new();
        let mut snapshots = Vec::new();
        let mut bcrypt = Vec::new();
        let mut state_opens = Vec::new();
        let mut defrags = Vec::new();
        for output in outputs {
            match output {
                // The shell's worker thread: run inline, held or delayed.
                Output::OpenState(job) => {
                    writeln!(
                        self.out,
                        "n{id} opens its state at index {} off the loop",
                        job.index()
                    )
                    .unwrap();
                    if self.hold_state_opens {
                        self.held_state_opens.push((id, job, None));
                    } else if self.state_open_delay_ms > 0 {
                        let due = self.now_ms + self.state_open_delay_ms;
                        self.held_state_opens.push((id, job, Some(due)));
                    } else {
                        state_opens.push(job);
                    }
                }
                // The shell's worker pool, run inline (or held): the test's clock does
                // not move while bcrypt runs.
                Output::PasswordWork(work) => {
                    self.bcrypt_jobs += 1;
                    if self.hold_bcrypt {
                        self.held_bcrypt.push_back((id, work));
                    } else {
                        bcrypt.push(work);
                    }
                }
                // The shell's copy, done at once (or held, as a long one).
                Output::Defragment { id: request } if self.hold_defrag => {
                    self.held_defrags.push((id, request))
                }
                Output::Defragment { id: request } => defrags.push(request),
                Output::ConfState(cs) => {
                    server.raft_storage_mut().set_conf_state(cs.clone());
                    member.storage.set_conf_state(cs);
                }
                Output::Snapshot {
                    index,
                    conf_state,
                    data,
                    compact_to,
                } => {
                    let storage = server.raft_storage_mut();
                    storage
                        .create_snapshot(index, Some(conf_state), data)
                        .unwrap();
                    let compacted = storage.first_index().unwrap() - 1;
                    if compact_to > compacted {
                        storage.compact(compact_to).unwrap();
                    }
                    member.storage = storage.clone();
                    snapshots.push(format!(
                        "n{id} snapshot at index {index}, log compacted to {}",
                        compact_to.max(compacted)
                    ));
                }
                Output::Forward {
                    id: request,
                    attempt,
                    to,
                    request: forwarded,
                    ..
                } => forwards.push((request, attempt, to, forwarded)),
                other => printable.push(other),
            }
        }
        for work in bcrypt {
            moved = true;
            server.password_done(work.run());
        }
        for request in defrags {
            moved = true;
            server.defragment_done(request, Ok(()));
            server.apply_waiting().unwrap();
        }
        for job in state_opens {
            moved = true;
            if let Err(err) = open_state(server, &job) {
                writeln!(self.out, "n{id} stopped: {err}").unwrap();
                member.server = None;
                break;
            }
        }
        if member.server.is_none() {
            return moved;
        }
        for output in printable {
            self.print_output(id, output);
        }
        for line in snapshots {
            writeln!(self.out, "{line}").unwrap();
        }
        for (request, attempt, to, forwarded) in forwards {
            moved = true;
            self.forward(id, request, attempt, to, forwarded);
        }
        moved
    }

    /// As a shell carries out `Output::Forward`: the request goes to member `to` over the
    /// network (its answer comes back through `forward_answers`), or gets no answer when `to`
    /// is down or cut off.
    fn forward(
        &mut self,
        from: u64,
        request: u64,
        attempt: u64,
        to: u64,
        forwarded: ClientRequest,
    ) {
        writeln!(
            self.out,
            "n{from} forwards #{request} to n{to} (attempt {attempt})"
        )
        .unwrap();
        let reachable =
            self.connected(from, to) && self.members.get(&to).is_some_and(|m| m.server.is_some());
        if !reachable {
            writeln!(self.out, "n{from} #{request}: no answer from n{to}").unwrap();
            self.forward_answers.push((from, request, attempt, None));
            return;
        }
        // Numbered apart from the clients' requests, whose numbers the transcripts show.
        let id = FORWARDED_IDS + self.forwarded_count;
        self.forwarded_count += 1;
        self.forwarded.insert((to, id), (from, request, attempt));
        self.server(to).forwarded_request(id, from, forwarded);
    }
}
