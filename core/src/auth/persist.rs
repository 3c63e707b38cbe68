//! The auth store in the backend's auth tables.
//!
//! `Auth`: `enabled` (one byte, 0/1) and `revision` (u64 big-endian); `AuthUsers`: user name →
//! `authpb.User`; `AuthRoles`: role name → `authpb.Role` — the layout etcd uses.

use prost::Message;
use qraft_proto::authpb::{Role, User};

use crate::backend::{BackendError, ReadTxn, Table, Visit, WriteTxn};

use super::store::AuthStore;

const ENABLED: &[u8] = b"authEnabled";
const REVISION: &[u8] = b"authRevision";

impl AuthStore {
    /// Writes the whole store, removing users and roles that no longer exist. Auth changes are
    /// rare and small, so rewriting it in the apply transaction of each change is cheap and
    /// cannot miss a field.
    pub fn persist<T: WriteTxn + ?Sized>(&self, txn: &mut T) -> Result<(), BackendError> {
        txn.put(Table::Auth, ENABLED, &[u8::from(self.enabled)])?;
        txn.put(Table::Auth, REVISION, &self.revision.to_be_bytes())?;
        let stale_users = stale_keys(txn, Table::AuthUsers, |name| {
            !self.users.contains_key(&*String::from_utf8_lossy(name))
        })?;
        for key in stale_users {
            txn.delete(Table::AuthUsers, &key)?;
        }
        for (name, user) in &self.users {
            txn.put(Table::AuthUsers, name.as_bytes(), &user.encode_to_vec())?;
        }
        let stale_roles = stale_keys(txn, Table::AuthRoles, |name| {
            !self.roles.contains_key(&*String::from_utf8_lossy(name))
        })?;
        for key in stale_roles {
            txn.delete(Table::AuthRoles, &key)?;
        }
        for (name, role) in &self.roles {
            txn.put(Table::AuthRoles, name.as_bytes(), &role.encode_to_vec())?;
        }
        Ok(())
    }

    /// Replaces the store's state with what the backend holds (restart, snapshot install).
    pub fn load<T: ReadTxn + ?Sized>(&mut self, txn: &T) -> Result<(), BackendError> {
        let enabled = txn.get(Table::Auth, ENABLED)?.is_some_and(|v| v == [1]);
        let revision = match txn.get(Table::Auth, REVISION)? {
            None => 1,
            Some(bytes) => u64::from_be_bytes(<[u8; 8]>::try_from(bytes).map_err(|_| {
                BackendError::Corrupt {
                    table: Table::Auth,
                    reason: "auth revision is not 8 bytes".into(),
                }
            })?),
        };
        let users = decode_all::<User, T>(txn, Table::AuthUsers)?;
        let roles = decode_all::<Role, T>(txn, Table::AuthRoles)?;
        self.restore(enabled, revision, users, roles);
        Ok(())
    }
}

fn stale_keys<T: ReadTxn + ?Sized>(
    txn: &T,
    table: Table,
    is_stale: impl Fn(&[u8]) -> bool,
) -> Result<Vec<Vec<u8>>, BackendError> {
    let mut stale = Vec::new();
    txn.scan(table, &[], None, &mut |key, _| {
        if is_stale(key) {
            stale.push(key.to_vec());
        }
        Visit::Continue(())
    })?;
    Ok(stale)
}

fn decode_all<M: Message + Default, T: ReadTxn + ?Sized>(
    txn: &T,
    table: Table,
) -> Result<Vec<M>, BackendError> {
    let mut out = Vec::new();
    let mut failure = None;
    txn.scan(table, &[], None, &mut |_, value| match M::decode(value) {
        Ok(message) => {
            out.push(message);
            Visit::Continue(())
        }
        Err(err) => {
            failure = Some(BackendError::Corrupt {
                table,
                reason: err.to_string(),
            });
            Visit::Break(())
        }
    })?;
    match failure {
        Some(err) => Err(err),
        None => Ok(out),
    }
}
