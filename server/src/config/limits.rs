//! Raft timing and the sizes the member enforces (snapshots, quota, requests, streams), with
//! etcd's defaults and the bounds etcd checks at start.

use super::{
    ConfigError, DEFAULT_ELECTION_MS, DEFAULT_HEARTBEAT_MS, DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_TXN_OPS, DEFAULT_QUOTA_BYTES, DEFAULT_SNAPSHOT_CATCHUP_ENTRIES,
    DEFAULT_SNAPSHOT_COUNT, Flags, MAX_ELECTION_MS, invalid,
};

/// `--heartbeat-interval` and `--election-timeout`, in milliseconds.
#[derive(Debug)]
pub(super) struct Timing {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
}

impl Timing {
    /// etcd's rules: a heartbeat, an election timeout of at least five heartbeats and at most
    /// [`MAX_ELECTION_MS`].
    pub(super) fn resolve(s: &Flags) -> Result<Self, ConfigError> {
        let heartbeat_interval_ms = s.heartbeat_interval.unwrap_or(DEFAULT_HEARTBEAT_MS);
        let election_timeout_ms = s.election_timeout.unwrap_or(DEFAULT_ELECTION_MS);
        if heartbeat_interval_ms == 0 {
            return Err(invalid("--heartbeat-interval must be greater than 0"));
        }
        if election_timeout_ms < 5 * heartbeat_interval_ms {
            return Err(invalid(format!(
                "--election-timeout[{election_timeout_ms}ms] should be at least as 5 times as \
                 --heartbeat-interval[{heartbeat_interval_ms}ms]"
            )));
        }
        if election_timeout_ms > MAX_ELECTION_MS {
            return Err(invalid(format!(
                "--election-timeout[{election_timeout_ms}ms] is too long, and should be set less \
                 than {MAX_ELECTION_MS}ms"
            )));
        }
        Ok(Self {
            heartbeat_interval_ms,
            election_timeout_ms,
        })
    }
}

/// The sizes and counts the member enforces.
#[derive(Debug)]
pub(super) struct Limits {
    pub snapshot_count: u64,
    pub snapshot_catchup_entries: u64,
    pub quota_backend_bytes: u64,
    pub max_request_bytes: u64,
    pub max_concurrent_streams: u32,
    pub max_txn_ops: usize,
}

impl Limits {
    pub(super) fn resolve(s: &Flags) -> Result<Self, ConfigError> {
        let snapshot_count = s.snapshot_count.unwrap_or(DEFAULT_SNAPSHOT_COUNT);
        if snapshot_count == 0 {
            return Err(invalid("--snapshot-count must be greater than 0"));
        }
        let max_request_bytes = s.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if max_request_bytes == 0 {
            return Err(invalid("--max-request-bytes must be greater than 0"));
        }
        Ok(Self {
            snapshot_count,
            snapshot_catchup_entries: snapshot_catchup_entries(s)?,
            quota_backend_bytes: match s.quota_backend_bytes.unwrap_or(0) {
                0 => DEFAULT_QUOTA_BYTES,
                q => q,
            },
            max_request_bytes,
            max_concurrent_streams: max_concurrent_streams(s.max_concurrent_streams.as_deref())?,
            max_txn_ops: max_txn_ops(s.max_txn_ops.as_deref())?,
        })
    }
}

/// `--snapshot-catchup-entries`, else etcd 3.5's `--experimental-` name of the flag.
fn snapshot_catchup_entries(s: &Flags) -> Result<u64, ConfigError> {
    match (
        s.snapshot_catchup_entries,
        s.experimental_snapshot_catchup_entries.as_deref(),
    ) {
        (Some(n), _) => Ok(n),
        (None, Some(text)) => text.parse().map_err(|_| {
            invalid(format!(
                "--experimental-snapshot-catchup-entries {text:?}: expected a number"
            ))
        }),
        (None, None) => Ok(DEFAULT_SNAPSHOT_CATCHUP_ENTRIES),
    }
}

/// `--max-concurrent-streams`: unlimited (`u32::MAX`) by default, as etcd.
fn max_concurrent_streams(text: Option<&str>) -> Result<u32, ConfigError> {
    match text {
        None => Ok(u32::MAX),
        Some(text) => text.parse().map_err(|_| {
            invalid(format!(
                "--max-concurrent-streams {text:?}: expected a number of streams (1 to 4294967295)"
            ))
        }),
    }
}

/// `--max-txn-ops`: etcd's 128 by default.
fn max_txn_ops(text: Option<&str>) -> Result<usize, ConfigError> {
    match text {
        None => Ok(DEFAULT_MAX_TXN_OPS),
        Some(text) => text.parse().map_err(|_| {
            invalid(format!(
                "--max-txn-ops {text:?}: expected a number of operations"
            ))
        }),
    }
}
