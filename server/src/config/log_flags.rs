//! `--log-level` and `--log-outputs`: what the member logs and where.

use super::{ConfigError, invalid};
use crate::logging::LogOutput;

/// `--log-outputs`: etcd's `default` and `stderr`, or `stdout`; log files are not supported.
pub(super) fn log_output(text: Option<&str>) -> Result<LogOutput, ConfigError> {
    match text.unwrap_or("default") {
        "default" | "stderr" => Ok(LogOutput::Stderr),
        "stdout" => Ok(LogOutput::Stdout),
        other => Err(invalid(format!(
            "--log-outputs {other:?} is not supported: qraft logs to stderr (default) or stdout"
        ))),
    }
}

/// `--log-level`: etcd's zap levels (`dpanic`, `panic` and `fatal` log as errors).
pub(super) fn parse_log_level(s: &str) -> Result<tracing::Level, ConfigError> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" => tracing::Level::WARN,
        "error" | "dpanic" | "panic" | "fatal" => tracing::Level::ERROR,
        "trace" => tracing::Level::TRACE,
        _ => {
            return Err(invalid(format!(
                "--log-level {s:?}: expected one of debug, info, warn, error, panic, fatal"
            )));
        }
    })
}
