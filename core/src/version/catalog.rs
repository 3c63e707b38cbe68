//! What each qraft minor version means: the versions this binary knows, the features gated by
//! the cluster version, and which replicated entries an older version cannot apply.
//!
//! qraft 0.1 and 0.2 differ in exactly one feature and one storage-schema element, and both
//! are tied together so a downgrade has something real to undo:
//!
//! * **Feature `lease_checkpoint` (0.2+)**: the leader periodically replicates each lease's
//!   remaining TTL (`InternalRequest::lease_checkpoint`), so a new leader does not restart
//!   leases at their full TTL. A 0.1 member cannot apply that entry. The leader must only
//!   propose it while the cluster version is ≥ 0.2 ([`FeatureGates::enabled`]).
//! * **Schema element: lease records carry `RemainingTTL` (0.2+)**: applied checkpoints are
//!   persisted in the lease record's field 3 (etcd's `leasepb.Lease` shape), which the 0.1 schema
//!   lacks. Migrating storage down to 0.1 strips that field from every record; leases then
//!   fall back to their granted TTL, as they do in 0.1. See [`super::schema`].

use super::semver::Version;
use qraft_proto::qraftpb::{InternalRequest, internal_request::Request};
use std::fmt;

pub const V0_1: Version = Version::new(0, 1, 0);
pub const V0_2: Version = Version::new(0, 2, 0);

/// The version of this build of qraft (what `/version` reports as the server version unless
/// `--emulated-version` is given). Independent of the crate version in Cargo.toml: it is the
/// protocol/feature/schema level, changed only when one of those changes.
pub const BINARY_VERSION: Version = Version::new(0, 2, 0);

/// Every minor version this binary can run as (emulate) and migrate its storage to, oldest
/// first. A binary supports its own minor and the one before, which is what makes a
/// one-minor downgrade (and the upgrade back) possible with a single build.
pub const KNOWN_VERSIONS: [Version; 2] = [V0_1, V0_2];

/// The storage schema versions this binary can read; schema versions equal minor versions.
pub fn is_known(version: Version) -> bool {
    KNOWN_VERSIONS.contains(&version.minor_only())
}

/// A behaviour switched on by the cluster version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Replicating leases' remaining TTL (`LeaseCheckpointRequest` entries).
    LeaseCheckpoint,
}

impl Feature {
    pub const ALL: [Feature; 1] = [Feature::LeaseCheckpoint];

    /// The lowest cluster version at which the feature is on.
    pub const fn since(self) -> Version {
        match self {
            Feature::LeaseCheckpoint => V0_2,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Feature::LeaseCheckpoint => "lease_checkpoint",
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A feature was asked for while the cluster version does not allow it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("etcdserver: feature {feature} needs cluster version {} (cluster version is {})",
    .feature.since().minor_string(),
    .cluster.map(|v| v.minor_string()).unwrap_or_else(|| "not decided".into()))]
pub struct FeatureDisabled {
    pub feature: Feature,
    pub cluster: Option<Version>,
}

/// The feature switches for one cluster version. While the cluster version is not decided yet
/// every gated feature is off: the cluster may still contain members of the oldest version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureGates {
    cluster: Option<Version>,
}

impl FeatureGates {
    pub fn for_cluster_version(cluster: Option<Version>) -> Self {
        FeatureGates {
            cluster: cluster.map(Version::minor_only),
        }
    }

    pub fn enabled(&self, feature: Feature) -> bool {
        self.cluster.is_some_and(|v| v >= feature.since())
    }

    pub fn check(&self, feature: Feature) -> Result<(), FeatureDisabled> {
        if self.enabled(feature) {
            Ok(())
        } else {
            Err(FeatureDisabled {
                feature,
                cluster: self.cluster,
            })
        }
    }
}

/// The lowest qraft version that can apply this replicated request. Used to refuse applying
/// (and to refuse a storage downgrade while the log still holds) entries an older member
/// cannot read.
pub fn minimal_version(request: &InternalRequest) -> Version {
    match &request.request {
        Some(Request::LeaseCheckpoint(_)) => Feature::LeaseCheckpoint.since(),
        _ => V0_1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qraft_proto::etcdserverpb::LeaseCheckpointRequest;

    #[test]
    fn gates_follow_cluster_version() {
        assert!(!FeatureGates::for_cluster_version(None).enabled(Feature::LeaseCheckpoint));
        assert!(!FeatureGates::for_cluster_version(Some(V0_1)).enabled(Feature::LeaseCheckpoint));
        assert!(
            FeatureGates::for_cluster_version(Some(Version::new(0, 2, 3)))
                .enabled(Feature::LeaseCheckpoint)
        );
        assert_eq!(
            FeatureGates::for_cluster_version(Some(V0_1))
                .check(Feature::LeaseCheckpoint)
                .unwrap_err()
                .to_string(),
            "etcdserver: feature lease_checkpoint needs cluster version 0.2 (cluster version is 0.1)"
        );
    }

    #[test]
    fn checkpoint_entries_need_0_2() {
        let checkpoint = InternalRequest {
            request: Some(Request::LeaseCheckpoint(LeaseCheckpointRequest::default())),
            ..Default::default()
        };
        assert_eq!(minimal_version(&checkpoint), V0_2);
        assert_eq!(minimal_version(&InternalRequest::default()), V0_1);
        assert!(is_known(Version::new(0, 1, 7)));
        assert!(!is_known(Version::new(0, 3, 0)));
    }
}
