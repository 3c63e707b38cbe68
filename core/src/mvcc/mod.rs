//! Multi-version key-value store with etcd v3 semantics.
//!
//! - [`MvccStore`]: revisions, key index, Range/Put/DeleteRange/Txn/Compact over a backend
//!   transaction passed in by the caller ([`kv`] has the request-level operations).
//! - [`KvWriter`]: one write transaction of the key space (for leases revoking keys, or any
//!   caller composing changes under one revision).
//! - [`KeyIndexBuilder`]: the key index built from history records in revision order (on
//!   open, or while a snapshot from the leader arrives).
//! - [`validate`]: etcd's request checks and limits, usable before proposing.
//!
//! Revision rules: the store starts at revision 1; a write raises it by one only if it changed
//! something; every change inside it gets the next sub-revision. Puts set `mod_revision` to
//! the new revision, `version` to previous + 1 and `create_revision` on creation; deletes
//! write tombstones, after which a put starts again at version 1.

mod hash;
mod history_index;
pub mod key_index;
pub mod kv;
mod range;
pub mod revision;
mod store;
mod txn;
pub mod validate;
mod write;

pub use hash::KvHash;
pub use history_index::KeyIndexBuilder;
pub use key_index::KeyRange;
pub use kv::{Applied, Leases, NoLeases, is_read_only};
pub use revision::Revision;
pub use store::MvccStore;
pub(crate) use store::decode_kv as decode_stored_kv;
pub use write::KvWriter;
