//! Transcript tests of version negotiation and downgrade (`tests/testdata/version/*.txt`).
//!
//! The harness is a miniature cluster: one shared committed log, and per member a
//! [`MemBackend`] holding what the state machine would persist (storage schema version,
//! replicated version state, lease records with checkpointed TTLs, applied index) plus a running
//! [`VersionNegotiator`] or none (stopped / refused). Committing an entry applies it on every
//! running member at once; a member that was down catches up from its applied index when it
//! starts again. Commands:
//!
//! ```text
//! start ID binary=V [emulated=V] [snapshot=no]
//!                                  start (or restart) a member on its data; a new id joins the
//!                                  membership and receives the leader's snapshot, if any (or,
//!                                  with snapshot=no, replays the whole log)
//! stop ID                          stop a member (its data stays)
//! remove ID                        remove a member from the membership (and its data)
//! leader ID                        make a running member the leader
//! publish                          every running member proposes its version record if stale
//! tick                             the leader's periodic version check
//! settle                           publish + tick until nothing more is proposed
//! downgrade validate|enable V      a client's Downgrade call at the leader
//! downgrade cancel
//! checkpoint                       the leader tries to replicate a lease checkpoint
//! stale-raise ID V                 commits a ClusterVersionSet that member ID proposed while it
//!                                  still led on an older state
//! compact ID|all                   snapshot + log compaction on members (retries migrations)
//! status                           every member's versions and storage
//! ```

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed test

use qraft_core::backend::{Backend, MemBackend, ReadTxn, Table, WriteTxn, meta};
use qraft_core::lease::{LeaseRecord, load_leases};
use qraft_core::version::{
    DowngradeStep, Feature, LocalVersion, Version, VersionEvent, VersionNegotiator,
    downgrade_success_message, schema,
};
use qraft_proto::Message;
use qraft_proto::etcdserverpb::downgrade_request::DowngradeAction;
use qraft_proto::etcdserverpb::{DowngradeRequest, LeaseCheckpoint, LeaseCheckpointRequest};
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::qraftpb::{ClusterVersionSetRequest, InternalRequest};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;

struct Member {
    backend: MemBackend,
    applied: u64,
    /// Entries up to this index are compacted into this member's snapshot.
    snapshot_index: u64,
    running: Option<VersionNegotiator>,
}

#[derive(Default)]
struct Sim {
    log: Vec<InternalRequest>,
    members: BTreeMap<u64, Member>,
    membership: Vec<u64>,
    leader: Option<u64>,
    out: String,
}

fn describe(request: &Request) -> String {
    match request {
        Request::MemberVersionPublish(p) => format!(
            "publish member={:x} server={} storage={} min={}",
            p.member_id, p.server_version, p.storage_version, p.min_version
        ),
        Request::ClusterVersionSet(s) => format!("cluster-version-set {}", s.ver),
        Request::DowngradeInfoSet(d) => {
            format!("downgrade-info-set enabled={} ver={}", d.enabled, d.ver)
        }
        Request::LeaseCheckpoint(c) => format!("lease-checkpoint {:?}", c.checkpoints),
        other => format!("{other:?}"),
    }
}

fn describe_event(event: &VersionEvent) -> String {
    let minor = |v: Option<Version>| v.map(Version::minor_string).unwrap_or("-".into());
    match event {
        VersionEvent::MemberPublished { member, versions } => format!(
            "member {member:x} runs {} (storage {}, oldest {})",
            versions.server,
            minor(versions.storage),
            versions.oldest.minor_string()
        ),
        VersionEvent::ClusterVersionChanged { from, to } => {
            format!("cluster version {} -> {}", minor(*from), to.minor_string())
        }
        VersionEvent::DowngradeEnabled { target } => {
            format!("downgrade to {} enabled", target.minor_string())
        }
        VersionEvent::DowngradeDisabled { target, completed } => format!(
            "downgrade to {} {}",
            target.minor_string(),
            if *completed { "completed" } else { "cancelled" }
        ),
        VersionEvent::Ignored { reason } => format!("ignored: {reason}"),
        VersionEvent::Rejected(e) => format!("rejected: {e}"),
        VersionEvent::MemberMustStop(e) => format!("MUST STOP: {e}"),
    }
}

fn parse_version(arg: &str, key: &str) -> Option<Version> {
    arg.strip_prefix(key)
        .and_then(|v| v.strip_prefix('='))
        .and_then(|v| Version::parse(v).ok())
}

fn copy_backend(from: &MemBackend) -> MemBackend {
    let to = MemBackend::new();
    let read = from.read_txn().unwrap();
    let mut write = to.write_txn().unwrap();
    for table in Table::ALL {
        read.scan(table, &[], None, &mut |k, v| {
            write.put(table, k, v).unwrap();
            ControlFlow::Continue(())
        })
        .unwrap();
    }
    write.commit().unwrap();
    to
}

impl Sim {
    fn say(&mut self, line: impl AsRef<str>) {
        self.out.push_str(line.as_ref());
        self.out.push('\n');
    }

    fn running_ids(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|(_, m)| m.running.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    fn start(&mut self, args: &[&str]) {
        let id: u64 = args[0].parse().unwrap();
        let binary = args
            .iter()
            .find_map(|a| parse_version(a, "binary"))
            .unwrap();
        let emulated = args.iter().find_map(|a| parse_version(a, "emulated"));
        if self.members.get(&id).is_some_and(|m| m.running.is_some()) {
            return self.say(format!("member {id:x} is already running"));
        }
        let local = match LocalVersion::new(binary, emulated) {
            Ok(local) => local,
            Err(e) => return self.say(format!("member {id:x} refuses to start: {e}")),
        };
        if !self.members.contains_key(&id) {
            let mut member = Member {
                backend: MemBackend::new(),
                applied: 0,
                snapshot_index: 0,
                running: None,
            };
            let snapshot = !args.contains(&"snapshot=no");
            if let Some(leader) = self
                .leader
                .and_then(|l| self.members.get(&l))
                .filter(|_| snapshot)
            {
                member.backend = copy_backend(&leader.backend);
                member.applied = leader.applied;
                member.snapshot_index = leader.applied;
                self.say(format!(
                    "member {id:x} receives a snapshot at index {}",
                    leader.applied
                ));
            }
            self.members.insert(id, member);
            self.membership.push(id);
            self.membership_changed();
        }
        let member = self.members.get_mut(&id).unwrap();
        let read = member.backend.read_txn().unwrap();
        let storage = schema::read_storage_version(&read).unwrap();
        let state = schema::read_version_state(&read).unwrap();
        drop(read);
        let mut negotiator = match VersionNegotiator::start(id, local, storage, state) {
            Ok(n) => n,
            Err(e) => return self.say(format!("member {id:x} refuses to start: {e}")),
        };
        negotiator.set_members(self.membership.iter().copied());
        if storage.is_none() {
            let initial = negotiator.initial_storage_version();
            let mut txn = member.backend.write_txn().unwrap();
            schema::write_storage_version(&mut txn, initial).unwrap();
            txn.commit().unwrap();
            negotiator.storage_migrated(initial);
        }
        let started = format!(
            "member {id:x} started: server {}, storage {}",
            local.server,
            negotiator.storage_version().unwrap().minor_string()
        );
        member.running = Some(negotiator);
        let from = member.applied + 1;
        self.say(started);
        for index in from..=self.log.len() as u64 {
            if self.members[&id].running.is_none() {
                break;
            }
            let events = self.apply_on(id, index);
            for e in &events {
                self.say(format!(
                    "  member {id:x} catches up {index}: {}",
                    describe_event(e)
                ));
            }
        }
        self.try_migrate(id);
    }

    fn membership_changed(&mut self) {
        let membership = self.membership.clone();
        self.say(format!("membership: {membership:x?}"));
        for m in self.members.values_mut() {
            if let Some(n) = &mut m.running {
                n.set_members(membership.iter().copied());
            }
        }
    }

    /// Applies entry `index` on member `id` the way the state machine does: one backend
    /// transaction holding the version state, lease checkpoints and the applied index.
    fn apply_on(&mut self, id: u64, index: u64) -> Vec<VersionEvent> {
        let request = self.log[index as usize - 1].clone();
        let member = self.members.get_mut(&id).unwrap();
        let negotiator = member.running.as_mut().unwrap();
        if let Err(e) = negotiator.check_entry(index, &request) {
            member.running = None;
            return vec![VersionEvent::MemberMustStop(e)];
        }
        let inner = request.request.as_ref().unwrap();
        let events = negotiator.apply(inner);
        let mut txn = member.backend.write_txn().unwrap();
        if let Request::LeaseCheckpoint(c) = inner {
            // What the lessor persists for an applied checkpoint (the lease was granted with
            // TTL 60 before; the harness does not model grants).
            for cp in &c.checkpoints {
                let record = LeaseRecord {
                    id: cp.id,
                    ttl: 60,
                    remaining_ttl: cp.remaining_ttl,
                };
                txn.put(Table::Lease, &cp.id.to_be_bytes(), &record.encode_to_vec())
                    .unwrap();
            }
        }
        schema::write_version_state(&mut txn, negotiator.state()).unwrap();
        meta::put_u64(&mut txn, meta::CONSISTENT_INDEX, index).unwrap();
        txn.commit().unwrap();
        member.applied = index;
        if events
            .iter()
            .any(|e| matches!(e, VersionEvent::MemberMustStop(_)))
        {
            member.running = None;
        }
        events
    }

    /// The storage follow-up the server runs after applying: migrate to the cluster version
    /// when the log allows it.
    fn try_migrate(&mut self, id: u64) {
        let member = self.members.get_mut(&id).unwrap();
        let Some(negotiator) = member.running.as_mut() else {
            return;
        };
        let Some(target) = negotiator.storage_target() else {
            return;
        };
        let from = negotiator.storage_version().unwrap();
        let held =
            (member.snapshot_index as usize..self.log.len()).map(|i| (i as u64 + 1, &self.log[i]));
        let mut txn = member.backend.write_txn().unwrap();
        let migrated = schema::migrate(&mut txn, from, target, held);
        let line = match migrated {
            Ok(()) => {
                txn.commit().unwrap();
                negotiator.storage_migrated(target);
                format!(
                    "  member {id:x} storage migrated {} -> {}",
                    from.minor_string(),
                    target.minor_string()
                )
            }
            Err(e) => {
                drop(txn);
                format!("  member {id:x} storage stays {}: {e}", from.minor_string())
            }
        };
        self.say(line);
    }

    /// Commits a request proposed by `proposer`; returns the proposer's apply events.
    fn commit(&mut self, proposer: u64, request: Request) -> Vec<VersionEvent> {
        self.say(format!(
            "  entry {} from {proposer:x}: {}",
            self.log.len() + 1,
            describe(&request)
        ));
        self.log.push(InternalRequest {
            request: Some(request),
            ..Default::default()
        });
        let index = self.log.len() as u64;
        let mut by_member = Vec::new();
        for id in self.running_ids() {
            by_member.push((id, self.apply_on(id, index)));
        }
        let all_same = by_member.windows(2).all(|w| w[0].1 == w[1].1);
        let mut proposer_events = Vec::new();
        for (i, (id, events)) in by_member.iter().enumerate() {
            if !(all_same && i > 0) {
                let who = if all_same && by_member.len() > 1 {
                    "all".to_string()
                } else {
                    format!("{id:x}")
                };
                for e in events {
                    self.say(format!("    {who}: {}", describe_event(e)));
                }
            }
            if *id == proposer {
                proposer_events = events.clone();
            }
        }
        for (id, _) in by_member {
            self.try_migrate(id);
        }
        proposer_events
    }

    fn leader(&mut self) -> Option<u64> {
        let leader = self
            .leader
            .filter(|l| self.members.get(l).is_some_and(|m| m.running.is_some()));
        if leader.is_none() {
            self.say("no leader");
        }
        leader
    }

    fn publish(&mut self) -> usize {
        let mut proposed = 0;
        for id in self.running_ids() {
            let request = self.members[&id]
                .running
                .as_ref()
                .and_then(|n| n.publish_request());
            if let Some(request) = request {
                self.commit(id, request);
                proposed += 1;
            }
        }
        proposed
    }

    fn tick(&mut self) -> usize {
        let Some(leader) = self.leader() else {
            return 0;
        };
        let proposals = self.members[&leader]
            .running
            .as_ref()
            .unwrap()
            .leader_proposals();
        let n = proposals.len();
        for request in proposals {
            self.commit(leader, request);
        }
        n
    }

    fn downgrade(&mut self, args: &[&str]) {
        let Some(leader) = self.leader() else { return };
        let action = match args[0] {
            "validate" => DowngradeAction::Validate,
            "enable" => DowngradeAction::Enable,
            "cancel" => DowngradeAction::Cancel,
            other => panic!("unknown downgrade action {other}"),
        };
        let request = DowngradeRequest {
            action: action as i32,
            version: args.get(1).unwrap_or(&"").to_string(),
        };
        let step = self.members[&leader]
            .running
            .as_ref()
            .unwrap()
            .handle_downgrade(&request);
        let answer = match step {
            Err(e) => Err(e),
            Ok(DowngradeStep::Answer { version }) => Ok(version),
            Ok(DowngradeStep::Propose { request, version }) => {
                let events = self.commit(leader, request);
                match events.into_iter().find_map(|e| match e {
                    VersionEvent::Rejected(e) => Some(e),
                    _ => None,
                }) {
                    Some(e) => Err(e),
                    None => Ok(version),
                }
            }
        };
        let line = match answer {
            Ok(version) => downgrade_success_message(action, &version),
            Err(e) => format!("Error: {e} (code {})", e.grpc_code()),
        };
        self.say(line);
    }

    fn checkpoint(&mut self) {
        let Some(leader) = self.leader() else { return };
        let gates = self.members[&leader].running.as_ref().unwrap().features();
        if let Err(e) = gates.check(Feature::LeaseCheckpoint) {
            return self.say(format!("checkpoint not proposed: {e}"));
        }
        self.commit(
            leader,
            Request::LeaseCheckpoint(LeaseCheckpointRequest {
                checkpoints: vec![LeaseCheckpoint {
                    id: 7,
                    remaining_ttl: 42,
                }],
            }),
        );
    }

    fn compact(&mut self, which: &str) {
        let ids: Vec<u64> = if which == "all" {
            self.members.keys().copied().collect()
        } else {
            vec![which.parse().unwrap()]
        };
        for id in ids {
            let member = self.members.get_mut(&id).unwrap();
            member.snapshot_index = member.applied;
            let line = format!("member {id:x} compacted its log up to {}", member.applied);
            self.say(line);
            self.try_migrate(id);
        }
    }

    fn status(&mut self) {
        let mut lines = Vec::new();
        for (id, m) in &self.members {
            let read = m.backend.read_txn().unwrap();
            let storage = schema::read_storage_version(&read).unwrap();
            let state = schema::read_version_state(&read).unwrap();
            let mut checkpoints = 0;
            for lease in load_leases(&read).unwrap() {
                if lease.remaining_ttl != 0 {
                    checkpoints += 1;
                }
            }
            let mut line = format!("member {id:x}: ");
            match &m.running {
                Some(n) => {
                    let report = n.report();
                    let _ = write!(
                        line,
                        "up server={} features[lease_checkpoint={}]",
                        report.server,
                        n.features().enabled(Feature::LeaseCheckpoint)
                    );
                }
                None => line.push_str("down"),
            }
            let downgrade = state
                .downgrade()
                .active_target()
                .map(|t| format!("enabled target={}", t.minor_string()))
                .unwrap_or("off".into());
            let _ = write!(
                line,
                " | stored: storage={} cluster={} downgrade={} checkpoints={checkpoints} applied={}",
                storage.map(Version::minor_string).unwrap_or("-".into()),
                state
                    .cluster_version()
                    .map(Version::minor_string)
                    .unwrap_or("-".into()),
                downgrade,
                m.applied
            );
            lines.push(line);
        }
        for line in lines {
            self.say(line);
        }
    }

    fn run(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "start" => self.start(&words[1..]),
            "stop" => {
                let id: u64 = words[1].parse().unwrap();
                self.members.get_mut(&id).unwrap().running = None;
                self.say(format!("member {id:x} stopped"));
            }
            "remove" => {
                let id: u64 = words[1].parse().unwrap();
                self.membership.retain(|m| *m != id);
                self.members.remove(&id);
                self.membership_changed();
            }
            "leader" => {
                self.leader = Some(words[1].parse().unwrap());
            }
            "publish" => {
                self.publish();
            }
            "tick" => {
                if self.tick() == 0 {
                    self.say("nothing to propose");
                }
            }
            "settle" => {
                for _ in 0..10 {
                    if self.publish() + self.tick() == 0 {
                        break;
                    }
                }
            }
            "downgrade" => self.downgrade(&words[1..]),
            "checkpoint" => self.checkpoint(),
            "stale-raise" => {
                let proposer: u64 = words[1].parse().unwrap();
                let ver = words[2].to_string();
                self.commit(
                    proposer,
                    Request::ClusterVersionSet(ClusterVersionSetRequest { ver }),
                );
            }
            "compact" => self.compact(words[1]),
            "status" => self.status(),
            other => panic!("unknown command {other}"),
        }
    }
}

#[test]
#[allow(clippy::disallowed_methods)] // the test reads its scripts; the code under test does no IO
fn version_transcripts() {
    insta::glob!("../testdata/version", "*.txt", |path| {
        let script = std::fs::read_to_string(path).unwrap();
        let mut sim = Sim::default();
        let transcript = qraft_tests::transcript::run_script(&script, |line, out| {
            sim.run(line);
            out.push_str(&std::mem::take(&mut sim.out));
        });
        insta::assert_snapshot!(transcript);
    });
}
