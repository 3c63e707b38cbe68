//! The two kinds of version failure: a member that must not run ([`VersionError`]) and a
//! downgrade request a client gets answered with ([`DowngradeError`]).

use super::semver::{Version, VersionParseError};

/// This member cannot run with this configuration, data or cluster. The server logs the
/// message and exits; nothing is written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("invalid --emulated-version {emulated}: {reason} (binary version {binary})")]
    InvalidEmulatedVersion {
        emulated: Version,
        binary: Version,
        reason: &'static str,
    },
    #[error(
        "server version {server} is lower than cluster version {}: this member refuses to run; \
         enable a downgrade to {} first (qraftctl downgrade enable {})",
        .cluster.minor_string(), .server.minor_string(), .server.minor_string()
    )]
    ServerTooOld { server: Version, cluster: Version },
    #[error(
        "server version {server} is more than one minor version above cluster version {}: \
         upgrade one minor version at a time",
        .cluster.minor_string()
    )]
    ServerTooNew { server: Version, cluster: Version },
    #[error("server version {server} has a different major version than cluster version {cluster}")]
    IncompatibleMajor { server: Version, cluster: Version },
    #[error(
        "storage schema version {} is newer than this member understands (server version {server}): \
         the data was written by a newer qraft; run that version, or downgrade the cluster so every \
         member migrates its storage first",
        .storage.minor_string()
    )]
    StorageTooNew { storage: Version, server: Version },
    #[error(
        "storage schema version {} is older than this member can read (oldest {}): upgrade through \
         the versions in between",
        .storage.minor_string(), .oldest.minor_string()
    )]
    StorageTooOld { storage: Version, oldest: Version },
    #[error("stored {what} is not a version: {source}")]
    InvalidStored {
        what: &'static str,
        #[source]
        source: VersionParseError,
    },
    #[error("stored version state cannot be decoded: {0}")]
    UndecodableState(String),
    #[error(
        "cannot migrate storage to {}: the raft log still holds entries that need qraft {} \
         (first at index {index}); compact the log first",
        .target.minor_string(), .needs.minor_string()
    )]
    LogHasNewerEntries {
        target: Version,
        needs: Version,
        index: u64,
    },
    #[error(
        "raft entry {index} needs qraft {} but this member runs {server}",
        .needs.minor_string()
    )]
    EntryTooNew {
        index: u64,
        needs: Version,
        server: Version,
    },
    #[error("cannot migrate storage from {} to {}: no migration between them", .from.minor_string(), .to.minor_string())]
    NoMigration { from: Version, to: Version },
}

/// gRPC status codes used in [`DowngradeError::grpc_code`].
pub mod grpc_code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const UNAVAILABLE: i32 = 14;
}

/// A downgrade validate/enable/cancel that cannot be done. Messages are etcd's where etcd has
/// the case, prefixed `etcdserver:` like every server error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DowngradeError {
    #[error("etcdserver: wrong downgrade target version format")]
    WrongVersionFormat,
    #[error("etcdserver: cluster version not found during downgrade")]
    ClusterVersionUnavailable,
    #[error("etcdserver: invalid downgrade target version")]
    InvalidTargetVersion,
    #[error("etcdserver: cluster has a downgrade job in progress")]
    InProgress,
    #[error("etcdserver: no inflight downgrade job")]
    NoInflightDowngrade,
    #[error("etcdserver: member {member:x} has not published its version yet")]
    MemberVersionUnknown { member: u64 },
    #[error(
        "etcdserver: member {member:x} cannot downgrade to {}: its binary goes down to {} at most",
        .target.minor_string(), .oldest.minor_string()
    )]
    MemberCannotDowngrade {
        member: u64,
        target: Version,
        oldest: Version,
    },
}

impl DowngradeError {
    pub fn grpc_code(&self) -> i32 {
        match self {
            DowngradeError::WrongVersionFormat | DowngradeError::InvalidTargetVersion => {
                grpc_code::INVALID_ARGUMENT
            }
            DowngradeError::ClusterVersionUnavailable => grpc_code::UNAVAILABLE,
            DowngradeError::InProgress
            | DowngradeError::NoInflightDowngrade
            | DowngradeError::MemberVersionUnknown { .. }
            | DowngradeError::MemberCannotDowngrade { .. } => grpc_code::FAILED_PRECONDITION,
        }
    }
}
