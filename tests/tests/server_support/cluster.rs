//! An in-memory cluster of `Server`s for the server tests: members over in-memory raft
//! storage, backends and network, an explicit clock, crashes that keep only what was persisted,
//! and partitions.

// Shared by several test crates; each uses a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use qraft_core::auth::SecretRng;
use qraft_core::backend::{
    Backend, BackendError, BackendSpace, MemBackend, MemReadTxn, MemWriteTxn,
};
use qraft_core::raft::MemStorage;
use qraft_core::server::{
    AutoCompaction, Output, PasswordWork, Server, ServerConfig, StateOpenJob,
};
use qraft_proto::mvccpb::Event;
use qraft_proto::mvccpb::event::EventType;
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{
    Attributes, ClientRequest, ClientResponse, MemberRecord, RaftAttributes,
};
use qraft_proto::raftpb::{ConfState, Message, MessageType};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::format::show_response;

// Work the members hand to their shell's worker threads (bcrypt, reopening the state).
#[path = "worker_jobs.rs"]
mod worker_jobs;

// How each output of a member reads in a transcript.
#[path = "output_lines.rs"]
mod output_lines;

// What one member's shell does with its raft work and outputs.
#[path = "member_shell.rs"]
mod member_shell;

/// A backend shared between a server and the test, so it survives the server's "crash".
#[derive(Clone, Default)]
pub struct SharedBackend(pub Rc<MemBackend>);

impl Backend for SharedBackend {
    type ReadTxn<'a> = MemReadTxn;
    type WriteTxn<'a> = MemWriteTxn<'a>;

    fn read_txn(&self) -> Result<MemReadTxn, BackendError> {
        self.0.read_txn()
    }

    fn write_txn(&self) -> Result<MemWriteTxn<'_>, BackendError> {
        self.0.write_txn()
    }

    fn space(&self) -> Result<Option<BackendSpace>, BackendError> {
        self.0.space()
    }
}

pub type Node = Server<MemStorage, SharedBackend>;

/// Request IDs the members use for requests forwarded to them (clients' count from 1).
const FORWARDED_IDS: u64 = 1 << 40;

pub struct Member {
    pub server: Option<Node>,
    /// The durable state a crash keeps.
    pub storage: MemStorage,
    pub backend: SharedBackend,
}

pub struct Cluster {
    pub members: BTreeMap<u64, Member>,
    pub now_ms: u64,
    pub next_request: u64,
    pub net: VecDeque<Message>,
    /// Members that cannot reach each other: `partition[a]` and `partition[b]` differ.
    pub partition: BTreeMap<u64, usize>,
    pub checkpoint_interval_ms: u64,
    pub snapshot_count: u64,
    /// Members publish their attributes (`cluster N publish-attrs`); their bootstrap records
    /// then know only each member's own client URLs, as the real server's do.
    pub publish_attrs: bool,
    /// Members run etcd's strict reconfiguration check (`cluster N strict-reconfig`).
    pub strict_reconfig: bool,
    /// The transport view each member was given of each peer (`Server::peer_active_since`):
    /// `(member, peer)` → connected since. A link is up while both are running and can talk.
    pub links: BTreeMap<(u64, u64), u64>,
    /// Tokens from Authenticate responses, by the alias the script gave (`as=NAME`).
    pub tokens: HashMap<String, String>,
    pub token_aliases: HashMap<u64, String>,
    pub read_index_messages: usize,
    /// Every watch event delivered: (member, time, event).
    pub events_log: Vec<(u64, u64, Event)>,
    /// Every client response: (request, response).
    pub responses: Vec<(u64, ClientResponse)>,
    /// bcrypt jobs the members asked for so far (`Output::PasswordWork`).
    pub bcrypt_jobs: u64,
    /// While set, bcrypt jobs wait in `held_bcrypt` (member, job) instead of running at once,
    /// as on a busy worker pool.
    pub hold_bcrypt: bool,
    pub held_bcrypt: VecDeque<(u64, PasswordWork)>,
    /// While set, state opens (`Output::OpenState`) wait in `held_state_opens` until the
    /// script releases them (`open-state N`), as on a worker thread that takes its time.
    pub hold_state_opens: bool,
    /// State opens run this much later (advancing the clock releases them); 0: at once.
    pub state_open_delay_ms: u64,
    /// Waiting state opens: (member, job, when it is done — `None`: when released).
    pub held_state_opens: Vec<(u64, StateOpenJob, Option<u64>)>,
    /// State opens that waited (held or delayed) before they were handed back.
    pub state_opens_delayed: u64,
    /// While set, defragmentations (`Output::Defragment`) wait in `held_defrags` (member,
    /// request) instead of ending at once, as a long copy.
    pub hold_defrag: bool,
    pub held_defrags: Vec<(u64, u64)>,
    /// Requests forwarded to a member (`Output::Forward`), by (member, its request id): the
    /// forwarding member, its request id and the attempt.
    pub forwarded: HashMap<(u64, u64), (u64, u64, u64)>,
    pub forwarded_count: u64,
    /// Answers to forwarded requests on their way back: (member, request id, attempt, answer).
    pub forward_answers: Vec<(u64, u64, u64, Option<ClientResponse>)>,
    pub out: String,
}

pub fn config(id: u64, checkpoint_interval_ms: u64, snapshot_count: u64) -> ServerConfig {
    let mut config = ServerConfig::new(id, 0x1000);
    config.snapshot_count = snapshot_count;
    config.snapshot_catch_up_entries = 2;
    config.lessor.checkpoint_interval_ms = checkpoint_interval_ms;
    config.auth.bcrypt_cost = 4;
    // Versions are published and decided within the first half second.
    config.version_check_ticks = 5;
    config
}

/// The secret generator of member `id` in tests: fixed, so transcripts repeat (the real driver
/// seeds it from the operating system).
pub fn test_secrets(id: u64) -> SecretRng {
    Box::new(StdRng::seed_from_u64(id))
}

/// The attributes member `id` publishes when the cluster publishes attributes.
pub fn member_attrs(id: u64) -> Attributes {
    Attributes {
        name: format!("n{id}"),
        client_urls: vec![format!("https://n{id}:2379")],
    }
}

impl Cluster {
    pub fn new(size: u64, checkpoint_interval_ms: u64, snapshot_count: u64) -> Self {
        Self::new_with(size, checkpoint_interval_ms, snapshot_count, false, false)
    }

    pub fn new_with(
        size: u64,
        checkpoint_interval_ms: u64,
        snapshot_count: u64,
        publish_attrs: bool,
        strict_reconfig: bool,
    ) -> Self {
        let voters: Vec<u64> = (1..=size).collect();
        let mut members = BTreeMap::new();
        for &id in &voters {
            let storage = MemStorage::new_with_conf_state(ConfState {
                voters: voters.clone(),
                ..Default::default()
            });
            let backend = SharedBackend::default();
            let mut member_config = config(id, checkpoint_interval_ms, snapshot_count);
            if publish_attrs {
                member_config.member_attrs = Some(member_attrs(id));
            }
            member_config.strict_reconfig_check = strict_reconfig;
            let mut server = Server::new(
                member_config,
                storage.clone(),
                backend.clone(),
                0,
                test_secrets(id),
            )
            .unwrap();
            let initial = voters
                .iter()
                .map(|&other| MemberRecord {
                    id: other,
                    raft_attrs: Some(RaftAttributes {
                        peer_urls: vec![format!("https://n{other}:2380")],
                        is_learner: false,
                    }),
                    member_attrs: Some(Attributes {
                        name: format!("n{other}"),
                        client_urls: if publish_attrs && other != id {
                            Vec::new()
                        } else {
                            vec![format!("https://n{other}:2379")]
                        },
                    }),
                    server_version: String::new(),
                })
                .collect();
            server.bootstrap_members(initial).unwrap();
            members.insert(
                id,
                Member {
                    server: Some(server),
                    storage,
                    backend,
                },
            );
        }
        Cluster {
            members,
            now_ms: 0,
            next_request: 1,
            net: VecDeque::new(),
            partition: BTreeMap::new(),
            checkpoint_interval_ms,
            snapshot_count,
            publish_attrs,
            strict_reconfig,
            links: BTreeMap::new(),
            tokens: HashMap::new(),
            token_aliases: HashMap::new(),
            read_index_messages: 0,
            events_log: Vec::new(),
            responses: Vec::new(),
            bcrypt_jobs: 0,
            hold_bcrypt: false,
            hold_defrag: false,
            held_defrags: Vec::new(),
            held_bcrypt: VecDeque::new(),
            hold_state_opens: false,
            state_open_delay_ms: 0,
            held_state_opens: Vec::new(),
            state_opens_delayed: 0,
            forwarded: HashMap::new(),
            forwarded_count: 0,
            forward_answers: Vec::new(),
            out: String::new(),
        }
    }

    pub fn connected(&self, a: u64, b: u64) -> bool {
        self.partition.get(&a).copied().unwrap_or(0) == self.partition.get(&b).copied().unwrap_or(0)
    }

    /// Tells each member about the links to its peers that came up or went down, as a
    /// transport does: up while both members run and no partition separates them.
    pub fn sync_links(&mut self) {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for &a in &ids {
            for &b in ids.iter().filter(|&&b| b != a) {
                let running = |id: u64| self.members[&id].server.is_some();
                let up = running(a) && running(b) && self.connected(a, b);
                let since = match (up, self.links.contains_key(&(a, b))) {
                    (true, false) => Some(self.now_ms),
                    (false, true) => None,
                    _ => continue,
                };
                match since {
                    Some(now) => self.links.insert((a, b), now),
                    None => self.links.remove(&(a, b)),
                };
                if let Some(server) = self.members.get_mut(&a).and_then(|m| m.server.as_mut()) {
                    server.peer_active_since(b, since);
                }
            }
        }
    }

    /// Runs every member's raft work and delivers messages until nothing moves.
    pub fn stabilize(&mut self) {
        self.sync_links();
        for _ in 0..10_000 {
            let mut moved = false;
            let ids: Vec<u64> = self.members.keys().copied().collect();
            for id in ids {
                moved |= self.run_member(id);
            }
            for (member, request, attempt, answer) in std::mem::take(&mut self.forward_answers) {
                moved = true;
                if let Some(server) = self
                    .members
                    .get_mut(&member)
                    .and_then(|m| m.server.as_mut())
                {
                    server.forward_answered(request, attempt, answer);
                }
            }
            while let Some(message) = self.net.pop_front() {
                moved = true;
                if message.r#type() == MessageType::MsgReadIndex {
                    self.read_index_messages += 1;
                }
                let (from, to) = (message.from, message.to);
                let is_snapshot = message.r#type() == MessageType::MsgSnap;
                let delivered = self.connected(from, to)
                    && match self.members.get_mut(&to).and_then(|m| m.server.as_mut()) {
                        Some(server) => {
                            server.step(message);
                            true
                        }
                        None => false,
                    };
                // As a transport does: report every snapshot transfer, and unreachable peers.
                if let Some(sender) = self.members.get_mut(&from).and_then(|m| m.server.as_mut()) {
                    if is_snapshot {
                        sender.report_snapshot(to, delivered);
                    }
                    if !delivered {
                        sender.report_unreachable(to);
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("cluster did not stabilize");
    }

    /// Advances the clock by `ms`, one tick (100 ms) at a time, stabilizing after each.
    pub fn advance(&mut self, ms: u64) {
        let ticks = ms.div_ceil(100);
        for _ in 0..ticks {
            self.now_ms += 100;
            let now = self.now_ms;
            for member in self.members.values_mut() {
                if let Some(server) = member.server.as_mut() {
                    server.tick(now);
                }
            }
            self.stabilize();
            self.release_due_state_opens();
        }
    }

    pub fn server(&mut self, id: u64) -> &mut Node {
        self.members
            .get_mut(&id)
            .and_then(|m| m.server.as_mut())
            .expect("member is up")
    }

    pub fn send(&mut self, node: u64, request: In, token: &str) {
        self.submit(node, request, token);
        self.stabilize();
    }

    /// Hands a request to a member without running the cluster, so several requests can be
    /// in flight at once; returns the request's id (its answer lands in `responses`).
    pub fn submit(&mut self, node: u64, request: In, token: &str) -> u64 {
        let token = self.tokens.get(token).cloned().unwrap_or(token.to_string());
        let token = token.as_str();
        self.sync_links();
        let id = self.next_request;
        self.next_request += 1;
        writeln!(self.out, "request #{id} to n{node}").unwrap();
        if self.members.get(&node).is_none_or(|m| m.server.is_none()) {
            writeln!(self.out, "n{node} is down").unwrap();
            return id;
        }
        self.server(node).request(
            id,
            ClientRequest {
                token: token.to_string(),
                cert_common_name: String::new(),
                token_claims: None,
                request: Some(request),
            },
        );
        id
    }

    /// The leader some member sees (0: none) and the highest term among the members.
    pub fn leader_term(&self) -> (u64, u64) {
        let servers = self.members.values().filter_map(|m| m.server.as_ref());
        let leader = servers
            .clone()
            .find(|s| s.is_leader())
            .map_or(0, |s| s.member_id());
        (leader, servers.map(|s| s.term()).max().unwrap_or(0))
    }

    /// ReadIndex messages sent so far by all members (one per round).
    pub fn read_rounds(&self) -> usize {
        self.read_index_messages
    }

    pub fn status(&mut self) {
        let lines: Vec<String> = self
            .members
            .iter()
            .map(|(id, m)| match &m.server {
                None => format!("n{id}: down"),
                Some(s) => format!(
                    "n{id}: leader={} term={} applied={} {}",
                    s.leader(),
                    s.term(),
                    s.applied_index(),
                    s.state()
                        .map_or("state reopening".to_string(), |state| format!(
                            "revision={} leases={}",
                            state.mvcc.current_revision(),
                            state.lessor.len()
                        ))
                ),
            })
            .collect();
        writeln!(self.out, "{}", lines.join("\n")).unwrap();
    }

    /// Each member's current and compaction revisions.
    pub fn compacted(&mut self) {
        let lines: Vec<String> = self
            .members
            .iter()
            .map(|(id, m)| match &m.server {
                None => format!("n{id}: down"),
                Some(s) => s
                    .state()
                    .map_or(format!("n{id}: state reopening"), |state| {
                        format!(
                            "n{id}: revision={} compacted={}",
                            state.mvcc.current_revision(),
                            state.mvcc.compact_revision()
                        )
                    }),
            })
            .collect();
        writeln!(self.out, "{}", lines.join("\n")).unwrap();
    }
}

/// `periodic:MS` or `revision:N` (a transcript's `auto-compaction=`).
pub fn auto_compaction(text: &str) -> AutoCompaction {
    match text.split_once(':') {
        Some(("periodic", ms)) => AutoCompaction::Periodic {
            retention_ms: ms.parse().unwrap(),
        },
        Some(("revision", n)) => AutoCompaction::Revision {
            retention: n.parse().unwrap(),
        },
        _ => panic!("auto-compaction={text}: expected periodic:MS or revision:N"),
    }
}
