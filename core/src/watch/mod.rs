//! Watches over the MVCC key space, with etcd's semantics (the "watchable store" and the
//! per-stream logic of etcd's watch server), IO-free.
//!
//! The [`WatchHub`] owns every watch stream and watcher. The state machine drives it:
//! - [`WatchHub::open_stream`] / [`WatchHub::close_stream`] when a client stream comes and goes;
//! - [`WatchHub::request_as`] for each `WatchRequest` (create / cancel / progress), with the
//!   stream's user; a create needs read permission on the watched range when auth is enabled
//!   ([`WatchHub::request`] is the same without auth);
//! - [`WatchHub::recheck_permissions`] after each batch of applied entries: watchers whose
//!   user lost the permission are cancelled;
//! - [`WatchHub::notify`] with the events of every applied write (one call per revision, so a
//!   txn's events always travel in one response);
//! - [`WatchHub::sync`] regularly (e.g. every loop turn) to catch up unsynced watchers from the
//!   backend, a bounded number of revisions per call, so writes are never held up by a slow
//!   or historical watcher;
//! - [`WatchHub::tick`] for periodic progress notifications;
//! - [`WatchHub::take_responses`] to collect what to send on a stream; the shell calls it when
//!   the stream can take more (a stream whose queue is full makes its watchers fall back to
//!   catching up from the backend instead of buffering without bound).
//!
//! Guarantees (tested in `tests/tests/watch_*.rs`): events arrive in revision order, never
//! duplicated, never skipped; all events of one revision arrive in one response (or in one
//! run of fragments); a watcher restarted at last revision + 1 misses nothing; a progress
//! notification's revision is never ahead of the events already queued for that stream; a
//! watch on a future revision stays silent until that revision exists; a delete at the
//! compaction revision is still delivered to a watcher starting there.
//!
//! Deliberate difference from etcd: live events carry the `prev_kv` captured when the write
//! happened (etcd re-reads it when sending, so it can be missing if compacted meanwhile).
//! Response headers carry the current store revision, except compaction cancellations, whose
//! header revision is 0 as in etcd (etcdctl prints it).

mod access;
mod fragment;
mod hub;
mod sync;

pub use hub::{StreamId, WatchConfig, WatchHub};

/// Reason given when a watch id is already used on the stream.
pub const ERR_DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";
/// Reason given when `key >= range_end`.
pub const ERR_EMPTY_RANGE: &str = "mvcc: watcher range is empty";
