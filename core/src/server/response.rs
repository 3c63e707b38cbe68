//! Response envelopes: headers and errors as clients see them.

use qraft_proto::etcdserverpb::ResponseHeader;
use qraft_proto::qraftpb::client_response::Response;
use qraft_proto::qraftpb::{ClientResponse, Error as WireError};

use crate::error::Error;

/// The header every response carries.
pub fn header(cluster_id: u64, member_id: u64, revision: i64, raft_term: u64) -> ResponseHeader {
    ResponseHeader {
        cluster_id,
        member_id,
        revision,
        raft_term,
    }
}

/// An error response; `leader_hint` names the member to retry with (0 = unknown).
pub fn error_response(err: &Error, leader_hint: u64) -> ClientResponse {
    ClientResponse {
        response: Some(Response::Error(WireError {
            code: err.code() as i32,
            message: err.to_string(),
            leader_hint,
        })),
    }
}

pub fn ok_response(response: Response) -> ClientResponse {
    ClientResponse {
        response: Some(response),
    }
}
