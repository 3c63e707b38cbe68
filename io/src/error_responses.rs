//! gRPC status codes as carried in `qraftpb::Error`, and helpers to build error responses.

use qraft_proto::qraftpb::{self, ClientResponse, client_response};

/// gRPC status codes: the core's, so every layer maps errors the same way.
pub use qraft_core::error::Code;
use qraft_core::error::Error;

/// An error response for one of the core's errors: its gRPC code and etcd's message text.
pub fn core_error_response(error: &Error) -> ClientResponse {
    error_response(error.code(), error.to_string())
}

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
