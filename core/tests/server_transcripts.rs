//! Transcript tests of the state machine: one or more `Server`s over in-memory raft storage,
//! backends and network, driven by an explicit clock. Each script in `testdata/server/` is run
//! and every command's output (client responses, watch events) is snapshotted.

// Test harness: reading the scripts is the runner's IO; a failed write to a String is a bug.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

#[path = "server_support/format.rs"]
mod format;

use format::{prefix_end, show_response};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use qraft_core::backend::{Backend, BackendError, MemBackend, MemReadTxn, MemWriteTxn};
use qraft_core::raft::{MemStorage, Storage};
use qraft_core::server::{Output, Server, ServerConfig};
use qraft_proto::authpb::Permission;
use qraft_proto::authpb::permission::Type as PermType;
use qraft_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest,
    AuthStatusRequest, AuthUserAddRequest, AuthUserGrantRoleRequest, AuthenticateRequest,
    DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest,
    LeaseRevokeRequest, LeaseTimeToLiveRequest, MemberAddRequest, MemberListRequest,
    MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest, PutRequest, RangeRequest,
};
use qraft_proto::mvccpb::event::EventType;
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{Attributes, ClientRequest, MemberRecord, RaftAttributes};
use qraft_proto::raftpb::{ConfState, Message, MessageType};

/// A backend shared between a server and the test, so it survives the server's "crash".
#[derive(Clone, Default)]
struct SharedBackend(Rc<MemBackend>);

impl Backend for SharedBackend {
    type ReadTxn<'a> = MemReadTxn;
    type WriteTxn<'a> = MemWriteTxn<'a>;

    fn read_txn(&self) -> Result<MemReadTxn, BackendError> {
        self.0.read_txn()
    }

    fn write_txn(&self) -> Result<MemWriteTxn<'_>, BackendError> {
        self.0.write_txn()
    }
}

type Node = Server<MemStorage, SharedBackend>;

struct Member {
    server: Option<Node>,
    /// The durable state a crash keeps.
    storage: MemStorage,
    backend: SharedBackend,
}

struct Cluster {
    members: BTreeMap<u64, Member>,
    now_ms: u64,
    next_request: u64,
    net: VecDeque<Message>,
    /// Members that cannot reach each other: `partition[a]` and `partition[b]` differ.
    partition: BTreeMap<u64, usize>,
    checkpoint_interval_ms: u64,
    snapshot_count: u64,
    /// Tokens from Authenticate responses, by the alias the script gave (`as=NAME`).
    tokens: HashMap<String, String>,
    token_aliases: HashMap<u64, String>,
    read_index_messages: usize,
    out: String,
}

fn config(id: u64, checkpoint_interval_ms: u64, snapshot_count: u64) -> ServerConfig {
    let mut config = ServerConfig::new(id, 0x1000);
    config.snapshot_count = snapshot_count;
    config.snapshot_catch_up_entries = 2;
    config.lessor.checkpoint_interval_ms = checkpoint_interval_ms;
    config.auth.bcrypt_cost = 4;
    config
}

impl Cluster {
    fn new(size: u64, checkpoint_interval_ms: u64, snapshot_count: u64) -> Self {
        let voters: Vec<u64> = (1..=size).collect();
        let mut members = BTreeMap::new();
        for &id in &voters {
            let storage = MemStorage::new_with_conf_state(ConfState {
                voters: voters.clone(),
                ..Default::default()
            });
            let backend = SharedBackend::default();
            let mut server = Server::new(
                config(id, checkpoint_interval_ms, snapshot_count),
                storage.clone(),
                backend.clone(),
                0,
            )
            .unwrap();
            let initial = voters
                .iter()
                .map(|&id| MemberRecord {
                    id,
                    raft_attrs: Some(RaftAttributes {
                        peer_urls: vec![format!("https://n{id}:2380")],
                        is_learner: false,
                    }),
                    member_attrs: Some(Attributes {
                        name: format!("n{id}"),
                        client_urls: vec![format!("https://n{id}:2379")],
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
            tokens: HashMap::new(),
            token_aliases: HashMap::new(),
            read_index_messages: 0,
            out: String::new(),
        }
    }

    fn connected(&self, a: u64, b: u64) -> bool {
        self.partition.get(&a).copied().unwrap_or(0) == self.partition.get(&b).copied().unwrap_or(0)
    }

    /// Runs every member's raft work and delivers messages until nothing moves.
    fn stabilize(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            let ids: Vec<u64> = self.members.keys().copied().collect();
            for id in &ids {
                let member = self.members.get_mut(id).unwrap();
                let Some(server) = member.server.as_mut() else {
                    continue;
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
                    server.advance().unwrap();
                }
                let outputs = server.take_outputs();
                let mut printable = Vec::new();
                let mut snapshots = Vec::new();
                for output in outputs {
                    match output {
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
                        other => printable.push(other),
                    }
                }
                for output in printable {
                    self.print_output(*id, output);
                }
                for line in snapshots {
                    writeln!(self.out, "{line}").unwrap();
                }
            }
            while let Some(message) = self.net.pop_front() {
                moved = true;
                if message.r#type() == MessageType::MsgReadIndex {
                    self.read_index_messages += 1;
                }
                let (from, to) = (message.from, message.to);
                if !self.connected(from, to) {
                    continue;
                }
                if let Some(server) = self.members.get_mut(&to).and_then(|m| m.server.as_mut()) {
                    server.step(message);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("cluster did not stabilize");
    }

    fn print_output(&mut self, id: u64, output: Output) {
        match output {
            Output::Respond {
                id: request,
                response,
            } => {
                if let (Some(alias), Some(Out::Authenticate(r))) =
                    (self.token_aliases.remove(&request), &response.response)
                {
                    self.tokens.insert(alias, r.token.clone());
                }
                writeln!(self.out, "n{id} #{request}: {}", show_response(&response)).unwrap();
            }
            Output::Events { revision, events } => {
                let shown: Vec<String> = events
                    .iter()
                    .map(|e| {
                        let kv = e.kv.clone().unwrap_or_default();
                        let key = String::from_utf8_lossy(&kv.key);
                        if e.r#type == EventType::Delete as i32 {
                            format!("DELETE {key}")
                        } else {
                            let mut value = String::from_utf8_lossy(&kv.value).into_owned();
                            if value.len() > 16 {
                                value = format!("<{} bytes>", value.len());
                            }
                            format!("PUT {key}={value}")
                        }
                    })
                    .collect();
                writeln!(
                    self.out,
                    "n{id} @{}ms events rev={revision}: {}",
                    self.now_ms,
                    shown.join(", ")
                )
                .unwrap();
            }
            Output::SnapshotInstalled { index, revision } => {
                writeln!(
                    self.out,
                    "n{id} installed snapshot at index {index} (revision {revision})"
                )
                .unwrap();
            }
            Output::LeaderChanged { .. } | Output::ConfState(_) | Output::Snapshot { .. } => {}
        }
    }

    /// Advances the clock by `ms`, one tick (100 ms) at a time, stabilizing after each.
    fn advance(&mut self, ms: u64) {
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
        }
    }

    fn server(&mut self, id: u64) -> &mut Node {
        self.members
            .get_mut(&id)
            .and_then(|m| m.server.as_mut())
            .expect("member is up")
    }

    fn send(&mut self, node: u64, request: In, token: &str) {
        let token = self.tokens.get(token).cloned().unwrap_or(token.to_string());
        let token = token.as_str();
        let id = self.next_request;
        self.next_request += 1;
        writeln!(self.out, "request #{id} to n{node}").unwrap();
        self.server(node).request(
            id,
            ClientRequest {
                token: token.to_string(),
                request: Some(request),
            },
        );
        self.stabilize();
    }

    /// ReadIndex messages sent so far by all members (one per round).
    fn read_rounds(&self) -> usize {
        self.read_index_messages
    }

    fn status(&mut self) {
        let lines: Vec<String> = self
            .members
            .iter()
            .map(|(id, m)| match &m.server {
                None => format!("n{id}: down"),
                Some(s) => format!(
                    "n{id}: leader={} term={} applied={} revision={} leases={}",
                    s.leader(),
                    s.term(),
                    s.applied_index(),
                    s.state().mvcc.current_revision(),
                    s.state().lessor.len()
                ),
            })
            .collect();
        writeln!(self.out, "{}", lines.join("\n")).unwrap();
    }

    fn run(&mut self, words: &[&str]) {
        let node = |i: usize| -> u64 { words[i].trim_start_matches('n').parse().unwrap() };
        let num = |i: usize| -> i64 { words[i].parse().unwrap() };
        let arg = |name: &str| -> Option<&str> {
            words
                .iter()
                .find_map(|w| w.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        };
        let flag = |name: &str| words.contains(&name);
        match words[0] {
            "cluster" => {
                let interval =
                    arg("checkpoint-interval-ms").map_or(300_000, |v| v.parse().unwrap());
                let snapshot_count = arg("snapshot-count").map_or(0, |v| v.parse().unwrap());
                let out = std::mem::take(&mut self.out);
                *self = Cluster::new(num(1) as u64, interval, snapshot_count);
                self.out = out;
                writeln!(self.out, "ok").unwrap();
            }
            "advance" => {
                self.advance(num(1) as u64);
                writeln!(self.out, "now={}", self.now_ms).unwrap();
            }
            // Ticks until some member leads (bounded).
            "wait-leader" => {
                for _ in 0..200 {
                    if self
                        .members
                        .values()
                        .any(|m| m.server.as_ref().is_some_and(|s| s.is_leader()))
                    {
                        break;
                    }
                    self.advance(100);
                }
                writeln!(self.out, "now={}", self.now_ms).unwrap();
                self.status();
            }
            "status" => self.status(),
            // The replicated lease state of one member (granted TTL, checkpointed remainder)
            // and, on the leader, the deadline.
            "lessor" => {
                let server = self.server(node(1));
                let lines: Vec<String> = server
                    .state()
                    .lessor
                    .records()
                    .map(|r| {
                        let expiry = server.state().lessor.get(r.id).and_then(|l| l.expiry_ms());
                        format!(
                            "lease {} ttl={} remaining_ttl={} expiry={}",
                            r.id,
                            r.ttl,
                            r.remaining_ttl,
                            expiry.map_or("-".to_string(), |e| e.to_string())
                        )
                    })
                    .collect();
                writeln!(self.out, "{}", lines.join("\n")).unwrap();
            }
            "campaign" => {
                self.server(node(1)).campaign();
                self.stabilize();
                self.status();
            }
            "put" => {
                let request = In::Put(PutRequest {
                    key: words[2].as_bytes().to_vec().into(),
                    value: words[3].as_bytes().to_vec().into(),
                    lease: arg("lease").map_or(0, |v| v.parse().unwrap()),
                    prev_kv: flag("prev"),
                    ..Default::default()
                });
                self.send(node(1), request, arg("token").unwrap_or(""));
            }
            "get" => {
                let key = if words[2] == "''" {
                    &[][..]
                } else {
                    words[2].as_bytes()
                };
                let request = In::Range(RangeRequest {
                    key: if key.is_empty() {
                        vec![0]
                    } else {
                        key.to_vec()
                    }
                    .into(),
                    range_end: if flag("prefix") {
                        prefix_end(key)
                    } else {
                        Vec::new()
                    }
                    .into(),
                    serializable: flag("serializable"),
                    ..Default::default()
                });
                self.send(node(1), request, arg("token").unwrap_or(""));
            }
            // get-many N KEY...: linearizable reads sent together, then the cluster runs; they
            // share ReadIndex rounds.
            "get-many" => {
                let target = node(1);
                for key in &words[2..] {
                    let id = self.next_request;
                    self.next_request += 1;
                    writeln!(self.out, "request #{id} to n{target}").unwrap();
                    let request = In::Range(RangeRequest {
                        key: key.as_bytes().to_vec().into(),
                        ..Default::default()
                    });
                    self.server(target).request(
                        id,
                        ClientRequest {
                            token: String::new(),
                            request: Some(request),
                        },
                    );
                }
                let rounds_before = self.read_rounds();
                self.stabilize();
                writeln!(
                    self.out,
                    "read-index rounds: {}",
                    self.read_rounds() - rounds_before
                )
                .unwrap();
            }
            "del" => {
                let request = In::DeleteRange(DeleteRangeRequest {
                    key: words[2].as_bytes().to_vec().into(),
                    ..Default::default()
                });
                self.send(node(1), request, "");
            }
            "grant" => {
                let request = In::LeaseGrant(LeaseGrantRequest {
                    ttl: num(2),
                    id: arg("id").map_or(0, |v| v.parse().unwrap()),
                });
                self.send(node(1), request, "");
            }
            "revoke" => self.send(
                node(1),
                In::LeaseRevoke(LeaseRevokeRequest { id: num(2) }),
                "",
            ),
            "keepalive" => self.send(
                node(1),
                In::LeaseKeepAlive(LeaseKeepAliveRequest { id: num(2) }),
                "",
            ),
            "ttl" => self.send(
                node(1),
                In::LeaseTimeToLive(LeaseTimeToLiveRequest {
                    id: num(2),
                    keys: true,
                }),
                "",
            ),
            "leases" => self.send(node(1), In::LeaseLeases(LeaseLeasesRequest {}), ""),
            // auth N NAME PASSWORD as=ALIAS: the token is kept under ALIAS for `token=ALIAS`.
            "auth" => {
                if let Some(alias) = arg("as") {
                    self.token_aliases
                        .insert(self.next_request, alias.to_string());
                }
                let request = In::Authenticate(AuthenticateRequest {
                    name: words[2].to_string(),
                    password: words[3].to_string(),
                });
                self.send(node(1), request, "");
            }
            "user-add" => {
                let request = In::UserAdd(AuthUserAddRequest {
                    name: words[2].to_string(),
                    password: words[3].to_string(),
                    ..Default::default()
                });
                self.send(node(1), request, arg("token").unwrap_or(""));
            }
            "user-grant" => {
                let request = In::UserGrantRole(AuthUserGrantRoleRequest {
                    user: words[2].to_string(),
                    role: words[3].to_string(),
                });
                self.send(node(1), request, arg("token").unwrap_or(""));
            }
            "role-add" => {
                let request = In::RoleAdd(AuthRoleAddRequest {
                    name: words[2].to_string(),
                });
                self.send(node(1), request, arg("token").unwrap_or(""));
            }
            // role-perm N ROLE readwrite|read|write KEY --prefix
            "role-perm" => {
                let perm_type = match words[3] {
                    "read" => PermType::Read,
                    "write" => PermType::Write,
                    _ => PermType::Readwrite,
                };
                let request = In::RoleGrantPermission(AuthRoleGrantPermissionRequest {
                    name: words[2].to_string(),
                    perm: Some(Permission {
                        perm_type: perm_type as i32,
                        key: words[4].as_bytes().to_vec().into(),
                        range_end: if flag("--prefix") {
                            prefix_end(words[4].as_bytes())
                        } else {
                            Vec::new()
                        }
                        .into(),
                    }),
                });
                self.send(node(1), request, arg("token").unwrap_or(""));
            }
            "auth-enable" => self.send(
                node(1),
                In::AuthEnable(AuthEnableRequest {}),
                arg("token").unwrap_or(""),
            ),
            "auth-disable" => self.send(
                node(1),
                In::AuthDisable(AuthDisableRequest {}),
                arg("token").unwrap_or(""),
            ),
            "member-list" => self.send(node(1), In::MemberList(MemberListRequest::default()), ""),
            "member-add" => {
                let request = In::MemberAdd(MemberAddRequest {
                    peer_ur_ls: vec![words[2].to_string()],
                    is_learner: flag("learner"),
                });
                self.send(node(1), request, "");
            }
            "member-remove" => self.send(
                node(1),
                In::MemberRemove(MemberRemoveRequest {
                    id: words[2].parse::<u64>().unwrap(),
                }),
                "",
            ),
            "member-update" => {
                let request = In::MemberUpdate(MemberUpdateRequest {
                    id: words[2].parse::<u64>().unwrap(),
                    peer_ur_ls: vec![words[3].to_string()],
                });
                self.send(node(1), request, "");
            }
            "member-promote" => self.send(
                node(1),
                In::MemberPromote(MemberPromoteRequest {
                    id: words[2].parse::<u64>().unwrap(),
                }),
                "",
            ),
            "auth-status" => self.send(node(1), In::AuthStatus(AuthStatusRequest {}), ""),
            "big-put" => {
                let request = In::Put(PutRequest {
                    key: b"big".to_vec().into(),
                    value: vec![b'x'; num(2) as usize].into(),
                    ..Default::default()
                });
                self.send(node(1), request, "");
            }
            // The member stops; only what it persisted (raft log, backend) survives.
            "crash" => {
                let id = node(1);
                self.members.get_mut(&id).unwrap().server = None;
                writeln!(self.out, "n{id} crashed").unwrap();
            }
            "restart" => {
                let id = node(1);
                let now = self.now_ms;
                let interval = self.checkpoint_interval_ms;
                let snapshot_count = self.snapshot_count;
                let member = self.members.get_mut(&id).unwrap();
                let server = Server::new(
                    config(id, interval, snapshot_count),
                    member.storage.clone(),
                    member.backend.clone(),
                    now,
                )
                .unwrap();
                member.server = Some(server);
                writeln!(self.out, "n{id} restarted").unwrap();
                self.stabilize();
            }
            // partition 1 / 2 3: members in different groups cannot talk.
            "partition" => {
                self.partition.clear();
                let mut group = 0;
                for word in &words[1..] {
                    if *word == "/" {
                        group += 1;
                    } else {
                        self.partition.insert(word.parse().unwrap(), group);
                    }
                }
                writeln!(self.out, "ok").unwrap();
            }
            "heal" => {
                self.partition.clear();
                writeln!(self.out, "ok").unwrap();
            }
            other => panic!("unknown command {other}"),
        }
    }
}

#[test]
fn server_transcripts() {
    insta::glob!("../testdata/server", "*.txt", |path| {
        let script = std::fs::read_to_string(path).unwrap();
        let mut cluster = Cluster::new(1, 300_000, 0);
        for line in script.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                writeln!(cluster.out, "{line}").unwrap();
                continue;
            }
            writeln!(cluster.out, "> {line}").unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            cluster.run(&words);
        }
        insta::assert_snapshot!(cluster.out);
    });
}
