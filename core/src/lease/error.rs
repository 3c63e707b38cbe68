//! Errors of the lessor, with etcd's client-visible messages.

/// A lease operation that cannot be carried out. The messages are etcd's, so clients that match
/// on them keep working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("etcdserver: requested lease not found")]
    NotFound,
    #[error("etcdserver: lease already exists")]
    AlreadyExists,
    #[error("etcdserver: too large lease TTL")]
    TtlTooLarge,
    /// Renewals and expiry need the primary's deadlines; a follower must send them to the leader.
    #[error("etcdserver: not leader")]
    NotPrimary,
}

impl LeaseError {
    /// The gRPC status code etcd answers this error with.
    pub fn grpc_code(&self) -> i32 {
        match self {
            LeaseError::NotFound => 5,      // NotFound
            LeaseError::AlreadyExists => 9, // FailedPrecondition
            LeaseError::TtlTooLarge => 11,  // OutOfRange
            LeaseError::NotPrimary => 9,    // FailedPrecondition
        }
    }
}
