//! What a member does on its own at intervals: corruption checks and watch progress
//! notifications, with etcd's flags (3.6's names first, then 3.4/3.5's `--experimental-` ones).

use super::duration::parse_duration_ms;
use super::{ConfigError, Flags, invalid};

/// The resolved intervals.
#[derive(Debug)]
pub(super) struct Checks {
    pub initial_corrupt_check: bool,
    /// 0 = off.
    pub corrupt_check_ms: u64,
    pub watch_progress_notify_ms: u64,
}

impl Checks {
    pub(super) fn resolve(s: &Flags) -> Result<Self, ConfigError> {
        Ok(Self {
            initial_corrupt_check: s.experimental_initial_corrupt_check.unwrap_or(false),
            corrupt_check_ms: corrupt_check_ms(
                s.corrupt_check_time.as_deref(),
                s.experimental_corrupt_check_time.as_deref(),
            )?,
            watch_progress_notify_ms: watch_progress_notify_ms(
                s.watch_progress_notify_interval.as_deref(),
                s.experimental_watch_progress_notify_interval.as_deref(),
            )?,
        })
    }
}

/// `--corrupt-check-time` (or its `--experimental-` name) in milliseconds; off by default.
fn corrupt_check_ms(current: Option<&str>, experimental: Option<&str>) -> Result<u64, ConfigError> {
    let given = (current.map(|t| ("--corrupt-check-time", t)))
        .or(experimental.map(|t| ("--experimental-corrupt-check-time", t)));
    match given {
        None => Ok(0),
        Some((flag, text)) => parse_duration_ms(text)
            .ok_or_else(|| invalid(format!("invalid {flag} {text:?} (e.g. 5m, 30s, 500ms)"))),
    }
}

/// etcd's default progress-notify interval and the smallest it accepts (a smaller one is raised
/// to it, where etcd also logs a warning; 0 keeps the default).
const DEFAULT_WATCH_PROGRESS_NOTIFY_MS: u64 = 10 * 60 * 1000;
const MIN_WATCH_PROGRESS_NOTIFY_MS: u64 = 100;

/// The progress-notify interval from etcd 3.6's flag, else 3.4/3.5's `--experimental-` one.
pub(super) fn watch_progress_notify_ms(
    current: Option<&str>,
    experimental: Option<&str>,
) -> Result<u64, ConfigError> {
    let (flag, text) = match (current, experimental) {
        (Some(text), _) => ("--watch-progress-notify-interval", text),
        (None, Some(text)) => ("--experimental-watch-progress-notify-interval", text),
        (None, None) => return Ok(DEFAULT_WATCH_PROGRESS_NOTIFY_MS),
    };
    let ms = parse_duration_ms(text)
        .ok_or_else(|| invalid(format!("invalid {flag} {text:?} (e.g. 10m, 30s, 500ms)")))?;
    Ok(match ms {
        0 => DEFAULT_WATCH_PROGRESS_NOTIFY_MS,
        ms => ms.max(MIN_WATCH_PROGRESS_NOTIFY_MS),
    })
}
