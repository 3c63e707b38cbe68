//! The error every client-facing operation of the core returns.
//!
//! Each variant is one of etcd's client-visible errors: [`std::fmt::Display`] is etcd's exact
//! gRPC status message (clients match on these strings) and [`Error::code`] its gRPC status
//! code. Areas add variants here rather than defining their own client error types, so the
//! shell maps every error to a status the same way.

use crate::backend::BackendError;
use crate::version::{DowngradeError, VersionError};

/// gRPC status codes (numeric values as in the gRPC spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// Maps a wire value to a code; values outside gRPC's range become `Unknown`.
    pub fn from_i32(value: i32) -> Self {
        use Code::*;
        const ALL: [Code; 17] = [
            Ok,
            Cancelled,
            Unknown,
            InvalidArgument,
            DeadlineExceeded,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            ResourceExhausted,
            FailedPrecondition,
            Aborted,
            OutOfRange,
            Unimplemented,
            Internal,
            Unavailable,
            DataLoss,
            Unauthenticated,
        ];
        usize::try_from(value)
            .ok()
            .and_then(|i| ALL.get(i).copied())
            .unwrap_or(Unknown)
    }
}

/// A client-visible error with etcd's message text and gRPC code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // --- request validation
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    // --- mvcc
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// A CORRUPT alarm is active: the cluster refuses what goes through raft to the key space.
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    // --- lease
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    // --- auth
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: permission not given")]
    PermissionNotGiven,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// Hashing a password failed (bcrypt refused its input); never expected in practice.
    #[error("etcdserver: password hashing failed: {0}")]
    PasswordHashing(String),
    // --- server / raft
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    /// Sign-ins for this user failed too often in a row (`auth::login_limit`); qraft's own.
    #[error("etcdserver: too many failed authentication attempts, retry later")]
    TooManyAuthAttempts,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    /// The member is going away (its loop stopped).
    #[error("etcdserver: server stopped")]
    Stopped,
    /// A member forwarded a request that any member serves (`server::forward`); qraft's own.
    #[error("qraft: only leader-only requests are forwarded between members")]
    NotForwardable,
    /// A lease keep-alive stream carried another request (`server::StreamCall`); qraft's own.
    #[error("qraft: only keep-alive requests on a keep-alive stream")]
    NotAKeepAlive,
    /// The member cannot serve this kind of request (yet).
    #[error("etcdserver: not capable")]
    NotCapable,
    // --- membership
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    MemberNotEnoughStarted,
    /// A reconfiguration would break the quorum of peers this member is connected to
    /// (`server::reconfig_check`).
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// The raft node refused an operation for a reason clients cannot act on.
    #[error("etcdserver: raft: {0}")]
    Raft(String),
    // --- storage
    /// The backend failed; the member cannot serve the request.
    #[error("etcdserver: {0}")]
    Backend(#[from] BackendError),
    // --- versions
    /// This member must not run with its data, configuration or cluster (fatal for it).
    #[error("{0}")]
    Version(#[from] VersionError),
    /// A downgrade validate/enable/cancel that cannot be done; etcd's message.
    #[error("{0}")]
    Downgrade(#[from] DowngradeError),
}

impl Error {
    /// The gRPC status code etcd answers this error with.
    pub fn code(&self) -> Code {
        use Error::*;
        match self {
            EmptyKey | KeyNotFound | ValueProvided | LeaseProvided | TooManyOps | DuplicateKey
            | InvalidSortOption | RequestTooLarge | NotForwardable | NotAKeepAlive => {
                Code::InvalidArgument
            }
            UserEmpty | RoleEmpty | AuthFailed | PermissionNotGiven | InvalidAuthMgmt
            | AuthOldRevision => Code::InvalidArgument,
            RootUserNotExist | RootRoleNotExist | UserAlreadyExist | UserNotFound
            | RoleAlreadyExist | RoleNotFound | RoleNotGranted | PermissionNotGranted
            | AuthNotEnabled => Code::FailedPrecondition,
            Compacted | FutureRevision | LeaseTtlTooLarge => Code::OutOfRange,
            NoSpace | TooManyRequests | TooManyAuthAttempts => Code::ResourceExhausted,
            LeaseNotFound | MemberNotFound => Code::NotFound,
            LeaseExists
            | NotLeader
            | NotSupportedForLearner
            | MemberExists
            | PeerUrlExists
            | MemberNotEnoughStarted
            | MemberNotLearner
            | LearnerNotReady
            | TooManyLearners
            | BadLeaderTransferee => Code::FailedPrecondition,
            PermissionDenied => Code::PermissionDenied,
            Corrupt => Code::DataLoss,
            InvalidAuthToken => Code::Unauthenticated,
            NoLeader | LeaderChanged | Timeout | NotCapable | Stopped | Unhealthy => {
                Code::Unavailable
            }
            Backend(BackendError::Busy(_)) => Code::Unavailable,
            Backend(_) | PasswordHashing(_) | Raft(_) => Code::Internal,
            Version(_) => Code::FailedPrecondition,
            Downgrade(err) => match err.grpc_code() {
                crate::version::grpc_code::INVALID_ARGUMENT => Code::InvalidArgument,
                crate::version::grpc_code::UNAVAILABLE => Code::Unavailable,
                _ => Code::FailedPrecondition,
            },
        }
    }
}

/// Result of a client-facing core operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes_match_etcd() {
        assert_eq!(
            Error::Compacted.to_string(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(Error::Compacted.code(), Code::OutOfRange);
        assert_eq!(Error::KeyNotFound.code() as i32, 3);
        assert_eq!(Error::LeaseNotFound.code() as i32, 5);
    }
}
