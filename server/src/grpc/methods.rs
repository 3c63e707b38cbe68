//! The table of etcd's v3 RPCs: for each method path, its streaming shape and how its request
//! and response map onto the `qraftpb::ClientRequest` / `ClientResponse` envelopes.
//!
//! Both envelopes name their oneof cases like etcd's methods (`range`, `lease_keep_alive`,
//! `user_add`, ...), so one macro line per method keeps the table easy to check against
//! etcd's `rpc.proto`.

use prost::Message;
use prost::bytes::Bytes;
use qraft_proto::qraftpb::{ClientResponse, client_request, client_response};

use super::body::EncodeFn;
use super::status::{Code, Status};

/// How requests and responses flow on the HTTP/2 stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses (Maintenance.Snapshot).
    ServerStream,
    /// Requests and responses interleave for as long as the stream lives (Watch,
    /// LeaseKeepAlive).
    Bidirectional,
}

/// Turns one request message into the core's request case.
pub type DecodeFn = fn(Bytes) -> Result<client_request::Request, prost::DecodeError>;

#[derive(Clone, Copy)]
pub struct Method {
    pub shape: Shape,
    pub decode: DecodeFn,
    pub encode: EncodeFn,
}

/// The version reported in `Maintenance.Status` when the core reports something that is not
/// an etcd version: clients such as Kubernetes gate features on a "3.x.y" string.
pub const ETCD_COMPATIBLE_VERSION: &str = "3.6.0";

/// The status that ends a call whose core answer is an error or of the wrong kind.
fn not_a_response(response: Option<client_response::Response>) -> Status {
    match response {
        Some(client_response::Response::Error(error)) => Status::from_core(error),
        _ => Status::new(
            Code::Internal,
            "qraft: the core answered with a response of another kind",
        ),
    }
}

macro_rules! method {
    ($shape:ident, $case:ident) => {
        Method {
            shape: Shape::$shape,
            decode: |bytes| Ok(client_request::Request::$case(Message::decode(bytes)?)),
            encode: |response: ClientResponse| match response.response {
                Some(client_response::Response::$case(message)) => {
                    Ok(Bytes::from(message.encode_to_vec()))
                }
                other => Err(not_a_response(other)),
            },
        }
    };
}

/// `Maintenance.Status` with an etcd-style `version`. The core reports the (possibly
/// emulated) etcd version it speaks; anything else is replaced so clients' version gates work.
fn status_method() -> Method {
    Method {
        shape: Shape::Unary,
        decode: |bytes| Ok(client_request::Request::Status(Message::decode(bytes)?)),
        encode: |response: ClientResponse| match response.response {
            Some(client_response::Response::Status(mut status)) => {
                if !is_etcd_version(&status.version) {
                    status.version = ETCD_COMPATIBLE_VERSION.to_owned();
                }
                Ok(Bytes::from(status.encode_to_vec()))
            }
            other => Err(not_a_response(other)),
        },
    }
}

/// "3.<minor>.<patch>" with numeric parts, as etcd reports it.
fn is_etcd_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts[0] == "3"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The method served at `path` (`/etcdserverpb.KV/Range`), or gRPC's UNIMPLEMENTED status.
pub fn lookup(path: &str) -> Result<Method, Status> {
    let Some((service, name)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return Err(Status::new(
            Code::Unimplemented,
            format!("malformed method name: {path:?}"),
        ));
    };
    let method = match (service, name) {
        ("etcdserverpb.KV", "Range") => method!(Unary, Range),
        ("etcdserverpb.KV", "Put") => method!(Unary, Put),
        ("etcdserverpb.KV", "DeleteRange") => method!(Unary, DeleteRange),
        ("etcdserverpb.KV", "Txn") => method!(Unary, Txn),
        ("etcdserverpb.KV", "Compact") => method!(Unary, Compaction),
        ("etcdserverpb.Watch", "Watch") => method!(Bidirectional, Watch),
        ("etcdserverpb.Lease", "LeaseGrant") => method!(Unary, LeaseGrant),
        ("etcdserverpb.Lease", "LeaseRevoke") => method!(Unary, LeaseRevoke),
        ("etcdserverpb.Lease", "LeaseKeepAlive") => method!(Bidirectional, LeaseKeepAlive),
        ("etcdserverpb.Lease", "LeaseTimeToLive") => method!(Unary, LeaseTimeToLive),
        ("etcdserverpb.Lease", "LeaseLeases") => method!(Unary, LeaseLeases),
        ("etcdserverpb.Cluster", "MemberAdd") => method!(Unary, MemberAdd),
        ("etcdserverpb.Cluster", "MemberRemove") => method!(Unary, MemberRemove),
        ("etcdserverpb.Cluster", "MemberUpdate") => method!(Unary, MemberUpdate),
        ("etcdserverpb.Cluster", "MemberList") => method!(Unary, MemberList),
        ("etcdserverpb.Cluster", "MemberPromote") => method!(Unary, MemberPromote),
        ("etcdserverpb.Maintenance", "Alarm") => method!(Unary, Alarm),
        ("etcdserverpb.Maintenance", "Status") => status_method(),
        ("etcdserverpb.Maintenance", "Defragment") => method!(Unary, Defragment),
        ("etcdserverpb.Maintenance", "Hash") => method!(Unary, Hash),
        ("etcdserverpb.Maintenance", "HashKV") => method!(Unary, HashKv),
        ("etcdserverpb.Maintenance", "Snapshot") => method!(ServerStream, Snapshot),
        ("etcdserverpb.Maintenance", "MoveLeader") => method!(Unary, MoveLeader),
        ("etcdserverpb.Maintenance", "Downgrade") => method!(Unary, Downgrade),
        ("etcdserverpb.Auth", "AuthEnable") => method!(Unary, AuthEnable),
        ("etcdserverpb.Auth", "AuthDisable") => method!(Unary, AuthDisable),
        ("etcdserverpb.Auth", "AuthStatus") => method!(Unary, AuthStatus),
        ("etcdserverpb.Auth", "Authenticate") => method!(Unary, Authenticate),
        ("etcdserverpb.Auth", "UserAdd") => method!(Unary, UserAdd),
        ("etcdserverpb.Auth", "UserGet") => method!(Unary, UserGet),
        ("etcdserverpb.Auth", "UserList") => method!(Unary, UserList),
        ("etcdserverpb.Auth", "UserDelete") => method!(Unary, UserDelete),
        ("etcdserverpb.Auth", "UserChangePassword") => method!(Unary, UserChangePassword),
        ("etcdserverpb.Auth", "UserGrantRole") => method!(Unary, UserGrantRole),
        ("etcdserverpb.Auth", "UserRevokeRole") => method!(Unary, UserRevokeRole),
        ("etcdserverpb.Auth", "RoleAdd") => method!(Unary, RoleAdd),
        ("etcdserverpb.Auth", "RoleGet") => method!(Unary, RoleGet),
        ("etcdserverpb.Auth", "RoleList") => method!(Unary, RoleList),
        ("etcdserverpb.Auth", "RoleDelete") => method!(Unary, RoleDelete),
        ("etcdserverpb.Auth", "RoleGrantPermission") => method!(Unary, RoleGrantPermission),
        ("etcdserverpb.Auth", "RoleRevokePermission") => method!(Unary, RoleRevokePermission),
        (
            "etcdserverpb.KV"
            | "etcdserverpb.Watch"
            | "etcdserverpb.Lease"
            | "etcdserverpb.Cluster"
            | "etcdserverpb.Maintenance"
            | "etcdserverpb.Auth",
            _,
        ) => {
            return Err(Status::new(
                Code::Unimplemented,
                format!("unknown method {name} for service {service}"),
            ));
        }
        _ => {
            return Err(Status::new(
                Code::Unimplemented,
                format!("unknown service {service}"),
            ));
        }
    };
    Ok(method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qraft_proto::etcdserverpb::{RangeRequest, StatusResponse};

    #[test]
    fn known_paths_decode_into_the_matching_core_request() {
        let method = lookup("/etcdserverpb.KV/Range").expect("known");
        assert_eq!(method.shape, Shape::Unary);
        let request = RangeRequest {
            key: Bytes::from_static(b"k"),
            ..Default::default()
        };
        let decoded = (method.decode)(Bytes::from(request.encode_to_vec())).expect("decodes");
        assert_eq!(decoded, client_request::Request::Range(request));
        assert_eq!(
            lookup("/etcdserverpb.Watch/Watch").expect("known").shape,
            Shape::Bidirectional
        );
    }

    #[test]
    fn unknown_paths_are_unimplemented_with_grpc_go_wording() {
        let status = lookup("/etcdserverpb.KV/Scan")
            .err()
            .expect("unknown method");
        assert_eq!(status.code, Code::Unimplemented as i32);
        assert_eq!(
            status.message,
            "unknown method Scan for service etcdserverpb.KV"
        );
        let status = lookup("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
            .err()
            .expect("unknown service");
        assert_eq!(
            status.message,
            "unknown service grpc.reflection.v1.ServerReflection"
        );
    }

    #[test]
    fn status_version_is_etcd_style() {
        let encode = lookup("/etcdserverpb.Maintenance/Status")
            .expect("known")
            .encode;
        for (reported, expected) in [("3.5.17", "3.5.17"), ("0.1.0", "3.6.0"), ("", "3.6.0")] {
            let response = ClientResponse {
                response: Some(client_response::Response::Status(StatusResponse {
                    version: reported.into(),
                    ..Default::default()
                })),
            };
            let bytes = encode(response).expect("a status response");
            let decoded = StatusResponse::decode(bytes).expect("valid");
            assert_eq!(decoded.version, expected);
        }
    }

    #[test]
    fn core_errors_end_the_call_with_their_status() {
        let encode = lookup("/etcdserverpb.Lease/LeaseRevoke")
            .expect("known")
            .encode;
        let error = qraft_proto::qraftpb::Error {
            code: Code::NotFound as i32,
            message: "etcdserver: requested lease not found".into(),
            leader_hint: 0,
        };
        let response = ClientResponse {
            response: Some(client_response::Response::Error(error)),
        };
        let status = encode(response).expect_err("error");
        assert_eq!(status.code, Code::NotFound as i32);
        assert_eq!(status.message, "etcdserver: requested lease not found");
    }
}
