//! `--auto-compaction-mode` and `--auto-compaction-retention`, read as etcd reads them: off
//! unless the retention is non-zero; `periodic` (the default mode) takes a Go duration or a
//! bare number of hours, `revision` a number of revisions.

use qraft_core::server::AutoCompaction;

use super::duration::parse_go_duration;
use super::{ConfigError, Flags, invalid};

pub(super) fn auto_compaction(s: &Flags) -> Result<Option<AutoCompaction>, ConfigError> {
    let periodic = match s.auto_compaction_mode.as_deref().unwrap_or("periodic") {
        "periodic" => true,
        "revision" => false,
        "" => return Err(invalid("undefined auto-compaction-mode")),
        other => return Err(invalid(format!("unknown auto-compaction-mode {other:?}"))),
    };
    let text = s.auto_compaction_retention.as_deref().unwrap_or("0");
    let bad = || {
        invalid(format!(
            "--auto-compaction-retention {text:?}: error parsing CompactionRetention \
             (a number, or a duration such as 30m, 1h30m)"
        ))
    };
    // A bare number: hours (periodic) or revisions (revision). Otherwise a Go duration, which
    // etcd also takes in revision mode, as that many revisions as it has nanoseconds.
    let (hours_or_revisions, duration) = match text.parse::<u64>() {
        Ok(n) => (Some(n), None),
        Err(_) => (None, Some(parse_go_duration(text).ok_or_else(bad)?)),
    };
    Ok(match (periodic, hours_or_revisions, duration) {
        (_, Some(0), _) => None,
        (_, _, Some(d)) if d.is_zero() => None,
        (true, Some(hours), _) => Some(AutoCompaction::Periodic {
            retention_ms: hours.checked_mul(3_600_000).ok_or_else(bad)?,
        }),
        (true, None, Some(d)) => Some(AutoCompaction::Periodic {
            // Time is kept in milliseconds: a shorter retention counts as one.
            retention_ms: u64::try_from(d.as_millis()).map_err(|_| bad())?.max(1),
        }),
        (false, Some(revisions), _) => Some(AutoCompaction::Revision {
            retention: i64::try_from(revisions).map_err(|_| bad())?,
        }),
        (false, None, Some(d)) => Some(AutoCompaction::Revision {
            retention: i64::try_from(d.as_nanos()).map_err(|_| bad())?,
        }),
        (_, None, None) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        mode: Option<&str>,
        retention: Option<&str>,
    ) -> Result<Option<AutoCompaction>, String> {
        let flags = Flags {
            auto_compaction_mode: mode.map(str::to_string),
            auto_compaction_retention: retention.map(str::to_string),
            ..Flags::default()
        };
        auto_compaction(&flags).map_err(|e| e.to_string())
    }

    #[test]
    fn retention_as_etcd_reads_it() {
        let periodic = |ms| Ok(Some(AutoCompaction::Periodic { retention_ms: ms }));
        assert_eq!(resolve(None, None), Ok(None), "off by default");
        assert_eq!(resolve(Some("revision"), Some("0")), Ok(None));
        assert_eq!(resolve(None, Some("0s")), Ok(None));
        assert_eq!(resolve(None, Some("1")), periodic(3_600_000), "hours");
        assert_eq!(resolve(Some("periodic"), Some("30m")), periodic(1_800_000));
        assert_eq!(resolve(None, Some("1.5s")), periodic(1_500));
        assert_eq!(
            resolve(Some("revision"), Some("10")),
            Ok(Some(AutoCompaction::Revision { retention: 10 }))
        );
        assert_eq!(
            resolve(Some("revision"), Some("1us")),
            Ok(Some(AutoCompaction::Revision { retention: 1_000 })),
            "etcd reads a duration's nanoseconds as revisions"
        );
        assert!(
            resolve(Some("hourly"), None)
                .unwrap_err()
                .contains("unknown auto-compaction-mode")
        );
        assert!(resolve(Some(""), None).unwrap_err().contains("undefined"));
        assert!(
            resolve(None, Some("-1"))
                .unwrap_err()
                .contains("CompactionRetention")
        );
        assert!(
            resolve(None, Some("soon"))
                .unwrap_err()
                .contains("CompactionRetention")
        );
    }
}
