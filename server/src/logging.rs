//! Structured logs for the binaries: `tracing` events to stderr, at `--log-level` unless
//! `RUST_LOG` says otherwise (useful to raise one module's level while debugging).

use tracing_subscriber::EnvFilter;

/// Where the log goes (`--log-outputs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogOutput {
    /// etcd's `default` and `stderr`.
    #[default]
    Stderr,
    Stdout,
}

/// Installs the global subscriber. Safe to call once per process; a second call is ignored.
pub fn init(level: tracing::Level, output: LogOutput) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.as_str().to_ascii_lowercase()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match output {
        LogOutput::Stderr => builder.with_writer(std::io::stderr).try_init(),
        LogOutput::Stdout => builder.with_writer(std::io::stdout).try_init(),
    };
}
