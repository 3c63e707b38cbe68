//! Structured logs for the binaries: `tracing` events to stderr, at `--log-level` unless
//! `RUST_LOG` says otherwise (useful to raise one module's level while debugging).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process; a second call is ignored.
pub fn init(level: tracing::Level) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.as_str().to_ascii_lowercase()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}
