//! Translation between qraft's `etcdserverpb` messages and etcd's JSON gateway format
//! (grpc-gateway: original proto field names, enums by name, bytes in base64, int64 as
//! strings, default values omitted), so the same request can be sent to both systems and the
//! answers compared as proto messages.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use qraft_proto::etcdserverpb::compare::TargetUnion;
use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::response_op::Response;
use qraft_proto::etcdserverpb::{
    CompactionRequest, Compare, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use qraft_proto::mvccpb::KeyValue;
use serde_json::{Map, Value, json};

fn b64(bytes: &[u8]) -> Value {
    Value::String(B64.encode(bytes))
}

fn set_bytes(m: &mut Map<String, Value>, name: &str, bytes: &[u8]) {
    if !bytes.is_empty() {
        m.insert(name.into(), b64(bytes));
    }
}

fn set_int(m: &mut Map<String, Value>, name: &str, v: i64) {
    if v != 0 {
        m.insert(name.into(), Value::String(v.to_string()));
    }
}

fn set_bool(m: &mut Map<String, Value>, name: &str, v: bool) {
    if v {
        m.insert(name.into(), Value::Bool(true));
    }
}

fn set_enum(m: &mut Map<String, Value>, name: &str, v: i32, names: &[&str]) {
    if v != 0 {
        let value = match names.get(v as usize) {
            Some(n) => Value::String((*n).into()),
            None => Value::from(v),
        };
        m.insert(name.into(), value);
    }
}

pub fn range_json(r: &RangeRequest) -> Value {
    let mut m = Map::new();
    set_bytes(&mut m, "key", &r.key);
    set_bytes(&mut m, "range_end", &r.range_end);
    set_int(&mut m, "limit", r.limit);
    set_int(&mut m, "revision", r.revision);
    set_enum(
        &mut m,
        "sort_order",
        r.sort_order,
        &["NONE", "ASCEND", "DESCEND"],
    );
    set_enum(
        &mut m,
        "sort_target",
        r.sort_target,
        &["KEY", "VERSION", "CREATE", "MOD", "VALUE"],
    );
    set_bool(&mut m, "serializable", r.serializable);
    set_bool(&mut m, "keys_only", r.keys_only);
    set_bool(&mut m, "count_only", r.count_only);
    set_int(&mut m, "min_mod_revision", r.min_mod_revision);
    set_int(&mut m, "max_mod_revision", r.max_mod_revision);
    set_int(&mut m, "min_create_revision", r.min_create_revision);
    set_int(&mut m, "max_create_revision", r.max_create_revision);
    Value::Object(m)
}

pub fn put_json(r: &PutRequest) -> Value {
    let mut m = Map::new();
    set_bytes(&mut m, "key", &r.key);
    set_bytes(&mut m, "value", &r.value);
    set_int(&mut m, "lease", r.lease);
    set_bool(&mut m, "prev_kv", r.prev_kv);
    set_bool(&mut m, "ignore_value", r.ignore_value);
    set_bool(&mut m, "ignore_lease", r.ignore_lease);
    Value::Object(m)
}

pub fn delete_json(r: &DeleteRangeRequest) -> Value {
    let mut m = Map::new();
    set_bytes(&mut m, "key", &r.key);
    set_bytes(&mut m, "range_end", &r.range_end);
    set_bool(&mut m, "prev_kv", r.prev_kv);
    Value::Object(m)
}

fn compare_json(c: &Compare) -> Value {
    let mut m = Map::new();
    set_enum(
        &mut m,
        "result",
        c.result,
        &["EQUAL", "GREATER", "LESS", "NOT_EQUAL"],
    );
    set_enum(
        &mut m,
        "target",
        c.target,
        &["VERSION", "CREATE", "MOD", "VALUE", "LEASE"],
    );
    set_bytes(&mut m, "key", &c.key);
    set_bytes(&mut m, "range_end", &c.range_end);
    // A set oneof member is always emitted, even when it holds the default value.
    match &c.target_union {
        Some(TargetUnion::Version(v)) => m.insert("version".into(), json!(v.to_string())),
        Some(TargetUnion::CreateRevision(v)) => {
            m.insert("create_revision".into(), json!(v.to_string()))
        }
        Some(TargetUnion::ModRevision(v)) => m.insert("mod_revision".into(), json!(v.to_string())),
        Some(TargetUnion::Lease(v)) => m.insert("lease".into(), json!(v.to_string())),
        Some(TargetUnion::Value(v)) => m.insert("value".into(), b64(v)),
        None => None,
    };
    Value::Object(m)
}

fn op_json(op: &RequestOp) -> Value {
    match &op.request {
        Some(Request::RequestRange(r)) => json!({ "request_range": range_json(r) }),
        Some(Request::RequestPut(r)) => json!({ "request_put": put_json(r) }),
        Some(Request::RequestDeleteRange(r)) => json!({ "request_delete_range": delete_json(r) }),
        Some(Request::RequestTxn(r)) => json!({ "request_txn": txn_json(r) }),
        None => json!({}),
    }
}

pub fn txn_json(r: &TxnRequest) -> Value {
    let mut m = Map::new();
    if !r.compare.is_empty() {
        m.insert(
            "compare".into(),
            r.compare.iter().map(compare_json).collect(),
        );
    }
    if !r.success.is_empty() {
        m.insert("success".into(), r.success.iter().map(op_json).collect());
    }
    if !r.failure.is_empty() {
        m.insert("failure".into(), r.failure.iter().map(op_json).collect());
    }
    Value::Object(m)
}

pub fn compaction_json(r: &CompactionRequest) -> Value {
    let mut m = Map::new();
    set_int(&mut m, "revision", r.revision);
    set_bool(&mut m, "physical", r.physical);
    Value::Object(m)
}

// ---- responses

/// Reads an int64/uint64 that the gateway renders as a string (or a number).
fn int(v: &Value, name: &str) -> i64 {
    match v.get(name) {
        Some(Value::String(s)) => s.parse().unwrap_or_else(|_| panic!("bad int {name}: {s}")),
        Some(Value::Number(n)) => n.as_i64().unwrap_or_else(|| panic!("bad int {name}: {n}")),
        None | Some(Value::Null) => 0,
        Some(other) => panic!("bad int {name}: {other}"),
    }
}

fn bytes(v: &Value, name: &str) -> Vec<u8> {
    match v.get(name) {
        Some(Value::String(s)) => B64
            .decode(s)
            .unwrap_or_else(|e| panic!("bad base64 in {name}: {e}")),
        _ => Vec::new(),
    }
}

fn boolean(v: &Value, name: &str) -> bool {
    v.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn list<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    v.get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The header's revision only: cluster/member id and term differ between systems.
fn header(v: &Value) -> Option<ResponseHeader> {
    v.get("header").map(|h| ResponseHeader {
        revision: int(h, "revision"),
        ..ResponseHeader::default()
    })
}

pub fn kv_from(v: &Value) -> KeyValue {
    KeyValue {
        key: bytes(v, "key").into(),
        create_revision: int(v, "create_revision"),
        mod_revision: int(v, "mod_revision"),
        version: int(v, "version"),
        value: bytes(v, "value").into(),
        lease: int(v, "lease"),
    }
}

pub fn range_from(v: &Value) -> RangeResponse {
    RangeResponse {
        header: header(v),
        kvs: list(v, "kvs").iter().map(kv_from).collect(),
        more: boolean(v, "more"),
        count: int(v, "count"),
    }
}

pub fn put_from(v: &Value) -> PutResponse {
    PutResponse {
        header: header(v),
        prev_kv: v.get("prev_kv").map(kv_from),
    }
}

pub fn delete_from(v: &Value) -> DeleteRangeResponse {
    DeleteRangeResponse {
        header: header(v),
        deleted: int(v, "deleted"),
        prev_kvs: list(v, "prev_kvs").iter().map(kv_from).collect(),
    }
}

pub fn txn_from(v: &Value) -> TxnResponse {
    TxnResponse {
        header: header(v),
        succeeded: boolean(v, "succeeded"),
        responses: list(v, "responses")
            .iter()
            .map(|r| {
                let response = if let Some(x) = r.get("response_range") {
                    Some(Response::ResponseRange(range_from(x)))
                } else if let Some(x) = r.get("response_put") {
                    Some(Response::ResponsePut(put_from(x)))
                } else if let Some(x) = r.get("response_delete_range") {
                    Some(Response::ResponseDeleteRange(delete_from(x)))
                } else {
                    r.get("response_txn")
                        .map(|x| Response::ResponseTxn(txn_from(x)))
                };
                ResponseOp { response }
            })
            .collect(),
    }
}

/// An error answer of the gateway: (gRPC code, message).
pub fn error_from(v: &Value) -> (i32, String) {
    let code = v.get("code").and_then(Value::as_i64).unwrap_or(-1) as i32;
    let message = v
        .get("error")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    (code, message)
}
