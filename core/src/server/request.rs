//! Client requests: answered locally, proposed through raft, or read through ReadIndex.

use prost::Message as _;
use qraft_proto::etcdserverpb::alarm_request::AlarmAction;
use qraft_proto::etcdserverpb::{
    AuthRoleListResponse, AuthUserListResponse, HashKvResponse, HashResponse,
    LeaseTimeToLiveResponse, MemberListResponse, MoveLeaderResponse, TxnRequest,
};
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::internal_request::Request as Propose;
use qraft_proto::qraftpb::{ClientRequest, Permitted};

use crate::auth::{AuthInfo, new_salt};
use crate::backend::Backend;
use crate::error::Error;
use crate::mvcc::{is_read_only, validate};
use crate::raft::Storage;

use super::apply::set_header;
use super::forward::is_leader_only;
use super::output::{Output, RequestId};
use super::passwords::{Continuation, PasswordWork};
use super::pending::ReadKind;
use super::reopen::HeldRequest;
use super::response::ok_response;
use super::state_machine::Server;

impl<S: Storage, B: Backend> Server<S, B> {
    /// A client request. The answer comes out of [`Server::take_outputs`] as
    /// `Output::Respond { id, .. }` — at once for local answers and refusals, after apply for
    /// writes, after the read index is applied for linearizable reads, after the leader
    /// answered for a leader-only request this member forwards (`super::forward`). A learner
    /// refuses what etcd's learners refuse before anything else (`super::learner`). While the
    /// state reopens after a snapshot from the leader, the request waits for it
    /// (`super::reopen`).
    pub fn request(&mut self, id: RequestId, request: ClientRequest) {
        if self.is_reopening() {
            return self.hold_request(id, HeldRequest::request(id, request));
        }
        if let Some(refusal) = self.learner_refusal(&request) {
            return self.respond_error(id, &refusal, 0);
        }
        if is_leader_only(&request) && !self.is_leader() {
            return self.forward(id, request);
        }
        self.serve_here(id, request);
    }

    /// The first request of a stream the shell serves (watch, lease keep-alive, snapshot): the
    /// member's verdict before the shell goes on. Every unary call goes to
    /// [`Server::request`] instead, which answers it whole, so the shell keeps no list of
    /// calls it may serve itself. A learner refuses what etcd's learners refuse; a snapshot is
    /// then checked as any other call (its token resolved, the root role required) and the
    /// backend's batch committed for it (`Backend::commit_batched`); the other streams' own
    /// requests are checked one by one later. The answer is `Output::Respond { id, .. }`: an
    /// error is the refusal, anything else (`Permitted`) lets the stream go on.
    pub fn admit(&mut self, id: RequestId, request: ClientRequest) {
        if self.is_reopening() {
            return self.hold_request(id, HeldRequest::admit(id, request));
        }
        if let Some(refusal) = self.learner_refusal(&request) {
            return self.respond_error(id, &refusal, 0);
        }
        match request.request {
            Some(In::Watch(_) | In::LeaseKeepAlive(_)) => {
                self.reply(id, Out::Permitted(Permitted {}))
            }
            _ => self.serve_here(id, request),
        }
    }

    /// Serves `request` on this member (the learner rule and forwarding already decided).
    pub(super) fn serve_here(&mut self, id: RequestId, request: ClientRequest) {
        if self.is_reopening() {
            return self.hold_request(id, HeldRequest::serve_here(id, request));
        }
        if request.encoded_len() > self.config.max_request_bytes {
            return self.respond_error(id, &Error::RequestTooLarge, 0);
        }
        let auth = match self.state.auth.auth_info(
            &request.token,
            &request.cert_common_name,
            request.token_claims.as_ref(),
            self.now_ms,
        ) {
            Ok(auth) => auth,
            Err(Error::InvalidAuthToken) => {
                // Perhaps issued by a sign-in this member has not applied yet.
                if !self.wait_for_token(id, request) {
                    self.respond_error(id, &Error::InvalidAuthToken, 0);
                }
                return;
            }
            Err(err) => return self.respond_error(id, &err, 0),
        };
        let Some(body) = request.request else {
            return self.respond_error(id, &Error::NotCapable, 0);
        };
        if let Err((err, hint)) = self.dispatch(id, body, auth) {
            self.respond_error(id, &err, hint);
        }
    }

    fn dispatch(
        &mut self,
        id: RequestId,
        body: In,
        auth: Option<AuthInfo>,
    ) -> Result<(), (Error, u64)> {
        let user = auth
            .as_ref()
            .map(|a| a.username.clone())
            .unwrap_or_default();
        let plain = |err: Error| (err, 0);
        match body {
            In::Range(r) => {
                self.state
                    .auth
                    .check_range(auth.as_ref(), &r)
                    .map_err(plain)?;
                if r.serializable {
                    let response = self.read_locally(&ReadKind::Range(r)).map_err(plain)?;
                    self.reply(id, response);
                    Ok(())
                } else {
                    self.linearizable_read(id, ReadKind::Range(r))
                }
            }
            // etcd's gRPC layer checks a txn's shape with the member's `--max-txn-ops` before
            // anything else; the store checks it again when applying, without the op limit.
            In::Txn(r) if let Err(err) = validate::check_txn(&r, self.config.max_txn_ops) => {
                Err(plain(err))
            }
            In::Txn(r) if is_read_only(&r) => {
                self.state
                    .auth
                    .check_txn(auth.as_ref(), &r)
                    .map_err(plain)?;
                if txn_is_serializable(&r) {
                    let response = self.read_locally(&ReadKind::Txn(r)).map_err(plain)?;
                    self.reply(id, response);
                    Ok(())
                } else {
                    self.linearizable_read(id, ReadKind::Txn(r))
                }
            }
            // Permissions are checked here to refuse early, and again at apply against the
            // auth revision the proposal carries.
            In::Put(r) => {
                self.state
                    .auth
                    .check_put(auth.as_ref(), &r)
                    .map_err(plain)?;
                self.state
                    .check_lease_put(auth.as_ref(), &r)
                    .map_err(plain)?;
                self.propose(Some(id), Propose::Put(r), user)
            }
            In::DeleteRange(r) => {
                self.state
                    .auth
                    .check_delete_range(auth.as_ref(), &r)
                    .map_err(plain)?;
                self.propose(Some(id), Propose::DeleteRange(r), user)
            }
            In::Txn(r) => {
                self.state
                    .auth
                    .check_txn(auth.as_ref(), &r)
                    .map_err(plain)?;
                self.state
                    .check_lease_txn(auth.as_ref(), &r)
                    .map_err(plain)?;
                self.propose(Some(id), Propose::Txn(r), user)
            }
            // etcd 3.6 checks these where the call enters (after GHSA-q8m4-xhhv-38mg): compaction
            // is the root role's; granting, revoking, listing leases and keeping them alive need
            // a signed-in user (revoking and keep-alive also write access to the lease's keys,
            // revoke checked again at apply).
            In::Compaction(r) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.propose(Some(id), Propose::Compaction(r), user)
            }
            In::LeaseGrant(mut r) => {
                self.state
                    .auth
                    .check_authenticated(auth.as_ref())
                    .map_err(plain)?;
                if r.id == 0 {
                    // Chosen before proposing so every member applies the same ID.
                    r.id = self.state.lessor.assign_id();
                }
                self.propose(Some(id), Propose::LeaseGrant(r), user)
            }
            In::LeaseRevoke(r) => {
                self.state
                    .auth
                    .check_authenticated(auth.as_ref())
                    .map_err(plain)?;
                self.propose(Some(id), Propose::LeaseRevoke(r), user)
            }
            In::LeaseKeepAlive(r) => {
                self.state
                    .auth
                    .check_authenticated(auth.as_ref())
                    .map_err(plain)?;
                self.state
                    .check_lease_keys(auth.as_ref(), r.id)
                    .map_err(plain)?;
                // Deadlines live on the leader only (a forwarded request that reached a member
                // which lost the leadership; the asker tries again).
                if !self.is_leader() {
                    return Err(self.with_leader_hint(Error::NotLeader));
                }
                let term = self.leadership.term();
                self.linearizable_read(id, ReadKind::KeepAlive { lease: r.id, term })
            }
            In::LeaseTimeToLive(r) => {
                if !self.is_leader() {
                    return Err(self.with_leader_hint(Error::NotLeader));
                }
                // As etcd: a signed-in user with read access to every key of the lease.
                let keys = self.state.lessor.get(r.id).map(|l| l.keys.clone());
                self.state
                    .auth
                    .check_lease_time_to_live(
                        auth.as_ref(),
                        keys.iter().flatten().map(|k| k.as_ref()),
                    )
                    .map_err(plain)?;
                let response: LeaseTimeToLiveResponse =
                    self.state.lessor.time_to_live(r.id, r.keys, self.now_ms);
                self.reply(id, Out::LeaseTimeToLive(response));
                Ok(())
            }
            In::LeaseLeases(_) => {
                self.state
                    .auth
                    .check_authenticated(auth.as_ref())
                    .map_err(plain)?;
                let response = self.state.lessor.leases();
                self.reply(id, Out::LeaseLeases(response));
                Ok(())
            }
            // The password is checked off the loop (`passwords`).
            In::Authenticate(r) => self.linearizable_read(
                id,
                ReadKind::Authenticate {
                    name: r.name,
                    password: r.password,
                },
            ),
            In::AuthStatus(_) => {
                let response = self.state.auth.status();
                self.reply(id, Out::AuthStatus(response));
                Ok(())
            }
            // Auth management is the root role's: checked here, before any hashing or proposing
            // (etcd 3.6), and again at apply.
            In::AuthEnable(_)
            | In::AuthDisable(_)
            | In::UserAdd(_)
            | In::UserChangePassword(_)
            | In::UserDelete(_)
            | In::UserGrantRole(_)
            | In::UserRevokeRole(_)
            | In::RoleAdd(_)
            | In::RoleDelete(_)
            | In::RoleGrantPermission(_)
            | In::RoleRevokePermission(_) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.auth_management(id, body, user)
            }
            // Reads of the auth store, answered locally: root, or a user reading itself or a
            // role it holds (etcd).
            In::UserGet(r) => {
                self.state
                    .auth
                    .check_user_get(auth.as_ref(), &r.name)
                    .map_err(plain)?;
                let response = self.state.auth.user_get(&r.name).map_err(plain)?;
                self.reply(id, Out::UserGet(response));
                Ok(())
            }
            In::UserList(_) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                let response: AuthUserListResponse = self.state.auth.user_list();
                self.reply(id, Out::UserList(response));
                Ok(())
            }
            In::RoleGet(r) => {
                self.state
                    .auth
                    .check_role_get(auth.as_ref(), &r.role)
                    .map_err(plain)?;
                let response = self.state.auth.role_get(&r.role).map_err(plain)?;
                self.reply(id, Out::RoleGet(response));
                Ok(())
            }
            In::RoleList(_) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                let response: AuthRoleListResponse = self.state.auth.role_list();
                self.reply(id, Out::RoleList(response));
                Ok(())
            }
            In::MemberList(_) => {
                self.state
                    .auth
                    .check_authenticated(auth.as_ref())
                    .map_err(plain)?;
                let members = self.state.wire_members();
                self.reply(
                    id,
                    Out::MemberList(MemberListResponse {
                        header: None,
                        members,
                    }),
                );
                Ok(())
            }
            In::MemberAdd(r) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.member_add(id, r)
            }
            In::MemberRemove(r) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.member_remove(id, r.id)
            }
            In::MemberUpdate(r) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.member_update(id, r.id, r.peer_ur_ls)
            }
            In::MemberPromote(r) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.member_promote(id, r.id)
            }
            In::Downgrade(r) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.linearizable_read(id, ReadKind::Downgrade(r))
            }
            // Every action, GET included, goes through raft as etcd's: the answer is the
            // applied state, the same on every member. With auth enabled, etcd 3.6 lets any
            // signed-in user list alarms and only the root role raise or disarm them; it checks
            // where the call enters, so a member's own raises (`raise_alarm`) are not checked.
            In::Alarm(r) => {
                if r.action == AlarmAction::Get as i32 {
                    self.state.auth.check_authenticated(auth.as_ref())
                } else {
                    self.state.auth.check_admin(auth.as_ref())
                }
                .map_err(plain)?;
                self.propose(Some(id), Propose::Alarm(r), user)
            }
            // Maintenance calls are the root role's in etcd 3.6 (its authMaintenanceServer),
            // Status included.
            In::Status(_) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                let response = self.status_response();
                self.reply(id, Out::Status(response));
                Ok(())
            }
            In::HashKv(r) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                let txn = self.backend.read_txn().map_err(|e| plain(e.into()))?;
                let hashed = self.state.mvcc.hash_kv(&txn, r.revision).map_err(plain)?;
                drop(txn);
                let response = HashKvResponse {
                    header: None,
                    hash: hashed.hash,
                    compact_revision: hashed.compact_revision,
                    hash_revision: hashed.hash_revision,
                };
                self.reply(id, Out::HashKv(response));
                Ok(())
            }
            In::Defragment(_) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.start_defragment(id).map_err(plain)
            }
            In::MoveLeader(r) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.transfer_leader(r.target_id).map_err(plain)?;
                self.reply(id, Out::MoveLeader(MoveLeaderResponse { header: None }));
                Ok(())
            }
            // The shell streams the snapshot from the store's last commit, outside the
            // backend: everything applied before the call must be there first, as etcd's
            // backend commits before it snapshots (`Backend::commit_batched`).
            In::Snapshot(_) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                self.backend.commit_batched().map_err(|e| plain(e.into()))?;
                self.reply(id, Out::Permitted(Permitted {}));
                Ok(())
            }
            // The header's revision is the store's at the hash: the read snapshot and the
            // in-memory store are both at the last applied entry while this runs.
            In::Hash(_) => {
                self.state.auth.check_admin(auth.as_ref()).map_err(plain)?;
                let txn = self.backend.read_txn().map_err(|e| plain(e.into()))?;
                let hash = self.state.mvcc.hash(&txn).map_err(plain)?;
                drop(txn);
                self.reply(id, Out::Hash(HashResponse { header: None, hash }));
                Ok(())
            }
            // Watches are served by the shell's watch hub from `Output::Events`.
            _ => Err(plain(Error::NotCapable)),
        }
    }

    /// An auth management request whose caller passed the admin check: hashed off the loop
    /// first if it carries a clear password, then proposed.
    fn auth_management(
        &mut self,
        id: RequestId,
        body: In,
        user: String,
    ) -> Result<(), (Error, u64)> {
        let plain = |err: Error| (err, 0);
        let cost = self.state.auth.bcrypt_cost();
        match body {
            In::AuthEnable(r) => self.propose(Some(id), Propose::AuthEnable(r), user),
            In::AuthDisable(r) => self.propose(Some(id), Propose::AuthDisable(r), user),
            In::UserAdd(r) => match self.state.auth.prepare_user_add(r).map_err(plain)? {
                (r, None) => self.propose(Some(id), Propose::AuthUserAdd(r), user),
                (request, Some(password)) => {
                    let salt = new_salt(&mut *self.secrets);
                    self.start_password_work(
                        |job| PasswordWork::Hash {
                            job,
                            password,
                            cost,
                            salt,
                        },
                        Continuation::UserAdd {
                            client: id,
                            request,
                            user,
                        },
                    )
                }
            },
            In::UserChangePassword(r) => match self.state.auth.prepare_change_password(r) {
                (r, None) => self.propose(Some(id), Propose::AuthUserChangePassword(r), user),
                (request, Some(password)) => {
                    let salt = new_salt(&mut *self.secrets);
                    self.start_password_work(
                        |job| PasswordWork::Hash {
                            job,
                            password,
                            cost,
                            salt,
                        },
                        Continuation::ChangePassword {
                            client: id,
                            request,
                            user,
                        },
                    )
                }
            },
            In::UserDelete(r) => self.propose(Some(id), Propose::AuthUserDelete(r), user),
            In::UserGrantRole(r) => self.propose(Some(id), Propose::AuthUserGrantRole(r), user),
            In::UserRevokeRole(r) => self.propose(Some(id), Propose::AuthUserRevokeRole(r), user),
            In::RoleAdd(r) => self.propose(Some(id), Propose::AuthRoleAdd(r), user),
            In::RoleDelete(r) => self.propose(Some(id), Propose::AuthRoleDelete(r), user),
            In::RoleGrantPermission(r) => {
                self.propose(Some(id), Propose::AuthRoleGrantPermission(r), user)
            }
            In::RoleRevokePermission(r) => {
                self.propose(Some(id), Propose::AuthRoleRevokePermission(r), user)
            }
            _ => Err(plain(Error::NotCapable)),
        }
    }

    fn with_leader_hint(&self, err: Error) -> (Error, u64) {
        match err {
            Error::NotLeader if self.leadership.leader() == 0 => (Error::NoLeader, 0),
            Error::NotLeader => (Error::NotLeader, self.leadership.leader()),
            other => (other, 0),
        }
    }

    pub(crate) fn reply(&mut self, id: RequestId, mut response: Out) {
        set_header(&mut response, self.header());
        self.outputs.push(Output::Respond {
            id,
            response: ok_response(response),
        });
    }

    pub(crate) fn read_locally(&self, read: &ReadKind) -> Result<Out, Error> {
        let txn = self.backend.read_txn()?;
        Ok(match read {
            ReadKind::Range(r) => Out::Range(self.state.mvcc.range(&txn, r)?),
            ReadKind::Txn(r) => Out::Txn(self.state.mvcc.txn_read_only(&txn, r)?),
            ReadKind::KeepAlive { .. } => return Err(Error::NotCapable),
            ReadKind::Downgrade(_) | ReadKind::Authenticate { .. } => {
                return Err(Error::NotCapable);
            }
        })
    }
}

/// A read-only txn is served locally only if every range in it asks for serializable reads.
fn txn_is_serializable(txn: &TxnRequest) -> bool {
    use qraft_proto::etcdserverpb::request_op::Request as Op;
    txn.success
        .iter()
        .chain(&txn.failure)
        .all(|op| match &op.request {
            Some(Op::RequestRange(r)) => r.serializable,
            Some(Op::RequestTxn(t)) => txn_is_serializable(t),
            _ => false,
        })
}
