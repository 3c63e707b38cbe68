//! Transcript tests of the state machine: one or more `Server`s over in-memory raft storage,
//! backends and network, driven by an explicit clock. Each script in `testdata/server/` is run
//! and every command's output (client responses, watch events) is snapshotted. This file holds
//! the commands that drive the cluster (clock, crashes, partitions, workers, reports); the
//! client requests are in `server_support/request_commands.rs`.

// Test harness: reading the scripts is the runner's IO; a failed write to a String is a bug.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

#[path = "server_support/cluster.rs"]
mod cluster;
#[path = "server_support/format.rs"]
mod format;
#[path = "server_support/reports.rs"]
mod reports;
#[path = "server_support/request_commands.rs"]
mod request_commands;

use cluster::{Cluster, config};
use request_commands::alarm_type;

use std::fmt::Write as _;

use qraft_core::server::Server;
use qraft_core::server::describe_alarm;
use qraft_core::version::Version;
use qraft_proto::etcdserverpb::{DefragmentRequest, RangeRequest};
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
            // repeat N COMMAND…: runs the command N times.
            "repeat" => {
                for _ in 0..num(1) {
                    self.run(&words[2..]);
                }
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
            // The version fields of Maintenance.Status, and the replicated version state.
            "versions" => self.report_versions(),
            // The member records one member holds: name and client URLs as applied.
            "member-attrs" => self.report_member_attrs(node(1)),
            // peers N: whom member N dials, what it tells joining members, whom it refuses.
            "peers" => self.report_peers(node(1)),
            // leader-changes: the leader each member knows and how often it changed.
            "leader-changes" => self.report_leader_changes(),
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
            _ => self.run_request(words),
        }
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
