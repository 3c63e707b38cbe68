//! The member's own version: what its binary is, what it runs as (`--emulated-version`), and
//! which storage schemas it can read and migrate to.

use super::catalog::KNOWN_VERSIONS;
use super::errors::VersionError;
use super::semver::Version;
use std::cmp::Ordering;

/// The versions of the running member, fixed at start.
///
/// Invariant: `oldest.minor_only() <= server.minor_only() <= binary.minor_only()`, same major.
/// With `--emulated-version` the member is indistinguishable from an `emulated` binary: it
/// publishes `server`, enables features by the cluster version (which is ≤ `server`), and
/// reads/writes exactly the schemas an `emulated` binary knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalVersion {
    /// The build's own version ([`super::BINARY_VERSION`] in production).
    pub binary: Version,
    /// The version the member runs as and publishes.
    pub server: Version,
    /// The oldest minor version the member can run as and migrate its storage to.
    pub oldest: Version,
}

impl LocalVersion {
    /// A binary of version `binary` supports its own minor and the one before it (none before
    /// the first qraft version, 0.1).
    pub fn new(binary: Version, emulated: Option<Version>) -> Result<Self, VersionError> {
        let oldest = binary
            .previous_minor()
            .filter(|v| *v >= KNOWN_VERSIONS[0])
            .unwrap_or(binary.minor_only());
        let Some(emulated) = emulated else {
            return Ok(LocalVersion {
                binary,
                server: binary,
                oldest,
            });
        };
        let reason = if emulated.major != binary.major {
            Some("a different major version cannot be emulated")
        } else {
            match emulated.minor_only().cmp(&binary.minor_only()) {
                Ordering::Greater => Some("a binary cannot emulate a newer version"),
                Ordering::Less if emulated.minor_only() < oldest => {
                    Some("only the previous minor version can be emulated")
                }
                _ => None,
            }
        };
        if let Some(reason) = reason {
            return Err(VersionError::InvalidEmulatedVersion {
                emulated,
                binary,
                reason,
            });
        }
        // A member emulating an older minor must refuse that minor's newer data too, so its
        // readable range ends at the emulated version.
        Ok(LocalVersion {
            binary,
            server: emulated.minor_only(),
            oldest: oldest.min(emulated.minor_only()),
        })
    }

    /// Checks a storage schema version found on disk. The schema version is a minor version.
    pub fn check_storage(&self, storage: Version) -> Result<(), VersionError> {
        let storage = storage.minor_only();
        if storage.major != self.server.major || storage > self.server.minor_only() {
            return Err(VersionError::StorageTooNew {
                storage,
                server: self.server,
            });
        }
        if storage < self.oldest {
            return Err(VersionError::StorageTooOld {
                storage,
                oldest: self.oldest,
            });
        }
        Ok(())
    }

    /// qraft's window rule: a member may run in a cluster whose version `cluster` satisfies
    /// `cluster <= server <= cluster + 1 minor` (major.minor, same major). During a downgrade the
    /// cluster version already is the target, so this admits exactly the target and the version
    /// being left.
    pub fn check_cluster(&self, cluster: Version) -> Result<(), VersionError> {
        let server = self.server.minor_only();
        let cluster = cluster.minor_only();
        if server.major != cluster.major {
            return Err(VersionError::IncompatibleMajor {
                server: self.server,
                cluster,
            });
        }
        if server < cluster {
            return Err(VersionError::ServerTooOld {
                server: self.server,
                cluster,
            });
        }
        if server > cluster.next_minor() {
            return Err(VersionError::ServerTooNew {
                server: self.server,
                cluster,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn emulation_window() {
        let local = LocalVersion::new(v("0.2.3"), Some(v("0.1"))).unwrap();
        assert_eq!(local.server, v("0.1.0"));
        assert_eq!(local.oldest, v("0.1.0"));
        assert!(local.check_storage(v("0.2")).is_err());
        assert!(local.check_storage(v("0.1")).is_ok());
        assert!(LocalVersion::new(v("0.2.3"), Some(v("0.2"))).is_ok());
        for bad in ["0.3", "0.0", "1.2"] {
            let err = LocalVersion::new(v("0.2.3"), Some(v(bad))).unwrap_err();
            assert!(
                matches!(err, VersionError::InvalidEmulatedVersion { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn cluster_window() {
        let local = LocalVersion::new(v("0.2.0"), None).unwrap();
        assert!(local.check_cluster(v("0.1")).is_ok());
        assert!(local.check_cluster(v("0.2")).is_ok());
        assert!(matches!(
            local.check_cluster(v("0.3")),
            Err(VersionError::ServerTooOld { .. })
        ));
        let newer = LocalVersion::new(v("0.4.0"), None).unwrap();
        assert!(matches!(
            newer.check_cluster(v("0.2")),
            Err(VersionError::ServerTooNew { .. })
        ));
        assert!(matches!(
            local.check_cluster(v("1.2")),
            Err(VersionError::IncompatibleMajor { .. })
        ));
    }
}
