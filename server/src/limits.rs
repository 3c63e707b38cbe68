//! How many connections each TCP listener serves at once, from the process's file descriptor
//! limit: every connection costs a descriptor, and running out of them must never stop the
//! member from opening a journal segment, an LMDB file or a peer socket. A share of the limit
//! is therefore kept back for the member itself, and the listeners split a part of the rest;
//! a connection beyond a listener's cap is closed as soon as it is accepted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Descriptors kept for the member's own files and sockets (storage, journal segments, the QUIC
/// sockets, snapshot files, logs), never handed to client connections.
pub const RESERVED_FDS: u64 = 256;
/// The metrics/health listener serves probes and scrapers, which need few connections.
pub const MAX_HTTP_CONNECTIONS: usize = 128;

/// Connection caps of the TCP listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerCaps {
    /// Shared by all gRPC listeners.
    pub grpc: usize,
    /// Per metrics/health listener.
    pub http: usize,
}

impl ListenerCaps {
    /// Caps for a process allowed `fd_limit` descriptors: half of what is left after
    /// [`RESERVED_FDS`] for gRPC, an eighth (at most [`MAX_HTTP_CONNECTIONS`]) per metrics
    /// listener — together well below the limit, whatever the number of metrics listeners
    /// (each is given a separate eighth, and there are at most a few).
    pub fn for_fd_limit(fd_limit: u64) -> Self {
        let spare = fd_limit.saturating_sub(RESERVED_FDS);
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            grpc: to_usize(spare / 2).max(1),
            http: to_usize(spare / 8).clamp(1, MAX_HTTP_CONNECTIONS),
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process (`None` if it cannot be read or is unlimited).
pub fn fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own and reads nothing else.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A count of open connections with a ceiling, shared by a listener's accept loop and its
/// connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One connection's place under a [`ConnectionLimit`]; released when dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A place for one more connection, or `None` when `max` are open.
    pub fn try_acquire(&self) -> Option<ConnectionSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(self.open.clone()))
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_come_back() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_acquire().expect("first");
        let _b = limit.try_acquire().expect("second");
        assert!(limit.try_acquire().is_none(), "third over the cap");
        drop(a);
        assert!(limit.try_acquire().is_some(), "a slot came back");
    }

    #[test]
    fn caps_stay_well_below_the_fd_limit() {
        let caps = ListenerCaps::for_fd_limit(1024);
        assert_eq!(
            caps,
            ListenerCaps {
                grpc: 384,
                http: 96
            }
        );
        assert!(caps.grpc + 3 * caps.http + RESERVED_FDS as usize <= 1024);
        let tiny = ListenerCaps::for_fd_limit(100);
        assert_eq!(tiny, ListenerCaps { grpc: 1, http: 1 });
        assert_eq!(
            ListenerCaps::for_fd_limit(1 << 20).http,
            MAX_HTTP_CONNECTIONS
        );
    }
}
