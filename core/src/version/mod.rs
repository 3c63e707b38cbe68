//! Cluster version negotiation, feature gates, downgrade and storage schema versions.
//!
//! How it fits together (see `docs/downgrade.md` for the operator's view):
//!
//! * Every member runs as a [`LocalVersion`] (its binary's version, or `--emulated-version`)
//!   and publishes it through raft (`MemberVersionPublishRequest`) whenever the replicated
//!   record differs ([`VersionNegotiator::publish_request`]).
//! * The leader periodically calls [`VersionNegotiator::leader_proposals`]: it raises the
//!   cluster version to the lowest published member version (major.minor) and ends a downgrade
//!   once every member runs the target.
//! * Every member applies the version entries ([`VersionNegotiator::apply`]) into the same
//!   [`ClusterVersions`]; a member outside the window `cluster ≤ server ≤ cluster + 1 minor`
//!   gets [`VersionEvent::MemberMustStop`] and refuses to run, at start too
//!   ([`VersionNegotiator::start`]).
//! * Features are switched by the cluster version ([`FeatureGates`]); the storage schema
//!   follows the cluster version ([`VersionNegotiator::storage_target`], [`schema`]).
//! * A downgrade is validated and enabled through [`VersionNegotiator::handle_downgrade`];
//!   enabling drops the cluster version to the target at once.

mod catalog;
mod cluster;
mod errors;
mod local;
mod negotiator;
pub mod schema;
mod semver;

pub use catalog::{
    BINARY_VERSION, Feature, FeatureDisabled, FeatureGates, KNOWN_VERSIONS, V0_1, V0_2, is_known,
    minimal_version,
};
pub use cluster::{ClusterVersions, DowngradeInfo, MemberVersions, VersionEvent};
pub use errors::{DowngradeError, VersionError, grpc_code};
pub use local::LocalVersion;
pub use negotiator::{DowngradeStep, VersionNegotiator, VersionReport, downgrade_success_message};
pub use semver::{Version, VersionParseError};
