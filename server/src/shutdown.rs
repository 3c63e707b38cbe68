//! Graceful shutdown on SIGINT/SIGTERM: the signal handler only sets a flag (the one thing that
//! is safe inside a handler); the server's loop polls it and stops in order (stop accepting,
//! finish the current group commit, close the storage). A second signal exits at once, so an
//! operator is never stuck behind a hung shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone)]
pub struct ShutdownSignal {
    requested: Arc<AtomicBool>,
}

impl ShutdownSignal {
    /// Registers the handlers for SIGINT and SIGTERM.
    pub fn install() -> std::io::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let requested = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            // Second signal: exit with 1 right away (registered first so it sees the flag
            // before this signal sets it).
            signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&requested))?;
            signal_hook::flag::register(sig, Arc::clone(&requested))?;
        }
        Ok(ShutdownSignal { requested })
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Lets the program itself ask for shutdown (e.g. after a fatal error in a task).
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }
}
