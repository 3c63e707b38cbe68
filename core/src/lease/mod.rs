//! Leases: time-limited handles that keys attach to; revoking a lease deletes its keys.
//!
//! [`Lessor`] holds the replicated lease state (granted TTL, checkpointed remaining TTL, attached
//! keys) and, on the leader only, each lease's deadline. The leader reports expired leases
//! ([`Lessor::expired`]) and the state machine proposes their revokes, so expiry is a replicated
//! decision. Remaining TTLs are checkpointed through raft ([`Lessor::due_checkpoints`], on by
//! default) so that a new leader or a restarted member continues from the remainder instead of
//! granting a full TTL again, and a promoted leader adds the election timeout so no lease expires
//! before its holder could reach the new leader.
//!
//! Errors are [`crate::error::Error`]: `LeaseNotFound`, `LeaseExists`, `LeaseTtlTooLarge`, and
//! `NotLeader` for renewals on a member that is not the primary.

mod config;
mod lessor;
mod persist;
mod record;

pub use config::{LessorConfig, MAX_LEASE_TTL_SECS};
pub use lessor::Lessor;
pub use persist::{LeaseRecord, load_leases};
pub use record::Lease;
