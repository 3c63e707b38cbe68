//! What a benchmarked system must offer. The workload generator and the measurement only see
//! these traits, so qraft and etcd are driven by exactly the same code.
//!
//! Futures are boxed and runtime-agnostic: an implementation that needs its own runtime (etcd's
//! tokio) runs the call there and hands the result back over a channel, so the driver never
//! depends on which runtime serves the call.

use std::future::Future;
use std::pin::Pin;

/// A failed call, as text: the bench counts errors and shows the first few, nothing more.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

impl TargetError {
    pub fn new(err: impl std::fmt::Display) -> Self {
        Self(err.to_string())
    }
}

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, TargetError>> + Send + 'a>>;

/// A system under test: opens connections (`--conns`) that requesters share.
pub trait Target: Send + Sync {
    /// Short name used in reports ("qraft", "etcd").
    fn name(&self) -> &'static str;
    fn connect(&self) -> BoxFut<'_, Box<dyn Conn>>;
}

/// One connection. Calls take `&self` so many requesters can share it concurrently.
pub trait Conn: Send + Sync {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFut<'_, ()>;
    /// Reads one key; `serializable` skips the leader round (may be stale).
    fn range(&self, key: Vec<u8>, serializable: bool) -> BoxFut<'_, ()>;
    /// One page of a paged list of the whole key space: at most `limit` keys from `from` on
    /// (`revision` 0 on the first page, then the first page's revision, as a Kubernetes list
    /// pages through one consistent view).
    fn range_page(&self, from: Vec<u8>, limit: i64, revision: i64) -> BoxFut<'_, Page>;
    /// A transaction with no compares whose success branch puts `key`.
    fn txn_put(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFut<'_, ()>;
    /// Grants a lease with `ttl` seconds and returns its ID.
    fn lease_grant(&self, ttl: i64) -> BoxFut<'_, i64>;
    /// Opens a keep-alive stream for the lease.
    fn lease_keep_alive(&self, lease: i64) -> BoxFut<'_, Box<dyn KeepAlive>>;
    /// Watches one key from now on.
    fn watch(&self, key: Vec<u8>) -> BoxFut<'_, Box<dyn EventStream>> {
        self.watch_range(key, Vec::new())
    }
    /// Watches the keys `[key, range_end)` from now on (one key when `range_end` is empty).
    fn watch_range(&self, key: Vec<u8>, range_end: Vec<u8>) -> BoxFut<'_, Box<dyn EventStream>>;
}

/// What one page of a paged list returned.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Keys in the page.
    pub keys: u64,
    /// The last key of the page, when more keys follow.
    pub more_after: Option<Vec<u8>>,
    /// The revision the page was read at.
    pub revision: i64,
}

/// A keep-alive stream: each call is one request/response round.
pub trait KeepAlive: Send {
    fn keep_alive(&mut self) -> BoxFut<'_, ()>;
}

/// One event as the watch workload sees it: its revision and the value written.
pub type WatchedEvent = (i64, Vec<u8>);

/// Events of one watch: each item is the events of one response, `None` at the end.
pub trait EventStream: Send {
    /// Must be cancel-safe: the workload drops a pending call when the puts end.
    fn next(&mut self) -> BoxFut<'_, Option<Vec<WatchedEvent>>>;
    /// How many times the client reopened the stream after it broke.
    fn resumes(&self) -> u64 {
        0
    }
}
