//! Typed methods for every unary client call.

use qraft_proto::etcdserverpb::*;
use qraft_proto::qraftpb::client_request::Request;
use qraft_proto::qraftpb::client_response::Response;

use super::{Client, ClientError};

/// One typed unary method: wraps the request, checks the response variant. `idempotent`
/// calls may be retried after a lost response; the others only when provably not sent.
macro_rules! unary {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $req:ty, $resp:ty, $idempotent:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, req: $req) -> Result<$resp, ClientError> {
            match self.call(Request::$variant(req), $idempotent).await?.response {
                Some(Response::$variant(resp)) => Ok(resp),
                other => Err(ClientError::unexpected(stringify!($variant), other)),
            }
        }
    };
}

impl Client {
    unary!(
        /// Reads keys (linearizable unless `serializable`).
        range, Range, RangeRequest, RangeResponse, true
    );
    unary!(
        /// Writes a key.
        put, Put, PutRequest, PutResponse, false
    );
    unary!(
        /// Deletes a key or range.
        delete_range, DeleteRange, DeleteRangeRequest, DeleteRangeResponse, false
    );
    unary!(
        /// Runs a transaction (never retried once sent, even when read-only).
        txn, Txn, TxnRequest, TxnResponse, false
    );
    unary!(
        /// Compacts the key history.
        compact, Compaction, CompactionRequest, CompactionResponse, false
    );
    unary!(
        /// Grants a lease.
        lease_grant, LeaseGrant, LeaseGrantRequest, LeaseGrantResponse, false
    );
    unary!(
        /// Revokes a lease and deletes its keys.
        lease_revoke, LeaseRevoke, LeaseRevokeRequest, LeaseRevokeResponse, false
    );
    unary!(
        /// Remaining TTL of a lease (TTL -1 when unknown).
        lease_time_to_live, LeaseTimeToLive, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, true
    );
    unary!(
        /// Lists leases.
        lease_leases, LeaseLeases, LeaseLeasesRequest, LeaseLeasesResponse, true
    );
    unary!(
        /// Adds a member (or learner).
        member_add, MemberAdd, MemberAddRequest, MemberAddResponse, false
    );
    unary!(
        /// Removes a member.
        member_remove, MemberRemove, MemberRemoveRequest, MemberRemoveResponse, false
    );
    unary!(
        /// Changes a member's peer URLs.
        member_update, MemberUpdate, MemberUpdateRequest, MemberUpdateResponse, false
    );
    unary!(
        /// Lists members.
        member_list, MemberList, MemberListRequest, MemberListResponse, true
    );
    unary!(
        /// Promotes a learner to voter.
        member_promote, MemberPromote, MemberPromoteRequest, MemberPromoteResponse, false
    );
    unary!(
        /// Gets, activates or deactivates alarms.
        alarm, Alarm, AlarmRequest, AlarmResponse, false
    );
    unary!(
        /// Status of the member serving the connection.
        status, Status, StatusRequest, StatusResponse, true
    );
    unary!(
        /// Defragments the member's storage.
        defragment, Defragment, DefragmentRequest, DefragmentResponse, false
    );
    unary!(
        /// Hash of the member's storage.
        hash, Hash, HashRequest, HashResponse, true
    );
    unary!(
        /// Hash of the key space up to a revision.
        hash_kv, HashKv, HashKvRequest, HashKvResponse, true
    );
    unary!(
        /// Transfers leadership.
        move_leader, MoveLeader, MoveLeaderRequest, MoveLeaderResponse, false
    );
    unary!(
        /// Validates, enables or cancels a downgrade.
        downgrade, Downgrade, DowngradeRequest, DowngradeResponse, false
    );
    unary!(
        /// Enables authentication.
        auth_enable, AuthEnable, AuthEnableRequest, AuthEnableResponse, false
    );
    unary!(
        /// Disables authentication.
        auth_disable, AuthDisable, AuthDisableRequest, AuthDisableResponse, false
    );
    unary!(
        /// Whether authentication is enabled.
        auth_status, AuthStatus, AuthStatusRequest, AuthStatusResponse, true
    );
    unary!(
        /// Adds a user.
        user_add, UserAdd, AuthUserAddRequest, AuthUserAddResponse, false
    );
    unary!(
        /// A user's roles.
        user_get, UserGet, AuthUserGetRequest, AuthUserGetResponse, true
    );
    unary!(
        /// Lists users.
        user_list, UserList, AuthUserListRequest, AuthUserListResponse, true
    );
    unary!(
        /// Deletes a user.
        user_delete, UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse, false
    );
    unary!(
        /// Changes a user's password.
        user_change_password, UserChangePassword, AuthUserChangePasswordRequest, AuthUserChangePasswordResponse, false
    );
    unary!(
        /// Grants a role to a user.
        user_grant_role, UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse, false
    );
    unary!(
        /// Revokes a role from a user.
        user_revoke_role, UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, false
    );
    unary!(
        /// Adds a role.
        role_add, RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse, false
    );
    unary!(
        /// A role's permissions.
        role_get, RoleGet, AuthRoleGetRequest, AuthRoleGetResponse, true
    );
    unary!(
        /// Lists roles.
        role_list, RoleList, AuthRoleListRequest, AuthRoleListResponse, true
    );
    unary!(
        /// Deletes a role.
        role_delete, RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse, false
    );
    unary!(
        /// Grants a key-range permission to a role.
        role_grant_permission, RoleGrantPermission, AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse, false
    );
    unary!(
        /// Revokes a permission from a role.
        role_revoke_permission, RoleRevokePermission, AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, false
    );

    /// Authenticates and uses the returned token for every following request.
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
    ) -> Result<AuthenticateResponse, ClientError> {
        let req = AuthenticateRequest {
            name: name.to_string(),
            password: password.to_string(),
        };
        match self.call(Request::Authenticate(req), true).await?.response {
            Some(Response::Authenticate(resp)) => {
                self.set_token(Some(resp.token.clone()));
                Ok(resp)
            }
            other => Err(ClientError::unexpected("Authenticate", other)),
        }
    }

    /// Reads one key.
    pub async fn get(&self, key: impl Into<Vec<u8>>) -> Result<RangeResponse, ClientError> {
        self.range(RangeRequest {
            key: key.into().into(),
            ..Default::default()
        })
        .await
    }

    /// Writes one key.
    pub async fn put_kv(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<PutResponse, ClientError> {
        self.put(PutRequest {
            key: key.into().into(),
            value: value.into().into(),
            ..Default::default()
        })
        .await
    }
}
