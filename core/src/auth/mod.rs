//! Authentication and authorization with etcd's v3 semantics.
//!
//! Users hold roles; roles hold key-range permissions (read, write or both); the user `root`
//! with the role `root` may do everything, and auth can only be enabled once it exists.
//! Passwords are stored as bcrypt hashes; clients authenticate for a simple token.
//!
//! Determinism: every change to users, roles and the enabled flag is applied from the raft log
//! and must come out identical on every member, so nothing random happens at apply. Password
//! salts and token prefixes are drawn from the server's [`SecretRng`] (a CSPRNG the embedder
//! provides) on the member that receives the request, *before* it proposes, and travel in the
//! entry (see `token.rs`).
//!
//! Errors are [`crate::error::Error`] variants carrying etcd's messages.

mod check;
mod config;
mod login_limit;
mod password;
mod persist;
mod range;
mod secret_rng;
mod store;
mod token;

pub use config::AuthConfig;
pub use login_limit::{FREE_FAILURES, LOCKOUT_MS};
pub use password::{hash_password, new_salt, verify_password};
pub use range::{Access, KeyInterval, covers, is_valid_permission_range};
pub use secret_rng::SecretRng;
pub use store::{AuthInfo, AuthStore, ROOT};
