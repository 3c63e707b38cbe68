//! gRPC status codes as carried in `qraftpb::Error`, and helpers to build error responses.

use qraft_proto::qraftpb::{self, ClientResponse, client_response};

/// gRPC status codes: the core's, so every layer maps errors the same way.
pub use qraft_core::error::Code;

/// etcd's message for a request above the size limit.
pub const MSG_REQUEST_TOO_LARGE: &str = "etcdserver: request is too large";
/// etcd's message when the contacted member is not the leader.
pub const MSG_NOT_LEADER: &str = "etcdserver: not leader";
/// etcd's message when the cluster has no leader.
pub const MSG_NO_LEADER: &str = "etcdserver: no leader";
/// etcd's message when too many proposals are pending.
pub const MSG_TOO_MANY_REQUESTS: &str = "etcdserver: too many requests";

/// A response carrying only an error.
pub fn error_response(code: Code, message: impl Into<String>) -> ClientResponse {
    error_response_with_hint(code, message, 0)
}

/// An error response naming the member the client should try instead.
pub fn error_response_with_hint(
    code: Code,
    message: impl Into<String>,
    leader_hint: u64,
) -> ClientResponse {
    ClientResponse {
        response: Some(client_response::Response::Error(qraftpb::Error {
            code: code as i32,
            message: message.into(),
            leader_hint,
        })),
    }
}
