//! Settings of the driver (the core's own settings travel in `ServerConfig`).

use std::sync::Arc;

use qraft_core::server::ServerConfig;

use crate::jwt::SignedTokens;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub server: ServerConfig,
    /// Commands buffered between client tasks and the loop; a full queue makes callers wait,
    /// which is the back-pressure on clients.
    pub command_queue: usize,
    /// Where the loop records its metrics (share it with the HTTP endpoint that renders them).
    pub metrics: Arc<Metrics>,
    /// `--auth-token jwt,...`: the key that signs and checks tokens on the client tasks; the
    /// core must be configured for signed tokens too (`AuthConfig::signed_tokens`).
    pub signed_tokens: Option<Arc<SignedTokens>>,
}

impl DriverConfig {
    pub fn new(server: ServerConfig) -> Self {
        Self {
            server,
            command_queue: 8192,
            metrics: Arc::new(Metrics::new()),
            signed_tokens: None,
        }
    }
}
