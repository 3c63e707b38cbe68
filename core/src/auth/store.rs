//! The auth store: users, roles, their permissions, and whether auth is enabled.

use std::collections::BTreeMap;

use qraft_proto::Bytes;
use qraft_proto::authpb::{Permission, Role, User, UserAddOptions};
use qraft_proto::etcdserverpb::{
    AuthRoleGetResponse, AuthRoleListResponse, AuthStatusResponse, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserGetResponse, AuthUserListResponse,
};
use rand::CryptoRng;

use super::config::AuthConfig;
use super::login_limit::LoginLimiter;
use super::range::is_valid_permission_range;
use super::token::TokenStore;
use crate::error::Error;

/// The user and role with every permission; auth can only be enabled when this user exists and
/// holds this role, so an administrator can never lock everyone out.
pub const ROOT: &str = "root";

/// Who issues a request, as resolved from its token, and the auth revision it was checked
/// against. A request proposed at an older revision than the store's is refused at apply
/// ("revision of auth store is old"), since permissions may have changed in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    pub username: String,
    pub revision: u64,
}

/// Users, roles and the enabled flag: replicated state, changed only by applying entries.
///
/// Methods named like etcd's RPCs are the *apply* side and are deterministic. The methods that
/// prepare a request — [`AuthStore::prepare_user_add`], [`AuthStore::prepare_change_password`],
/// [`AuthStore::login_hash`], [`AuthStore::new_token_prefix`] — run on the member that receives
/// the request, before it proposes, so only hashes and token prefixes enter the log. bcrypt
/// itself runs outside the store, off the raft loop (`server::passwords`); randomness comes
/// from the caller's secret generator, the store holds none.
#[derive(Debug)]
pub struct AuthStore {
    pub(crate) config: AuthConfig,
    pub(crate) enabled: bool,
    /// Raised by every change to users, roles or the enabled flag; starts at 1 as etcd's.
    pub(crate) revision: u64,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) roles: BTreeMap<String, Role>,
    pub(crate) tokens: TokenStore,
    /// Member-local: recent failed sign-ins per user (`login_limit`).
    pub(crate) logins: LoginLimiter,
}

impl AuthStore {
    pub fn new(config: AuthConfig) -> Self {
        AuthStore {
            tokens: TokenStore::new(config.token_ttl_ms),
            logins: LoginLimiter::default(),
            config,
            enabled: false,
            revision: 1,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// Replaces the whole state with persisted state (restart or snapshot install). Tokens do
    /// not survive: clients authenticate again, as with etcd's simple tokens.
    pub fn restore(
        &mut self,
        enabled: bool,
        revision: u64,
        users: impl IntoIterator<Item = User>,
        roles: impl IntoIterator<Item = Role>,
    ) {
        self.enabled = enabled;
        self.revision = revision.max(1);
        self.users = users
            .into_iter()
            .map(|user| (String::from_utf8_lossy(&user.name).into_owned(), user))
            .collect();
        self.roles = roles
            .into_iter()
            .map(|role| (String::from_utf8_lossy(&role.name).into_owned(), role))
            .collect();
        self.tokens.clear();
    }

    // ---- before proposing (member-local) ----

    /// bcrypt cost for new hashes.
    pub fn bcrypt_cost(&self) -> u32 {
        self.config.bcrypt_cost
    }

    /// Validates a UserAdd and takes its clear password out: `Some(password)` when it still
    /// has to be hashed into `hashed_password` before proposing.
    pub fn prepare_user_add(
        &self,
        mut request: AuthUserAddRequest,
    ) -> Result<(AuthUserAddRequest, Option<String>), Error> {
        if request.name.is_empty() {
            return Err(Error::UserEmpty);
        }
        let no_password = request.options.as_ref().is_some_and(|o| o.no_password);
        let password = std::mem::take(&mut request.password);
        let to_hash = (!no_password && request.hashed_password.is_empty()).then_some(password);
        Ok((request, to_hash))
    }

    /// As [`AuthStore::prepare_user_add`] for a ChangePassword.
    pub fn prepare_change_password(
        &self,
        mut request: AuthUserChangePasswordRequest,
    ) -> (AuthUserChangePasswordRequest, Option<String>) {
        let password = std::mem::take(&mut request.password);
        let to_hash = request.hashed_password.is_empty().then_some(password);
        (request, to_hash)
    }

    /// Before an Authenticate: the stored hash to check the password against (off the loop).
    /// Unknown users and users without password fail alike and at once, so names cannot be
    /// probed and cost no bcrypt; a user with too many recent failures is refused without a
    /// check (`login_limit`).
    pub fn login_hash(&self, name: &str, now_ms: u64) -> Result<Vec<u8>, Error> {
        if !self.enabled {
            return Err(Error::AuthNotEnabled);
        }
        let user = self.users.get(name).ok_or(Error::AuthFailed)?;
        if user.options.as_ref().is_some_and(|o| o.no_password) {
            return Err(Error::AuthFailed);
        }
        if !self.logins.allows(name, now_ms) {
            return Err(Error::TooManyAuthAttempts);
        }
        Ok(user.password.to_vec())
    }

    /// A sign-in for `name` had a wrong password.
    pub fn login_failed(&mut self, name: &str, now_ms: u64) {
        if self.users.contains_key(name) {
            self.logins.failed(name, now_ms);
        }
    }

    /// A sign-in for `name` had the right password.
    pub fn login_succeeded(&mut self, name: &str) {
        self.logins.succeeded(name);
    }

    /// The random part of a simple token (see `token.rs` for why it is drawn before proposing).
    pub fn new_token_prefix(&self, rng: &mut (impl CryptoRng + ?Sized)) -> String {
        TokenStore::new_prefix(rng)
    }

    // ---- apply (replicated, deterministic) ----

    pub fn enable(&mut self) -> Result<(), Error> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT).ok_or(Error::RootUserNotExist)?;
        if !root.roles.iter().any(|r| r == ROOT) {
            return Err(Error::RootRoleNotExist);
        }
        self.enabled = true;
        self.tokens.clear();
        self.revision += 1;
        Ok(())
    }

    pub fn disable(&mut self) {
        if self.enabled {
            self.enabled = false;
            self.tokens.clear();
            self.revision += 1;
        }
    }

    pub fn status(&self) -> AuthStatusResponse {
        AuthStatusResponse {
            header: None,
            enabled: self.enabled,
            auth_revision: self.revision,
        }
    }

    /// Registers the token `<prefix>.<index>` for `name` and returns it. The password was
    /// checked before proposing; here only the user's existence is rechecked.
    ///
    /// With signed tokens nothing is registered: the answer is the auth revision the token is
    /// issued at, in decimal, for the embedder to sign with the user's name and an expiry
    /// (etcd's JWT claims `username`, `revision`, `exp`) before the client sees it.
    pub fn authenticate(
        &mut self,
        name: &str,
        token_prefix: &str,
        index: u64,
        now_ms: u64,
    ) -> Result<String, Error> {
        if !self.enabled {
            return Err(Error::AuthNotEnabled);
        }
        let user = self.users.get(name).ok_or(Error::AuthFailed)?;
        if user.options.as_ref().is_some_and(|o| o.no_password) {
            return Err(Error::AuthFailed);
        }
        if self.config.signed_tokens {
            return Ok(self.revision.to_string());
        }
        let token = TokenStore::token_for(token_prefix, index);
        self.tokens.assign(token.clone(), name, now_ms);
        Ok(token)
    }

    pub fn user_add(&mut self, request: &AuthUserAddRequest) -> Result<(), Error> {
        if request.name.is_empty() {
            return Err(Error::UserEmpty);
        }
        if self.users.contains_key(&request.name) {
            return Err(Error::UserAlreadyExist);
        }
        let options = request
            .options
            .unwrap_or(UserAddOptions { no_password: false });
        let password = if options.no_password {
            Bytes::new()
        } else {
            Bytes::from(request.hashed_password.clone())
        };
        self.users.insert(
            request.name.clone(),
            User {
                name: Bytes::from(request.name.clone()),
                password,
                roles: Vec::new(),
                options: Some(options),
            },
        );
        self.revision += 1;
        Ok(())
    }

    pub fn user_delete(&mut self, name: &str) -> Result<(), Error> {
        if self.enabled && name == ROOT {
            return Err(Error::InvalidAuthMgmt);
        }
        self.users.remove(name).ok_or(Error::UserNotFound)?;
        self.tokens.invalidate_user(name);
        self.revision += 1;
        Ok(())
    }

    pub fn user_change_password(
        &mut self,
        request: &AuthUserChangePasswordRequest,
    ) -> Result<(), Error> {
        let user = self
            .users
            .get_mut(&request.name)
            .ok_or(Error::UserNotFound)?;
        user.password = Bytes::from(request.hashed_password.clone());
        self.tokens.invalidate_user(&request.name);
        self.revision += 1;
        Ok(())
    }

    pub fn user_grant_role(&mut self, name: &str, role: &str) -> Result<(), Error> {
        if !self.users.contains_key(name) {
            return Err(Error::UserNotFound);
        }
        if role != ROOT && !self.roles.contains_key(role) {
            return Err(Error::RoleNotFound);
        }
        let Some(user) = self.users.get_mut(name) else {
            return Err(Error::UserNotFound);
        };
        if let Err(at) = user.roles.binary_search_by(|r| r.as_str().cmp(role)) {
            user.roles.insert(at, role.to_string());
            self.revision += 1;
        }
        Ok(())
    }

    pub fn user_revoke_role(&mut self, name: &str, role: &str) -> Result<(), Error> {
        if self.enabled && name == ROOT && role == ROOT {
            return Err(Error::InvalidAuthMgmt);
        }
        let user = self.users.get_mut(name).ok_or(Error::UserNotFound)?;
        let at = user
            .roles
            .iter()
            .position(|r| r == role)
            .ok_or(Error::RoleNotGranted)?;
        user.roles.remove(at);
        self.revision += 1;
        Ok(())
    }

    pub fn user_get(&self, name: &str) -> Result<AuthUserGetResponse, Error> {
        let user = self.users.get(name).ok_or(Error::UserNotFound)?;
        Ok(AuthUserGetResponse {
            header: None,
            roles: user.roles.clone(),
        })
    }

    pub fn user_list(&self) -> AuthUserListResponse {
        AuthUserListResponse {
            header: None,
            users: self.users.keys().cloned().collect(),
        }
    }

    pub fn role_add(&mut self, name: &str) -> Result<(), Error> {
        if name.is_empty() {
            return Err(Error::RoleEmpty);
        }
        if self.roles.contains_key(name) {
            return Err(Error::RoleAlreadyExist);
        }
        self.roles.insert(
            name.to_string(),
            Role {
                name: Bytes::from(name.to_string()),
                key_permission: Vec::new(),
            },
        );
        self.revision += 1;
        Ok(())
    }

    pub fn role_delete(&mut self, name: &str) -> Result<(), Error> {
        if self.enabled && name == ROOT {
            return Err(Error::InvalidAuthMgmt);
        }
        self.roles.remove(name).ok_or(Error::RoleNotFound)?;
        for user in self.users.values_mut() {
            user.roles.retain(|r| r != name);
        }
        self.revision += 1;
        Ok(())
    }

    pub fn role_get(&self, name: &str) -> Result<AuthRoleGetResponse, Error> {
        let role = self.roles.get(name).ok_or(Error::RoleNotFound)?;
        Ok(AuthRoleGetResponse {
            header: None,
            perm: role.key_permission.clone(),
        })
    }

    pub fn role_list(&self) -> AuthRoleListResponse {
        AuthRoleListResponse {
            header: None,
            roles: self.roles.keys().cloned().collect(),
        }
    }

    /// Grants a permission; granting the same `(key, range_end)` again replaces its type.
    pub fn role_grant_permission(
        &mut self,
        name: &str,
        perm: Option<&Permission>,
    ) -> Result<(), Error> {
        let role = self.roles.get_mut(name).ok_or(Error::RoleNotFound)?;
        let perm = perm.ok_or(Error::PermissionNotGiven)?;
        if !is_valid_permission_range(&perm.key, &perm.range_end) {
            return Err(Error::InvalidAuthMgmt);
        }
        let order = |p: &Permission| (p.key.clone(), p.range_end.clone());
        match role
            .key_permission
            .binary_search_by(|p| order(p).cmp(&order(perm)))
        {
            Ok(at) => role.key_permission[at].perm_type = perm.perm_type,
            Err(at) => role.key_permission.insert(at, perm.clone()),
        }
        self.revision += 1;
        Ok(())
    }

    pub fn role_revoke_permission(
        &mut self,
        name: &str,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), Error> {
        let role = self.roles.get_mut(name).ok_or(Error::RoleNotFound)?;
        let at = role
            .key_permission
            .iter()
            .position(|p| p.key == key && p.range_end == range_end)
            .ok_or(Error::PermissionNotGranted)?;
        role.key_permission.remove(at);
        self.revision += 1;
        Ok(())
    }
}
