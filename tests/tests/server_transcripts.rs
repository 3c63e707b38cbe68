//! Transcript tests of the state machine: one or more `Server`s over in-memory raft storage,
//! backends and network, driven by an explicit clock. Each script in `testdata/server/` is run
//! and every command's output (client responses, watch events) is snapshotted.

// Test harness: reading the scripts is the runner's IO; a failed write to a String is a bug.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

#[path = "server_support/cluster.rs"]
mod cluster;
#[path = "server_support/format.rs"]
mod format;
#[path = "server_support/reports.rs"]
mod reports;

use cluster::{Cluster, config};
use format::prefix_end;

use std::fmt::Write as _;

use qraft_core::server::Server;
use qraft_core::server::describe_alarm;
use qraft_core::version::Version;
use qraft_proto::authpb::Permission;
use qraft_proto::authpb::permission::Type as PermType;
use qraft_proto::etcdserverpb::alarm_request::AlarmAction;
use qraft_proto::etcdserverpb::request_op::Request as Op;
use qraft_proto::etcdserverpb::{AlarmRequest, AlarmType, RequestOp, TxnRequest};
use qraft_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleGrantPermissionRequest,
    AuthStatusRequest, AuthUserAddRequest, AuthUserGrantRoleRequest, AuthenticateRequest,
    DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest,
    LeaseRevokeRequest, LeaseTimeToLiveRequest, MemberAddRequest, MemberListRequest,
    MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest, PutRequest, RangeRequest,
};
use qraft_proto::etcdserverpb::{
    AuthRoleGetRequest, AuthUserChangePasswordRequest, AuthUserGetRequest,
};
use qraft_proto::etcdserverpb::{
    CompactionRequest, DefragmentRequest, DowngradeRequest, HashKvRequest, HashRequest,
    MoveLeaderRequest, SnapshotRequest, StatusRequest, downgrade_request::DowngradeAction,
};
use qraft_proto::qraftpb::ClientRequest;
use qraft_proto::qraftpb::client_request::Request as In;

impl Cluster {
    fn run(&mut self, words: &[&str]) {
        let node = |i: usize| -> u64 { words[i].trim_start_matches('n').parse().unwrap() };
        let num = |i: usize| -> i64 { words[i].parse().unwrap() };
        let arg = |name: &str| -> Option<&str> {
            words
                .iter()
                .find_map(|w| w.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        };
        let flag = |name: &str| words.contains(&name);
        // token=ALIAS (from `auth … as=ALIAS`) or a literal token, on any request command.
        let token = arg("token").unwrap_or("");
        match words[0] {
            // cluster N [checkpoint-interval-ms=MS] [snapshot-count=N] [publish-attrs]
            // [strict-reconfig]: a new cluster of N members.
            "cluster" => {
                let interval =
                    arg("checkpoint-interval-ms").map_or(300_000, |v| v.parse().unwrap());
                let snapshot_count = arg("snapshot-count").map_or(0, |v| v.parse().unwrap());
                let out = std::mem::take(&mut self.out);
                *self = Cluster::new_with(
                    num(1) as u64,
                    interval,
                    snapshot_count,
                    flag("publish-attrs"),
                    flag("strict-reconfig"),
                );
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
            "compacted" => self.compacted(),
            // The replicated lease state of one member (granted TTL, checkpointed remainder)
            // and, on the leader, the deadline.
            "lessor" => {
                let state = self.server(node(1)).state().expect("the state is open");
                let lines: Vec<String> = state
                    .lessor
                    .records()
                    .map(|r| {
                        let expiry = state.lessor.get(r.id).and_then(|l| l.expiry_ms());
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
                // nowait: proposed but not run, so a later request's check at entry sees
                // the state before this one applies.
                if flag("nowait") {
                    self.submit(node(1), request, token);
                } else {
                    self.send(node(1), request, token);
                }
            }
            // repeat N COMMAND…: runs the command N times.
            "repeat" => {
                for _ in 0..num(1) {
                    self.run(&words[2..]);
                }
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
                    revision: arg("rev").map_or(0, |v| v.parse().unwrap()),
                    ..Default::default()
                });
                self.send(node(1), request, token);
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
                            cert_common_name: String::new(),
                            token_claims: None,
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
                self.send(node(1), request, token);
            }
            "grant" => {
                let request = In::LeaseGrant(LeaseGrantRequest {
                    ttl: num(2),
                    id: arg("id").map_or(0, |v| v.parse().unwrap()),
                });
                self.send(node(1), request, token);
            }
            "revoke" => self.send(
                node(1),
                In::LeaseRevoke(LeaseRevokeRequest { id: num(2) }),
                token,
            ),
            "keepalive" => self.send(
                node(1),
                In::LeaseKeepAlive(LeaseKeepAliveRequest { id: num(2) }),
                token,
            ),
            "ttl" => self.send(
                node(1),
                In::LeaseTimeToLive(LeaseTimeToLiveRequest {
                    id: num(2),
                    keys: true,
                }),
                token,
            ),
            "leases" => self.send(node(1), In::LeaseLeases(LeaseLeasesRequest {}), token),
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
                self.send(node(1), request, token);
            }
            "user-add" => {
                let request = In::UserAdd(AuthUserAddRequest {
                    name: words[2].to_string(),
                    password: words[3].to_string(),
                    ..Default::default()
                });
                self.send(node(1), request, token);
            }
            "user-grant" => {
                let request = In::UserGrantRole(AuthUserGrantRoleRequest {
                    user: words[2].to_string(),
                    role: words[3].to_string(),
                });
                self.send(node(1), request, token);
            }
            "role-add" => {
                let request = In::RoleAdd(AuthRoleAddRequest {
                    name: words[2].to_string(),
                });
                self.send(node(1), request, token);
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
                self.send(node(1), request, token);
            }
            "auth-enable" => self.send(node(1), In::AuthEnable(AuthEnableRequest {}), token),
            "auth-disable" => self.send(node(1), In::AuthDisable(AuthDisableRequest {}), token),
            "member-list" => {
                self.send(node(1), In::MemberList(MemberListRequest::default()), token)
            }
            "member-add" => {
                let request = In::MemberAdd(MemberAddRequest {
                    peer_ur_ls: vec![words[2].to_string()],
                    is_learner: flag("learner"),
                });
                self.send(node(1), request, token);
            }
            "member-remove" => self.send(
                node(1),
                In::MemberRemove(MemberRemoveRequest {
                    id: words[2].parse::<u64>().unwrap(),
                }),
                token,
            ),
            // member-update N ID URL…: the member's peer URLs become URL….
            "member-update" => {
                let request = In::MemberUpdate(MemberUpdateRequest {
                    id: words[2].parse::<u64>().unwrap(),
                    peer_ur_ls: words[3..]
                        .iter()
                        .filter(|w| !w.contains('='))
                        .map(|w| w.to_string())
                        .collect(),
                });
                self.send(node(1), request, token);
            }
            "member-promote" => self.send(
                node(1),
                In::MemberPromote(MemberPromoteRequest {
                    id: words[2].parse::<u64>().unwrap(),
                }),
                token,
            ),
            "auth-status" => self.send(node(1), In::AuthStatus(AuthStatusRequest {}), token),
            "big-put" => {
                let request = In::Put(PutRequest {
                    key: b"big".to_vec().into(),
                    value: vec![b'x'; num(2) as usize].into(),
                    ..Default::default()
                });
                self.send(node(1), request, token);
            }
            // defrag-begin N: member N is asked to defragment, and its shell's copy takes a
            // while (held until `defrag-end`): raft goes on, committed entries wait.
            "defrag-begin" => {
                self.hold_defrag = true;
                self.send(node(1), In::Defragment(DefragmentRequest {}), token);
            }
            // hold-state-open: from now on, a member's state opened after a snapshot install
            // (`Output::OpenState`) waits for `open-state N`, as on a slow worker thread.
            "hold-state-open" => {
                self.hold_state_opens = true;
                writeln!(self.out, "state opens held").unwrap();
            }
            // open-state N: member N's worker hands the opened state back.
            "open-state" => self.release_state_opens(Some(node(1))),
            // defrag-end: the held copies are in place; what waited is applied at once.
            "defrag-end" => {
                self.hold_defrag = false;
                for (id, request) in std::mem::take(&mut self.held_defrags) {
                    let server = self.server(id);
                    server.defragment_done(request, Ok(()));
                    server.apply_waiting().unwrap();
                    writeln!(self.out, "n{id} defragmented").unwrap();
                }
                self.stabilize();
            }
            // The member stops; only what it persisted (raft log, backend) survives.
            "crash" => {
                let id = node(1);
                if self.members[&id].server.is_none() {
                    writeln!(self.out, "n{id} is down").unwrap();
                    return;
                }
                self.members.get_mut(&id).unwrap().server = None;
                self.sync_links();
                writeln!(self.out, "n{id} crashed").unwrap();
            }
            // restart N [emulate=0.1] [corrupt-check=TICKS] [initial-check] [max-txn-ops=N]
            // [auto-compaction=periodic:MS|revision:N]:
            // the member starts again on its persisted state, as this binary or emulating an
            // older minor version, with these settings; a refusal to start is printed.
            "restart" => {
                let id = node(1);
                let now = self.now_ms;
                let mut config = config(id, self.checkpoint_interval_ms, self.snapshot_count);
                config.emulated_version = arg("emulate").map(|v| Version::parse(v).unwrap());
                config.corrupt_check_ticks = arg("corrupt-check").map_or(0, |v| v.parse().unwrap());
                config.initial_corrupt_check = flag("initial-check");
                if let Some(ops) = arg("max-txn-ops") {
                    config.max_txn_ops = ops.parse().unwrap();
                }
                config.auto_compaction = arg("auto-compaction").map(cluster::auto_compaction);
                if self.publish_attrs {
                    config.member_attrs = Some(cluster::member_attrs(id));
                }
                config.strict_reconfig_check = self.strict_reconfig;
                // The new server learns its links afresh.
                self.links.retain(|&(member, _), _| member != id);
                let member = self.members.get_mut(&id).unwrap();
                match Server::new(
                    config,
                    member.storage.clone(),
                    member.backend.clone(),
                    now,
                    cluster::test_secrets(id),
                ) {
                    Ok(server) => {
                        member.server = Some(server);
                        writeln!(self.out, "n{id} restarted").unwrap();
                        self.stabilize();
                    }
                    Err(err) => writeln!(self.out, "n{id} refused to start: {err}").unwrap(),
                }
            }
            // downgrade N validate|enable|cancel [VERSION]: Maintenance.Downgrade.
            "downgrade" => {
                let action = match words[2] {
                    "validate" => DowngradeAction::Validate,
                    "enable" => DowngradeAction::Enable,
                    _ => DowngradeAction::Cancel,
                };
                let request = In::Downgrade(DowngradeRequest {
                    action: action as i32,
                    version: words.get(3).unwrap_or(&"").to_string(),
                });
                self.send(node(1), request, token);
            }
            // The version fields of Maintenance.Status, and the replicated version state.
            "versions" => self.report_versions(),
            // The member records one member holds: name and client URLs as applied.
            "member-attrs" => self.report_member_attrs(node(1)),
            // peers N: whom member N dials, what it tells joining members, whom it refuses.
            "peers" => self.report_peers(node(1)),
            // leader-changes: the leader each member knows and how often it changed.
            "leader-changes" => self.report_leader_changes(),
            "status-rpc" => self.send(node(1), In::Status(StatusRequest {}), token),
            // The calls a member's shell serves itself: the state machine only says whether the
            // caller may make them (`Permitted ok`).
            "defrag" => self.send(node(1), In::Defragment(DefragmentRequest {}), token),
            "snapshot" => self.send(node(1), In::Snapshot(SnapshotRequest {}), token),
            "move-leader" => {
                let request = In::MoveLeader(MoveLeaderRequest {
                    target_id: num(2) as u64,
                });
                self.send(node(1), request, token);
            }
            "hash" => self.send(node(1), In::Hash(HashRequest {}), token),
            // compact N REV / hashkv N [REV]
            "compact" => self.send(
                node(1),
                In::Compaction(CompactionRequest {
                    revision: num(2),
                    physical: true,
                }),
                token,
            ),
            "hashkv" => self.send(
                node(1),
                In::HashKv(HashKvRequest {
                    revision: words.get(2).and_then(|w| w.parse().ok()).unwrap_or(0),
                }),
                token,
            ),
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
            // alarm N list|get|activate|deactivate [MEMBER] [nospace|corrupt]: Maintenance.Alarm.
            "alarm" => {
                let (action, member, alarm) = match words[2] {
                    "list" => (AlarmAction::Get, 0, "none"),
                    "get" => (AlarmAction::Get, 0, words[3]),
                    "activate" => (AlarmAction::Activate, num(3) as u64, words[4]),
                    _ => (AlarmAction::Deactivate, num(3) as u64, words[4]),
                };
                let request = In::Alarm(AlarmRequest {
                    action: action as i32,
                    member_id: member,
                    alarm: alarm_type(alarm) as i32,
                });
                self.send(node(1), request, token);
            }
            // raise N nospace|corrupt: the member's shell found the condition (twice: the
            // second call must not propose again while the first is in flight).
            "raise" => {
                let alarm = alarm_type(words[2]);
                let server = self.server(node(1));
                server.raise_alarm(alarm);
                server.raise_alarm(alarm);
                self.stabilize();
                let alarms: Vec<String> = self
                    .server(node(1))
                    .alarms()
                    .iter()
                    .map(describe_alarm)
                    .collect();
                writeln!(self.out, "alarms: [{}]", alarms.join(", ")).unwrap();
            }
            // quota N BYTES: member N's backend gets a quota of BYTES (its keys' and values'
            // bytes count against it); the core checks it every few ticks.
            "quota" => {
                let bytes = num(2) as u64;
                self.members[&node(1)].backend.0.set_quota(Some(bytes));
                writeln!(self.out, "ok").unwrap();
            }
            // tamper N KEY VALUE: changes the stored value of every revision of KEY in member
            // N's backend behind raft's back (what a disk corruption does).
            "tamper" => {
                use prost::Message as _;
                use qraft_core::backend::{
                    Backend as _, ReadTxn as _, Table, Visit, WriteTxn as _,
                };
                let backend = &self.members[&node(1)].backend;
                let mut txn = backend.write_txn().unwrap();
                let mut rows = Vec::new();
                txn.scan(Table::Key, &[], None, &mut |k, v| {
                    let kv = qraft_proto::mvccpb::KeyValue::decode(v).unwrap();
                    if kv.key.as_ref() == words[2].as_bytes() {
                        rows.push((k.to_vec(), kv));
                    }
                    Visit::Continue(())
                })
                .unwrap();
                for (k, mut kv) in rows {
                    kv.value = words[3].as_bytes().to_vec().into();
                    txn.put(Table::Key, &k, &kv.encode_to_vec()).unwrap();
                }
                txn.commit().unwrap();
                writeln!(self.out, "ok").unwrap();
            }
            // txn-put N KEY VALUE [lease=ID] [nested] [ops=K]: a txn whose success branch puts
            // (inside a nested txn with `nested`); with `ops=K`, K puts of KEY0..KEY<K-1>.
            "txn-put" => {
                let ops = arg("ops").map_or(1, |v| v.parse().unwrap());
                let puts = (0..ops).map(|i| {
                    let key = match arg("ops") {
                        Some(_) => format!("{}{i}", words[2]),
                        None => words[2].to_string(),
                    };
                    RequestOp {
                        request: Some(Op::RequestPut(PutRequest {
                            key: key.into_bytes().into(),
                            value: words[3].as_bytes().to_vec().into(),
                            lease: arg("lease").map_or(0, |v| v.parse().unwrap()),
                            ..Default::default()
                        })),
                    }
                });
                let success = if flag("nested") {
                    vec![RequestOp {
                        request: Some(Op::RequestTxn(TxnRequest {
                            success: puts.collect(),
                            ..Default::default()
                        })),
                    }]
                } else {
                    puts.collect()
                };
                let request = In::Txn(TxnRequest {
                    success,
                    ..Default::default()
                });
                self.send(node(1), request, token);
            }
            "user-passwd" => {
                let request = In::UserChangePassword(AuthUserChangePasswordRequest {
                    name: words[2].to_string(),
                    password: words[3].to_string(),
                    ..Default::default()
                });
                self.send(node(1), request, token);
            }
            "user-get" => {
                let request = In::UserGet(AuthUserGetRequest {
                    name: words[2].to_string(),
                });
                self.send(node(1), request, token);
            }
            "role-get" => {
                let request = In::RoleGet(AuthRoleGetRequest {
                    role: words[2].to_string(),
                });
                self.send(node(1), request, token);
            }
            // bcrypt: how many bcrypt jobs the members asked their shell for, and how many wait.
            "bcrypt" => writeln!(
                self.out,
                "bcrypt jobs: {} ({} held)",
                self.bcrypt_jobs,
                self.held_bcrypt.len()
            )
            .unwrap(),
            // bcrypt-hold: jobs wait until `bcrypt-release [N] [newest]` runs the N oldest
            // (newest) held ones, or all; holding ends with the release.
            "bcrypt-hold" => self.hold_bcrypt = true,
            "bcrypt-release" => {
                self.hold_bcrypt = false;
                let count = words
                    .get(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                self.release_bcrypt(count, flag("newest"));
            }
            other => panic!("unknown command {other}"),
        }
    }
}

fn alarm_type(name: &str) -> AlarmType {
    match name {
        "nospace" => AlarmType::Nospace,
        "corrupt" => AlarmType::Corrupt,
        _ => AlarmType::None,
    }
}

#[test]
fn server_transcripts() {
    insta::glob!("../testdata/server", "*.txt", |path| {
        let script = std::fs::read_to_string(path).unwrap();
        let mut cluster = Cluster::new(1, 300_000, 0);
        let transcript = qraft_tests::transcript::run_script(&script, |line, out| {
            let words: Vec<&str> = line.split_whitespace().collect();
            cluster.run(&words);
            out.push_str(&std::mem::take(&mut cluster.out));
        });
        insta::assert_snapshot!(transcript);
    });
}
