//! Applying one committed request to the application state, inside the batch's write
//! transaction.

use prost::Message as _;
use qraft_proto::etcdserverpb::{
    AuthDisableResponse, AuthEnableResponse, AuthRoleAddResponse, AuthRoleDeleteResponse,
    AuthRoleGrantPermissionResponse, AuthRoleRevokePermissionResponse, AuthUserAddResponse,
    AuthUserChangePasswordResponse, AuthUserDeleteResponse, AuthUserGrantRoleResponse,
    AuthUserRevokeRoleResponse, AuthenticateResponse, LeaseGrantResponse, LeaseRevokeResponse,
    ResponseHeader,
};
use qraft_proto::mvccpb::{Event, event::EventType};
use qraft_proto::qraftpb::client_response::Response;
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::qraftpb::{InternalRequest, MemberRecord};

use crate::auth::AuthInfo;
use crate::backend::{Table, WriteTxn};
use crate::error::{Error, Result};
use crate::mvcc::{KeyRange, KvWriter};

use super::state::AppState;

/// Where and when an entry is applied.
#[derive(Debug, Clone, Copy)]
pub struct ApplyContext {
    pub index: u64,
    pub term: u64,
    pub now_ms: u64,
}

/// The outcome of one applied request: the client's answer (without header) and the changes
/// to the key space it made.
pub struct Outcome {
    /// `Ok(None)` for requests nobody waits on (lease checkpoints).
    pub result: Result<Option<Response>>,
    pub events: Vec<Event>,
}

impl AppState {
    /// Applies `request`. A refused request changes nothing; a failing backend aborts the
    /// whole batch (the caller returns its error and does not commit).
    pub fn apply<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        request: &InternalRequest,
        ctx: ApplyContext,
    ) -> std::result::Result<Outcome, Error> {
        let auth = request.header.as_ref().and_then(|h| {
            (!h.username.is_empty()).then(|| AuthInfo {
                username: h.username.clone(),
                revision: h.auth_revision,
            })
        });
        let mut events = Vec::new();
        let result = self.apply_request(txn, request, auth.as_ref(), ctx, &mut events);
        if let Err(Error::Backend(err)) = &result {
            return Err(Error::Backend(err.clone()));
        }
        self.track_leases(&events);
        Ok(Outcome { result, events })
    }

    fn apply_request<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        request: &InternalRequest,
        auth: Option<&AuthInfo>,
        ctx: ApplyContext,
        events: &mut Vec<Event>,
    ) -> Result<Option<Response>> {
        let Some(req) = &request.request else {
            return Err(Error::NotCapable);
        };
        if let Some(refused) = self.alarms.refusal(req) {
            return Err(refused);
        }
        let lessor = &self.lessor;
        let leases = |id: i64| lessor.get(id).is_some();
        Ok(Some(match req {
            Request::Range(r) => {
                self.auth.check_range(auth, r)?;
                Response::Range(self.mvcc.range(&*txn, r)?)
            }
            Request::Put(r) => {
                self.auth.check_put(auth, r)?;
                self.check_lease_put(auth, r)?;
                let applied = self.mvcc.put(txn, r, &leases)?;
                events.extend(applied.events);
                Response::Put(applied.response)
            }
            Request::DeleteRange(r) => {
                self.auth.check_delete_range(auth, r)?;
                let applied = self.mvcc.delete_range(txn, r)?;
                events.extend(applied.events);
                Response::DeleteRange(applied.response)
            }
            Request::Txn(r) => {
                self.auth.check_txn(auth, r)?;
                self.check_lease_txn(auth, r)?;
                let applied = self.mvcc.txn(txn, r, &leases)?;
                events.extend(applied.events);
                Response::Txn(applied.response)
            }
            Request::Compaction(r) => Response::Compaction(self.mvcc.compact(txn, r)?),
            Request::LeaseGrant(r) => {
                let lease = self.lessor.grant(r.id, r.ttl, ctx.now_ms)?;
                let (id, ttl) = (lease.id, lease.ttl);
                self.lessor.persist(txn, id)?;
                Response::LeaseGrant(LeaseGrantResponse {
                    header: None,
                    id,
                    ttl,
                    error: String::new(),
                })
            }
            Request::LeaseRevoke(r) => {
                let keys = self
                    .lessor
                    .get(r.id)
                    .ok_or(Error::LeaseNotFound)?
                    .keys
                    .clone();
                self.auth
                    .check_lease_revoke(auth, keys.iter().map(|k| k.as_ref()))?;
                let keys = self.lessor.revoke(r.id)?;
                self.lessor.persist(txn, r.id)?;
                // Every attached key goes in one revision, so watchers see one atomic change.
                let mut writer = KvWriter::new(&mut self.mvcc, txn);
                for key in &keys {
                    writer.delete_range(KeyRange::from_request(key, &[]))?;
                }
                events.extend(writer.finish());
                Response::LeaseRevoke(LeaseRevokeResponse { header: None })
            }
            Request::LeaseCheckpoint(r) => {
                self.lessor.apply_checkpoints(r, ctx.now_ms);
                for checkpoint in &r.checkpoints {
                    self.lessor.persist(txn, checkpoint.id)?;
                }
                return Ok(None);
            }
            Request::Alarm(r) => Response::Alarm(self.alarms.apply(txn, r)?),
            Request::HashCheck(r) => {
                self.check_hash(&*txn, r);
                return Ok(None);
            }
            Request::ClusterMemberAttrSet(r) => {
                self.apply_member_attrs(txn, r)?;
                return Ok(None);
            }
            // The password was checked at the auth revision the entry carries; if users or
            // roles changed since (a new password among them), the check no longer holds.
            Request::Authenticate(r) => {
                let checked_at = request.header.as_ref().map_or(0, |h| h.auth_revision);
                if checked_at < self.auth.revision() {
                    return Err(Error::AuthOldRevision);
                }
                let token =
                    self.auth
                        .authenticate(&r.name, &r.simple_token, ctx.index, ctx.now_ms)?;
                Response::Authenticate(AuthenticateResponse {
                    header: None,
                    token,
                })
            }
            _ => return self.apply_auth_admin(txn, req, auth).map(Some),
        }))
    }

    /// User, role and enable/disable changes: root role only, persisted together.
    fn apply_auth_admin<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        req: &Request,
        auth: Option<&AuthInfo>,
    ) -> Result<Response> {
        self.auth.check_admin(auth)?;
        let store = &mut self.auth;
        let response = match req {
            Request::AuthEnable(_) => {
                store.enable()?;
                Response::AuthEnable(AuthEnableResponse { header: None })
            }
            Request::AuthDisable(_) => {
                store.disable();
                Response::AuthDisable(AuthDisableResponse { header: None })
            }
            Request::AuthUserAdd(r) => {
                store.user_add(r)?;
                Response::UserAdd(AuthUserAddResponse { header: None })
            }
            Request::AuthUserDelete(r) => {
                store.user_delete(&r.name)?;
                Response::UserDelete(AuthUserDeleteResponse { header: None })
            }
            Request::AuthUserChangePassword(r) => {
                store.user_change_password(r)?;
                Response::UserChangePassword(AuthUserChangePasswordResponse { header: None })
            }
            Request::AuthUserGrantRole(r) => {
                store.user_grant_role(&r.user, &r.role)?;
                Response::UserGrantRole(AuthUserGrantRoleResponse { header: None })
            }
            Request::AuthUserRevokeRole(r) => {
                store.user_revoke_role(&r.name, &r.role)?;
                Response::UserRevokeRole(AuthUserRevokeRoleResponse { header: None })
            }
            Request::AuthRoleAdd(r) => {
                store.role_add(&r.name)?;
                Response::RoleAdd(AuthRoleAddResponse { header: None })
            }
            Request::AuthRoleDelete(r) => {
                store.role_delete(&r.role)?;
                Response::RoleDelete(AuthRoleDeleteResponse { header: None })
            }
            Request::AuthRoleGrantPermission(r) => {
                store.role_grant_permission(&r.name, r.perm.as_ref())?;
                Response::RoleGrantPermission(AuthRoleGrantPermissionResponse { header: None })
            }
            Request::AuthRoleRevokePermission(r) => {
                store.role_revoke_permission(&r.role, &r.key, &r.range_end)?;
                Response::RoleRevokePermission(AuthRoleRevokePermissionResponse { header: None })
            }
            _ => return Err(Error::NotCapable),
        };
        self.auth.persist(txn)?;
        Ok(response)
    }

    /// Keeps the lessor's key → lease links in step with the key space.
    fn track_leases(&mut self, events: &[Event]) {
        for event in events {
            let Some(kv) = &event.kv else { continue };
            self.lessor.detach(&kv.key);
            if event.r#type == EventType::Put as i32 && kv.lease != 0 {
                // The lease was checked to exist when the put was applied.
                let _ = self.lessor.attach(kv.lease, kv.key.clone());
            }
        }
    }

    /// Records a member (from a conf change's context) in the members table.
    pub fn put_member<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        member: MemberRecord,
    ) -> Result<()> {
        txn.put(
            Table::Members,
            &member.id.to_be_bytes(),
            &member.encode_to_vec(),
        )?;
        self.members.insert(member.id, member);
        Ok(())
    }

    pub fn remove_member<T: WriteTxn + ?Sized>(&mut self, txn: &mut T, id: u64) -> Result<()> {
        txn.delete(Table::Members, &id.to_be_bytes())?;
        txn.put(Table::MembersRemoved, &id.to_be_bytes(), &[])?;
        self.members.remove(&id);
        self.removed_members.insert(id);
        Ok(())
    }
}

/// Sets the header of any response variant. Responses of etcd's Cluster service carry no
/// revision (etcd fills only cluster id, member id and term there), so neither do ours.
pub fn set_header(response: &mut Response, mut header: ResponseHeader) {
    if matches!(
        response,
        Response::MemberAdd(_)
            | Response::MemberRemove(_)
            | Response::MemberUpdate(_)
            | Response::MemberList(_)
            | Response::MemberPromote(_)
    ) {
        header.revision = 0;
    }
    macro_rules! set {
        ($($variant:ident),*) => {
            match response {
                $(Response::$variant(r) => r.header = Some(header),)*
                Response::Error(_) | Response::Permitted(_) => {}
            }
        };
    }
    set!(
        Range,
        Put,
        DeleteRange,
        Txn,
        Compaction,
        Watch,
        LeaseGrant,
        LeaseRevoke,
        LeaseKeepAlive,
        LeaseTimeToLive,
        LeaseLeases,
        MemberAdd,
        MemberRemove,
        MemberUpdate,
        MemberList,
        MemberPromote,
        Alarm,
        Status,
        Defragment,
        Hash,
        HashKv,
        Snapshot,
        MoveLeader,
        Downgrade,
        AuthEnable,
        AuthDisable,
        AuthStatus,
        Authenticate,
        UserAdd,
        UserGet,
        UserList,
        UserDelete,
        UserChangePassword,
        UserGrantRole,
        UserRevokeRole,
        RoleAdd,
        RoleGet,
        RoleList,
        RoleDelete,
        RoleGrantPermission,
        RoleRevokePermission
    );
}
