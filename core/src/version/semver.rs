//! qraft's version numbers: `MAJOR.MINOR.PATCH`, compared numerically.
//!
//! Negotiation only ever looks at `major.minor` (a patch release never changes the protocol,
//! the features or the storage schema), so most callers use [`Version::minor_only`].

use std::fmt;
use std::str::FromStr;

/// A version number. Ordering is numeric, major first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// Why a version string was rejected. The messages name the offending text so an operator
/// who typed `--emulated-version=0.x` sees what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionParseError {
    #[error("empty version string")]
    Empty,
    #[error("version {input:?} must be MAJOR.MINOR or MAJOR.MINOR.PATCH")]
    WrongShape { input: String },
    #[error("version {input:?}: part {part:?} is not a non-negative decimal number")]
    NotANumber { input: String, part: String },
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// The same version with the patch dropped: what the cluster version, the downgrade target
    /// and the storage schema version are made of.
    pub const fn minor_only(self) -> Self {
        Version::new(self.major, self.minor, 0)
    }

    /// The minor version one below this one (`None` for `x.0`): the only allowed downgrade target.
    pub fn previous_minor(self) -> Option<Self> {
        self.minor
            .checked_sub(1)
            .map(|minor| Version::new(self.major, minor, 0))
    }

    /// The minor version one above this one.
    pub fn next_minor(self) -> Self {
        Version::new(self.major, self.minor.saturating_add(1), 0)
    }

    /// `major.minor` as text, the form etcdctl prints ("cluster version 3.6").
    pub fn minor_string(self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// True when both have the same major and minor.
    pub fn same_minor(self, other: Version) -> bool {
        self.minor_only() == other.minor_only()
    }

    /// Parses `MAJOR.MINOR` or `MAJOR.MINOR.PATCH` (decimal, no sign, no suffix). A leading `v`
    /// is accepted because operators type `v0.1` as often as `0.1`.
    pub fn parse(input: &str) -> Result<Self, VersionParseError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(VersionParseError::Empty);
        }
        let body = trimmed.strip_prefix('v').unwrap_or(trimmed);
        let parts: Vec<&str> = body.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(VersionParseError::WrongShape {
                input: input.to_string(),
            });
        }
        let mut numbers = [0u32; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            let digits_only = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            *slot = digits_only
                .then(|| part.parse::<u32>().ok())
                .flatten()
                .ok_or_else(|| VersionParseError::NotANumber {
                    input: input.to_string(),
                    part: part.to_string(),
                })?;
        }
        Ok(Version::new(numbers[0], numbers[1], numbers[2]))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = VersionParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_and_three_parts() {
        assert_eq!(Version::parse("0.2").unwrap(), Version::new(0, 2, 0));
        assert_eq!(Version::parse("v1.12.7").unwrap(), Version::new(1, 12, 7));
        assert_eq!(Version::parse(" 3.6.0 ").unwrap(), Version::new(3, 6, 0));
    }

    #[test]
    fn rejects_bad_shapes_with_clear_errors() {
        assert_eq!(Version::parse(""), Err(VersionParseError::Empty));
        assert_eq!(
            Version::parse("1").unwrap_err().to_string(),
            "version \"1\" must be MAJOR.MINOR or MAJOR.MINOR.PATCH"
        );
        assert_eq!(
            Version::parse("1.2.3.4").unwrap_err(),
            VersionParseError::WrongShape {
                input: "1.2.3.4".into()
            }
        );
        assert_eq!(
            Version::parse("0.x").unwrap_err().to_string(),
            "version \"0.x\": part \"x\" is not a non-negative decimal number"
        );
        assert!(Version::parse("0.-1").is_err());
        assert!(Version::parse("0.+1").is_err());
        assert!(Version::parse("0..1").is_err());
        assert!(Version::parse("0.2.0-rc1").is_err());
        assert!(Version::parse("0.99999999999").is_err());
    }

    #[test]
    fn orders_numerically() {
        assert!(Version::parse("0.10").unwrap() > Version::parse("0.9").unwrap());
        assert!(Version::new(1, 0, 0) > Version::new(0, 99, 99));
        assert_eq!(Version::new(0, 2, 5).minor_only(), Version::new(0, 2, 0));
        assert_eq!(Version::new(0, 0, 1).previous_minor(), None);
        assert_eq!(
            Version::new(3, 6, 1).previous_minor(),
            Some(Version::new(3, 5, 0))
        );
        assert_eq!(Version::new(3, 6, 1).minor_string(), "3.6");
    }
}
