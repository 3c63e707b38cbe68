//! Permission checks of client requests against the auth store.

use qraft_proto::etcdserverpb::request_op::Request as Op;
use qraft_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use qraft_proto::qraftpb::TokenClaims;

use super::range::{Access, KeyInterval, covers};
use super::store::{AuthInfo, AuthStore, ROOT};
use super::token::TokenStore;
use crate::error::Error;

impl AuthStore {
    /// Resolves a request's token to its user; without a token, the user is the common name of
    /// the request's verified client certificate, if any. `Ok(None)` when auth is disabled or
    /// the request names no user (the permission checks then refuse it if auth is enabled).
    ///
    /// With signed tokens the embedder already checked the token and passes its `claims`: the
    /// user and the auth revision come from them (etcd's JWT rule), so a token issued before
    /// users or roles changed is refused as "revision of auth store is old" and the client
    /// signs in again. A token without claims, or with claims that did not verify, is invalid.
    pub fn auth_info(
        &mut self,
        token: &str,
        cert_common_name: &str,
        claims: Option<&TokenClaims>,
        now_ms: u64,
    ) -> Result<Option<AuthInfo>, Error> {
        if !self.enabled {
            return Ok(None);
        }
        if token.is_empty() {
            // etcd's `AuthInfoFromTLS`: the verified client certificate names the user; whether
            // that user exists and may do this is checked like any other user's request.
            return Ok((!cert_common_name.is_empty()).then(|| AuthInfo {
                username: cert_common_name.to_string(),
                revision: self.revision,
            }));
        }
        if self.config.signed_tokens {
            return match claims {
                Some(claims) if claims.valid => Ok(Some(AuthInfo {
                    username: claims.username.clone(),
                    revision: claims.revision,
                })),
                _ => Err(Error::InvalidAuthToken),
            };
        }
        let username = self
            .tokens
            .user_of(token, now_ms)
            .ok_or(Error::InvalidAuthToken)?;
        Ok(Some(AuthInfo {
            username,
            revision: self.revision,
        }))
    }

    /// A simple token this member does not know yet because the sign-in that issued it was
    /// applied at an index past `applied`: that index, to wait for (etcd's
    /// `isValidSimpleToken` waits for the token's index before refusing it). `None` for a
    /// token to judge now.
    pub fn token_issued_after(&self, token: &str, applied: u64) -> Option<u64> {
        if !self.enabled || self.config.signed_tokens {
            return None;
        }
        TokenStore::index_of(token).filter(|&index| index > applied)
    }

    /// Drops expired tokens; call now and then so memory stays bounded.
    pub fn sweep_tokens(&mut self, now_ms: u64) {
        self.tokens.sweep(now_ms);
        let users = &self.users;
        self.logins.sweep(now_ms, |user| users.contains_key(user));
    }

    /// The user behind `info` if auth is enabled and the info is current; `Ok(None)` when auth
    /// is disabled (everything is allowed).
    fn checked_user<'a>(&self, info: Option<&'a AuthInfo>) -> Result<Option<&'a str>, Error> {
        if !self.enabled {
            return Ok(None);
        }
        let info = info
            .filter(|info| !info.username.is_empty())
            .ok_or(Error::UserEmpty)?;
        if info.revision < self.revision {
            return Err(Error::AuthOldRevision);
        }
        if !self.users.contains_key(&info.username) {
            return Err(Error::PermissionDenied);
        }
        Ok(Some(info.username.as_str()))
    }

    fn has_root_role(&self, user: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == ROOT))
    }

    fn check_access(
        &self,
        info: Option<&AuthInfo>,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<(), Error> {
        let Some(user) = self.checked_user(info)? else {
            return Ok(());
        };
        if self.has_root_role(user) {
            return Ok(());
        }
        let Some(record) = self.users.get(user) else {
            return Err(Error::PermissionDenied);
        };
        let perms = record
            .roles
            .iter()
            .filter_map(|role| self.roles.get(role))
            .flat_map(|role| role.key_permission.iter());
        if covers(perms, access, &KeyInterval::from_key_range(key, range_end)) {
            Ok(())
        } else {
            Err(Error::PermissionDenied)
        }
    }

    /// Calls that need a signed-in user but no particular permission (etcd 3.6: listing
    /// alarms): any current user passes; with auth enabled, no token is `user name is empty`.
    pub fn check_authenticated(&self, info: Option<&AuthInfo>) -> Result<(), Error> {
        self.checked_user(info).map(|_| ())
    }

    /// etcd's LeaseTimeToLive check: a signed-in user (`user name is empty` without one) with
    /// read access to each key attached to the lease, so key names do not leak.
    pub fn check_lease_time_to_live<'k>(
        &self,
        info: Option<&AuthInfo>,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<(), Error> {
        self.check_authenticated(info)?;
        for key in keys {
            self.check_read(info, key, &[])?;
        }
        Ok(())
    }

    /// User and role management, auth enable/disable, membership: root role only.
    pub fn check_admin(&self, info: Option<&AuthInfo>) -> Result<(), Error> {
        match self.checked_user(info)? {
            None => Ok(()),
            Some(user) if self.has_root_role(user) => Ok(()),
            Some(_) => Err(Error::PermissionDenied),
        }
    }

    /// etcd's UserGet check: root, or the user asking about itself.
    pub fn check_user_get(&self, info: Option<&AuthInfo>, name: &str) -> Result<(), Error> {
        match self.checked_user(info)? {
            Some(user) if user == name => Ok(()),
            _ => self.check_admin(info),
        }
    }

    /// etcd's RoleGet check: root, or a user holding the role.
    pub fn check_role_get(&self, info: Option<&AuthInfo>, role: &str) -> Result<(), Error> {
        match self.checked_user(info)? {
            Some(user)
                if self
                    .users
                    .get(user)
                    .is_some_and(|u| u.roles.iter().any(|r| r == role)) =>
            {
                Ok(())
            }
            _ => self.check_admin(info),
        }
    }

    pub fn check_read(
        &self,
        info: Option<&AuthInfo>,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), Error> {
        self.check_access(info, key, range_end, Access::Read)
    }

    pub fn check_write(
        &self,
        info: Option<&AuthInfo>,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), Error> {
        self.check_access(info, key, range_end, Access::Write)
    }

    pub fn check_range(
        &self,
        info: Option<&AuthInfo>,
        request: &RangeRequest,
    ) -> Result<(), Error> {
        self.check_read(info, &request.key, &request.range_end)
    }

    /// Put needs write access, and read access too when it returns the previous value.
    pub fn check_put(&self, info: Option<&AuthInfo>, request: &PutRequest) -> Result<(), Error> {
        if request.prev_kv {
            self.check_read(info, &request.key, &[])?;
        }
        self.check_write(info, &request.key, &[])
    }

    pub fn check_delete_range(
        &self,
        info: Option<&AuthInfo>,
        request: &DeleteRangeRequest,
    ) -> Result<(), Error> {
        if request.prev_kv {
            self.check_read(info, &request.key, &request.range_end)?;
        }
        self.check_write(info, &request.key, &request.range_end)
    }

    /// A txn needs read access to every compared range and the access of every operation in
    /// both branches, nested txns included, whichever branch will run.
    pub fn check_txn(&self, info: Option<&AuthInfo>, request: &TxnRequest) -> Result<(), Error> {
        for compare in &request.compare {
            self.check_read(info, &compare.key, &compare.range_end)?;
        }
        for op in request.success.iter().chain(&request.failure) {
            self.check_op(info, op)?;
        }
        Ok(())
    }

    fn check_op(&self, info: Option<&AuthInfo>, op: &RequestOp) -> Result<(), Error> {
        match &op.request {
            Some(Op::RequestRange(r)) => self.check_range(info, r),
            Some(Op::RequestPut(r)) => self.check_put(info, r),
            Some(Op::RequestDeleteRange(r)) => self.check_delete_range(info, r),
            Some(Op::RequestTxn(r)) => self.check_txn(info, r),
            None => Ok(()),
        }
    }

    /// Revoking a lease deletes its keys, so it needs write access to each of them; keeping it
    /// alive and attaching a key to it need the same (etcd 3.6).
    pub fn check_lease_revoke<'k>(
        &self,
        info: Option<&AuthInfo>,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<(), Error> {
        for key in keys {
            self.check_write(info, key, &[])?;
        }
        Ok(())
    }
}
