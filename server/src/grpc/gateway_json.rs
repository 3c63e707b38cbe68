//! The JSON side of etcd's gRPC gateway: which `/v3/...` path is which RPC, and the proto3 JSON
//! mapping grpc-gateway's default marshaler (`JSONPb{OrigName: true}`) applies — proto field
//! names, 64-bit integers as strings, bytes as standard base64, enums by name, fields at their
//! default value left out. Conversion goes through the messages' descriptors (reflection), so
//! the gateway decodes into the very protobuf bytes a gRPC client would send and every RPC
//! keeps one implementation.

use std::sync::LazyLock;

use prost::Message;
use prost::bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use super::status::{Code, Status};

/// `(gateway path, gRPC method path)`: etcd's `google.api.http` bindings (3.4, plus the 3.5
/// additions `auth/status`, `maintenance/hashkv`, `maintenance/downgrade`), and the lock and
/// election services' (etcd's v3lock and v3election gateways).
const ROUTES: &[(&str, &str)] = &[
    ("/v3/kv/range", "/etcdserverpb.KV/Range"),
    ("/v3/kv/put", "/etcdserverpb.KV/Put"),
    ("/v3/kv/deleterange", "/etcdserverpb.KV/DeleteRange"),
    ("/v3/kv/txn", "/etcdserverpb.KV/Txn"),
    ("/v3/kv/compaction", "/etcdserverpb.KV/Compact"),
    ("/v3/watch", "/etcdserverpb.Watch/Watch"),
    ("/v3/lease/grant", "/etcdserverpb.Lease/LeaseGrant"),
    ("/v3/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke"),
    ("/v3/kv/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke"),
    ("/v3/lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive"),
    (
        "/v3/lease/timetolive",
        "/etcdserverpb.Lease/LeaseTimeToLive",
    ),
    (
        "/v3/kv/lease/timetolive",
        "/etcdserverpb.Lease/LeaseTimeToLive",
    ),
    ("/v3/lease/leases", "/etcdserverpb.Lease/LeaseLeases"),
    ("/v3/kv/lease/leases", "/etcdserverpb.Lease/LeaseLeases"),
    ("/v3/cluster/member/add", "/etcdserverpb.Cluster/MemberAdd"),
    (
        "/v3/cluster/member/remove",
        "/etcdserverpb.Cluster/MemberRemove",
    ),
    (
        "/v3/cluster/member/update",
        "/etcdserverpb.Cluster/MemberUpdate",
    ),
    (
        "/v3/cluster/member/list",
        "/etcdserverpb.Cluster/MemberList",
    ),
    (
        "/v3/cluster/member/promote",
        "/etcdserverpb.Cluster/MemberPromote",
    ),
    ("/v3/maintenance/alarm", "/etcdserverpb.Maintenance/Alarm"),
    ("/v3/maintenance/status", "/etcdserverpb.Maintenance/Status"),
    (
        "/v3/maintenance/defragment",
        "/etcdserverpb.Maintenance/Defragment",
    ),
    ("/v3/maintenance/hash", "/etcdserverpb.Maintenance/Hash"),
    ("/v3/maintenance/hashkv", "/etcdserverpb.Maintenance/HashKV"),
    (
        "/v3/maintenance/snapshot",
        "/etcdserverpb.Maintenance/Snapshot",
    ),
    (
        "/v3/maintenance/transfer-leadership",
        "/etcdserverpb.Maintenance/MoveLeader",
    ),
    (
        "/v3/maintenance/downgrade",
        "/etcdserverpb.Maintenance/Downgrade",
    ),
    ("/v3/auth/enable", "/etcdserverpb.Auth/AuthEnable"),
    ("/v3/auth/disable", "/etcdserverpb.Auth/AuthDisable"),
    ("/v3/auth/status", "/etcdserverpb.Auth/AuthStatus"),
    ("/v3/auth/authenticate", "/etcdserverpb.Auth/Authenticate"),
    ("/v3/auth/user/add", "/etcdserverpb.Auth/UserAdd"),
    ("/v3/auth/user/get", "/etcdserverpb.Auth/UserGet"),
    ("/v3/auth/user/list", "/etcdserverpb.Auth/UserList"),
    ("/v3/auth/user/delete", "/etcdserverpb.Auth/UserDelete"),
    (
        "/v3/auth/user/changepw",
        "/etcdserverpb.Auth/UserChangePassword",
    ),
    ("/v3/auth/user/grant", "/etcdserverpb.Auth/UserGrantRole"),
    ("/v3/auth/user/revoke", "/etcdserverpb.Auth/UserRevokeRole"),
    ("/v3/auth/role/add", "/etcdserverpb.Auth/RoleAdd"),
    ("/v3/auth/role/get", "/etcdserverpb.Auth/RoleGet"),
    ("/v3/auth/role/list", "/etcdserverpb.Auth/RoleList"),
    ("/v3/auth/role/delete", "/etcdserverpb.Auth/RoleDelete"),
    (
        "/v3/auth/role/grant",
        "/etcdserverpb.Auth/RoleGrantPermission",
    ),
    (
        "/v3/auth/role/revoke",
        "/etcdserverpb.Auth/RoleRevokePermission",
    ),
    ("/v3/lock/lock", "/v3lockpb.Lock/Lock"),
    ("/v3/lock/unlock", "/v3lockpb.Lock/Unlock"),
    ("/v3/election/campaign", "/v3electionpb.Election/Campaign"),
    ("/v3/election/proclaim", "/v3electionpb.Election/Proclaim"),
    ("/v3/election/leader", "/v3electionpb.Election/Leader"),
    ("/v3/election/observe", "/v3electionpb.Election/Observe"),
    ("/v3/election/resign", "/v3electionpb.Election/Resign"),
];

/// The protos' descriptors, from the set qraft-proto embeds at build time.
static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(qraft_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
});

/// One gateway path: the gRPC method it calls and its message types.
#[derive(Debug, Clone)]
pub struct Route {
    pub grpc_path: &'static str,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
}

/// The route of `path`, `None` for a path the gateway does not serve.
pub fn lookup(path: &str) -> Result<Option<Route>, Status> {
    let Some(&(_, grpc_path)) = ROUTES.iter().find(|(p, _)| *p == path) else {
        return Ok(None);
    };
    let pool = POOL
        .as_ref()
        .map_err(|e| Status::new(Code::Internal, format!("descriptors: {e}")))?;
    let (service, method) = grpc_path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or_default();
    let method = pool
        .get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == method))
        .ok_or_else(|| Status::new(Code::Internal, format!("no descriptor for {grpc_path}")))?;
    Ok(Some(Route {
        grpc_path,
        input: method.input(),
        output: method.output(),
    }))
}

/// A JSON request body as the message's protobuf bytes. An empty body is the empty message,
/// as grpc-gateway reads it.
pub fn request_from_json(desc: &MessageDescriptor, json: &[u8]) -> Result<Bytes, Status> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::new());
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let message = DynamicMessage::deserialize(desc.clone(), &mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| Status::new(Code::InvalidArgument, e.to_string()))?;
    Ok(Bytes::from(message.encode_to_vec()))
}

/// One JSON value of a request stream as protobuf bytes.
pub fn request_from_value(
    desc: &MessageDescriptor,
    value: serde_json::Value,
) -> Result<Bytes, Status> {
    let message = DynamicMessage::deserialize(desc.clone(), value)
        .map_err(|e| Status::new(Code::InvalidArgument, e.to_string()))?;
    Ok(Bytes::from(message.encode_to_vec()))
}

/// A response message as grpc-gateway's JSON value.
pub fn response_to_json(
    desc: &MessageDescriptor,
    bytes: Bytes,
) -> Result<serde_json::Value, Status> {
    let message = DynamicMessage::decode(desc.clone(), bytes)
        .map_err(|e| Status::new(Code::Internal, format!("gateway: {e}")))?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true)
        .stringify_64_bit_integers(true);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| Status::new(Code::Internal, format!("gateway: {e}")))
}

/// grpc-gateway's `HTTPStatusFromCode` (v1, the one etcd 3.4 runs).
pub fn http_status(code: i32) -> u16 {
    match code {
        0 => 200,
        1 => 408,
        3 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        9 => 412,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

/// The body of a failed unary call: `{"error":…,"code":…,"message":…}` as grpc-gateway writes
/// it (empty strings left out, as its marshaler does).
pub fn error_body(status: &Status) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    if !status.message.is_empty() {
        body.insert("error".into(), status.message.clone().into());
    }
    if status.code != 0 {
        body.insert("code".into(), status.code.into());
    }
    if !status.message.is_empty() {
        body.insert("message".into(), status.message.clone().into());
    }
    serde_json::Value::Object(body)
}

/// A failed stream's last line: `{"error":{"grpc_code":…,"http_code":…,"message":…,
/// "http_status":…}}`.
pub fn stream_error(status: &Status) -> serde_json::Value {
    let http = http_status(status.code);
    let mut error = serde_json::Map::new();
    if status.code != 0 {
        error.insert("grpc_code".into(), status.code.into());
    }
    error.insert("http_code".into(), http.into());
    if !status.message.is_empty() {
        error.insert("message".into(), status.message.clone().into());
    }
    error.insert("http_status".into(), reason_phrase(http).into());
    serde_json::json!({ "error": error })
}

fn reason_phrase(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use qraft_proto::etcdserverpb::{RangeRequest, RangeResponse, ResponseHeader};
    use qraft_proto::mvccpb::KeyValue;

    #[test]
    fn every_route_has_descriptors_and_a_grpc_method() {
        for (path, grpc) in ROUTES {
            let route = lookup(path).expect("descriptors").expect("route");
            assert_eq!(route.grpc_path, *grpc);
            let served = super::super::methods::lookup(grpc).is_ok()
                || matches!(super::super::recipes::lookup(grpc), Some(Ok(_)));
            assert!(served, "{grpc}");
        }
        assert!(lookup("/v3/kv/scan").expect("no error").is_none());
    }

    #[test]
    fn json_maps_as_grpc_gateway_does() {
        let route = lookup("/v3/kv/range").expect("ok").expect("route");
        let bytes = request_from_json(
            &route.input,
            br#"{"key":"Zm9v","range_end":"Zm9w","limit":"5","sort_order":"DESCEND"}"#,
        )
        .expect("request");
        let request = RangeRequest::decode(bytes).expect("decodes");
        assert_eq!(&request.key[..], b"foo");
        assert_eq!(&request.range_end[..], b"fop");
        assert_eq!(request.limit, 5);
        assert_eq!(request.sort_order, 2);
        // camelCase names and numbers for 64-bit fields are accepted too.
        let bytes = request_from_json(&route.input, br#"{"rangeEnd":"AA==","limit":3}"#)
            .expect("camelCase");
        assert_eq!(RangeRequest::decode(bytes).expect("decodes").limit, 3);
        assert!(
            request_from_json(&route.input, b"  ")
                .expect("empty")
                .is_empty()
        );
        let bad = request_from_json(&route.input, br#"{"nope":1}"#).expect_err("unknown");
        assert_eq!(bad.code, Code::InvalidArgument as i32);

        let response = RangeResponse {
            header: Some(ResponseHeader {
                cluster_id: u64::MAX,
                member_id: 1,
                revision: 7,
                raft_term: 2,
            }),
            kvs: vec![KeyValue {
                key: Bytes::from_static(b"foo"),
                value: Bytes::from_static(b"bar"),
                create_revision: 7,
                mod_revision: 7,
                version: 1,
                lease: 0,
            }],
            more: false,
            count: 1,
        };
        let json =
            response_to_json(&route.output, Bytes::from(response.encode_to_vec())).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "header": {
                    "cluster_id": "18446744073709551615",
                    "member_id": "1",
                    "revision": "7",
                    "raft_term": "2"
                },
                "kvs": [{
                    "key": "Zm9v",
                    "create_revision": "7",
                    "mod_revision": "7",
                    "version": "1",
                    "value": "YmFy"
                }],
                "count": "1"
            })
        );
    }

    #[test]
    fn errors_carry_grpc_gateway_codes_and_shapes() {
        let status = Status::new(Code::NotFound, "etcdserver: requested lease not found");
        assert_eq!(http_status(status.code), 404);
        assert_eq!(
            error_body(&status),
            serde_json::json!({
                "error": "etcdserver: requested lease not found",
                "code": 5,
                "message": "etcdserver: requested lease not found"
            })
        );
        assert_eq!(
            stream_error(&Status::new(Code::Unavailable, "no leader")),
            serde_json::json!({"error": {
                "grpc_code": 14, "http_code": 503, "message": "no leader",
                "http_status": "Service Unavailable"
            }})
        );
        assert_eq!(http_status(Code::FailedPrecondition as i32), 412);
    }
}
