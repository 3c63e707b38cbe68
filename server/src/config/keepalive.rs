//! `--grpc-keepalive-min-time`, `--grpc-keepalive-interval`, `--grpc-keepalive-timeout`: the
//! gRPC listener's HTTP/2 ping policy, with etcd's defaults and meaning.

use std::time::Duration;

use super::duration::parse_duration_ms;
use super::{ConfigError, invalid};

/// etcd's `--grpc-keepalive-min-time`.
pub const DEFAULT_MIN_TIME: Duration = Duration::from_secs(5);
/// etcd's `--grpc-keepalive-interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2 * 3600);
/// etcd's `--grpc-keepalive-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcKeepalive {
    /// A client pinging more often than this (beyond a few strikes) is disconnected, as
    /// grpc-go's enforcement policy does.
    pub min_time: Duration,
    /// The server pings a client this long after the last frame it read; `None` = never.
    pub interval: Option<Duration>,
    /// How long an unanswered server ping may wait before the connection is closed; `None`
    /// = never.
    pub timeout: Option<Duration>,
}

impl Default for GrpcKeepalive {
    fn default() -> Self {
        Self {
            min_time: DEFAULT_MIN_TIME,
            interval: Some(DEFAULT_INTERVAL),
            timeout: Some(DEFAULT_TIMEOUT),
        }
    }
}

impl GrpcKeepalive {
    pub fn resolve(
        min_time: Option<&str>,
        interval: Option<&str>,
        timeout: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let parse = |flag: &str, text: Option<&str>, default: Duration| match text {
            None => Ok(default),
            Some(text) => parse_duration_ms(text)
                .map(Duration::from_millis)
                .ok_or_else(|| invalid(format!("invalid {flag} {text:?} (e.g. 5s, 2h, 500ms)"))),
        };
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        Ok(Self {
            min_time: parse("--grpc-keepalive-min-time", min_time, DEFAULT_MIN_TIME)?,
            interval: nonzero(parse(
                "--grpc-keepalive-interval",
                interval,
                DEFAULT_INTERVAL,
            )?),
            timeout: nonzero(parse("--grpc-keepalive-timeout", timeout, DEFAULT_TIMEOUT)?),
        })
    }
}
