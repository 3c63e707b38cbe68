//! `--emulated-version`: the older minor version a binary runs as.

use qraft_core::version::{LocalVersion, Version};

use super::{ConfigError, invalid};

/// `major.minor` (a leading `v` and a patch are tolerated, the patch is ignored), and only a
/// version `binary` can run as: its own minor or the one before.
pub(super) fn parse_emulated_version(s: &str, binary: Version) -> Result<Version, ConfigError> {
    let bad = || {
        invalid(format!(
            "--emulated-version {s:?}: expected major.minor, e.g. 0.1"
        ))
    };
    let mut parts = s.trim_start_matches('v').split('.');
    let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    match parts.next() {
        None => {}
        Some(p) if p.parse::<u32>().is_ok() && parts.next().is_none() => {}
        Some(_) => return Err(bad()),
    }
    let emulated = Version::new(major, minor, 0);
    LocalVersion::new(binary, Some(emulated)).map_err(|e| invalid(e.to_string()))?;
    Ok(emulated)
}
