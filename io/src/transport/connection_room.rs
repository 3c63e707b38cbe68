//! [`ConnectionRoom`]: how many bytes of pushed responses (watch events) one client connection
//! has waiting to be written, shared by all the streams of the connection, so one connection
//! cannot make the member hold more than a bounded amount for it however many streams it
//! opens and however slowly it reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes a connection may have queued for it before its streams get no more pushed responses
/// (their watchers then catch up from the store's history when the connection reads again).
pub const CONNECTION_ROOM_BYTES: usize = 8 * 1024 * 1024;

/// One per client connection (cloned into the context of each of its calls).
#[derive(Debug, Clone, Default)]
pub struct ConnectionRoom {
    queued: Arc<AtomicUsize>,
}

impl ConnectionRoom {
    /// Bytes the connection can still take.
    pub fn room(&self) -> usize {
        CONNECTION_ROOM_BYTES.saturating_sub(self.queued.load(Ordering::Relaxed))
    }

    /// `bytes` were queued for the connection.
    pub fn add(&self, bytes: usize) {
        self.queued.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `bytes` queued earlier left the queue (written, or dropped with their stream).
    pub fn remove(&self, bytes: usize) {
        // Never below zero, whatever the order of concurrent updates.
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(bytes))
            });
    }
}
