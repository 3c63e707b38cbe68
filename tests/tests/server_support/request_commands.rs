//! The transcript commands that are client requests: each builds one etcd request
//! (`qraftpb::ClientRequest`) from its words and sends it to a member, whose answer the
//! transcript shows. The commands that drive the cluster itself (clock, crashes, partitions,
//! workers) are in `server_transcripts.rs`.

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
use qraft_proto::qraftpb::client_request::Request as In;

use super::cluster::Cluster;
use super::format::prefix_end;

impl Cluster {
    /// Runs the request command `words` names (`words[1]` is the member it goes to); panics
    /// on a word that names no command.
    pub(super) fn run_request(&mut self, words: &[&str]) {
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
            other => panic!("unknown command {other}"),
        }
    }
}

pub(super) fn alarm_type(name: &str) -> AlarmType {
    match name {
        "nospace" => AlarmType::Nospace,
        "corrupt" => AlarmType::Corrupt,
        _ => AlarmType::None,
    }
}
