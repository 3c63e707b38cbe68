//! Settings of the driver (the core's own settings travel in `ServerConfig`).

use std::time::Duration;

use qraft_core::server::ServerConfig;

#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub server: ServerConfig,
    /// Wall time of one raft tick (the heartbeat interval).
    pub tick: Duration,
    /// Commands buffered between client tasks and the loop; a full queue makes callers wait,
    /// which is the back-pressure on clients.
    pub command_queue: usize,
}

impl DriverConfig {
    pub fn new(server: ServerConfig) -> Self {
        Self {
            tick: Duration::from_millis(server.tick_ms),
            server,
            command_queue: 8192,
        }
    }
}
