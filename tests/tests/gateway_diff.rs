//! etcd's JSON gateway and HTTP endpoints over HTTP/1.1 on the client URL, differential: the
//! same requests go to the real etcd 3.4 and to a qraft member (on the port that also serves
//! gRPC), and the answers — HTTP status and JSON body — must agree once what legitimately
//! differs between two clusters is masked (cluster and member IDs, raft terms, tokens).
//! Covers KV (range, put, deleterange, txn, compaction), leases, a streamed watch, auth with
//! the Authorization header, error bodies, 404/405 answers and the probes.
//!
//! Needs the binaries of the same profile: `cargo build --release --workspace --bins`.

use std::time::Duration;

use serde_json::{Value, json};

use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::etcd::{EtcdProcess, require_etcd};
use qraft_tests::http::{LineStream, get, post_json_with};

/// Removes what differs between two clusters by nature.
fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in ["cluster_id", "member_id", "raft_term", "token"] {
                if let Some(v) = map.get_mut(key) {
                    *v = json!("<masked>");
                }
            }
            map.values_mut().for_each(mask);
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// Status and body (JSON masked, or the text as it is).
fn answer(addr: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let response = post_json_with(addr, path, body, headers)
        .unwrap_or_else(|e| panic!("{path} at {addr}: {e}"));
    let mut value = serde_json::from_str(&response.body).unwrap_or(Value::String(response.body));
    mask(&mut value);
    (response.status, value)
}

struct Pair {
    etcd: String,
    qraft: String,
}

impl Pair {
    /// Sends the request to both; panics unless the answers agree. Returns etcd's.
    fn same(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let etcd = answer(&self.etcd, path, body, headers);
        let qraft = answer(&self.qraft, path, body, headers);
        assert_eq!(
            qraft, etcd,
            "{path} {body}: qraft (left) differs from etcd (right)"
        );
        etcd
    }

    /// As [`Pair::same`] for the HTTP status and gRPC code only (error texts of JSON parsers
    /// differ between Go and Rust).
    fn same_code(&self, path: &str, body: &str) {
        let etcd = answer(&self.etcd, path, body, &[]);
        let qraft = answer(&self.qraft, path, body, &[]);
        assert_eq!(
            qraft.0, etcd.0,
            "{path} {body}: status; etcd {etcd:?}, qraft {qraft:?}"
        );
        assert_eq!(qraft.1["code"], etcd.1["code"], "{path} {body}: code");
    }
}

fn line(stream: &mut LineStream) -> Value {
    let text = stream
        .next_line(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("watch line: {e}"));
    let mut value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    mask(&mut value);
    value
}

#[test]
fn gateway_answers_as_etcd() {
    require_etcd("gateway_answers_as_etcd");
    let etcd = EtcdProcess::start();
    let cluster = GrpcCluster::start(1, GrpcCluster::etcd_timing());
    let pair = Pair {
        etcd: etcd.client_addr.clone(),
        qraft: cluster.grpc_addrs[0].clone(),
    };

    // KV.
    pair.same("/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#, &[]);
    pair.same(
        "/v3/kv/put",
        r#"{"key":"Zm9w","value":"","prev_kv":true}"#,
        &[],
    );
    pair.same(
        "/v3/kv/put",
        r#"{"key":"Zm9w","value":"eA==","prev_kv":true}"#,
        &[],
    );
    pair.same("/v3/kv/range", r#"{"key":"Zm9v"}"#, &[]);
    pair.same(
        "/v3/kv/range",
        r#"{"key":"Zm8=","range_end":"Zm9x","limit":"1","sort_order":"DESCEND","sort_target":"KEY"}"#,
        &[],
    );
    pair.same(
        "/v3/kv/range",
        r#"{"key":"AA==","range_end":"AA==","count_only":true}"#,
        &[],
    );
    pair.same("/v3/kv/range", r#"{"key":"bm9uZQ=="}"#, &[]);
    pair.same(
        "/v3/kv/txn",
        r#"{"compare":[{"key":"Zm9v","target":"VALUE","result":"EQUAL","value":"YmFy"}],
            "success":[{"request_put":{"key":"dA==","value":"MQ=="}},{"request_range":{"key":"Zm9v"}}],
            "failure":[{"request_delete_range":{"key":"Zm9v"}}]}"#,
        &[],
    );
    pair.same(
        "/v3/kv/deleterange",
        r#"{"key":"dA==","prev_kv":true}"#,
        &[],
    );
    pair.same("/v3/kv/compaction", r#"{"revision":"3"}"#, &[]);
    let (status, compacted) = pair.same("/v3/kv/range", r#"{"key":"Zm9v","revision":"2"}"#, &[]);
    assert_eq!(status, 400, "{compacted}");
    pair.same("/v3/kv/range", r#"{"key":"Zm9v","revision":"100"}"#, &[]);
    pair.same("/v3/kv/put", r#"{"value":"eA=="}"#, &[]);
    pair.same_code("/v3/kv/range", r#"{"key":"#);
    pair.same_code("/v3/kv/range", r#"{"no_such_field":1}"#);

    // Leases (an explicit ID, so both clusters use the same).
    pair.same("/v3/lease/grant", r#"{"TTL":"60","ID":"7"}"#, &[]);
    pair.same("/v3/lease/grant", r#"{"TTL":"60","ID":"7"}"#, &[]);
    pair.same(
        "/v3/kv/put",
        r#"{"key":"bA==","value":"MQ==","lease":"7"}"#,
        &[],
    );
    pair.same("/v3/lease/leases", "{}", &[]);
    pair.same("/v3/kv/lease/leases", "{}", &[]);
    let (_, ttl) = answer(
        &pair.qraft,
        "/v3/lease/timetolive",
        r#"{"ID":"7","keys":true}"#,
        &[],
    );
    assert_eq!(ttl["grantedTTL"], json!("60"), "{ttl}");
    assert_eq!(ttl["keys"], json!(["bA=="]), "{ttl}");
    pair.same("/v3/lease/revoke", r#"{"ID":"7"}"#, &[]);
    let (status, _) = pair.same("/v3/lease/revoke", r#"{"ID":"7"}"#, &[]);
    assert_eq!(status, 404);
    pair.same("/v3/lease/timetolive", r#"{"ID":"7"}"#, &[]);

    // A watch: created, then an event for a put made afterwards, streamed line by line.
    let mut watches: Vec<LineStream> = [&pair.etcd, &pair.qraft]
        .iter()
        .map(|addr| {
            LineStream::post(addr, "/v3/watch", r#"{"create_request":{"key":"dw=="}}"#)
                .unwrap_or_else(|e| panic!("watch at {addr}: {e}"))
        })
        .collect();
    let created: Vec<Value> = watches.iter_mut().map(line).collect();
    assert_eq!(
        created[1], created[0],
        "watch created: qraft (left), etcd (right)"
    );
    pair.same("/v3/kv/put", r#"{"key":"dw==","value":"MQ=="}"#, &[]);
    let events: Vec<Value> = watches.iter_mut().map(line).collect();
    assert_eq!(
        events[1], events[0],
        "watch event: qraft (left), etcd (right)"
    );
    assert_eq!(watches[1].status, watches[0].status);

    // Maintenance and cluster: shapes that do not depend on the implementation.
    for path in [
        "/v3/maintenance/status",
        "/v3/cluster/member/list",
        "/v3/maintenance/alarm",
    ] {
        let (etcd_status, _) = answer(&pair.etcd, path, "{}", &[]);
        let (qraft_status, body) = answer(&pair.qraft, path, "{}", &[]);
        assert_eq!((qraft_status, etcd_status), (200, 200), "{path}: {body}");
    }
    let (_, members) = answer(&pair.qraft, "/v3/cluster/member/list", "{}", &[]);
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(1),
        "{members}"
    );

    // Paths and methods the gateway does not serve.
    pair.same("/v3/kv/scan", "{}", &[]);
    for addr in [&pair.etcd, &pair.qraft] {
        let response = get(addr, "/v3/kv/range").expect("GET");
        assert_eq!(response.status, 405, "{addr}: {response:?}");
        assert_eq!(response.body, "Method Not Allowed\n");
    }

    // Auth: a token from authenticate in the Authorization header.
    pair.same(
        "/v3/auth/user/add",
        r#"{"name":"root","password":"pw"}"#,
        &[],
    );
    pair.same(
        "/v3/auth/user/grant",
        r#"{"user":"root","role":"root"}"#,
        &[],
    );
    pair.same("/v3/auth/enable", "{}", &[]);
    let (status, denied) = pair.same("/v3/kv/range", r#"{"key":"Zm9v"}"#, &[]);
    assert_ne!(status, 200, "{denied}");
    pair.same(
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"bad"}"#,
        &[],
    );
    let token = |addr: &str| {
        let response = post_json_with(
            addr,
            "/v3/auth/authenticate",
            r#"{"name":"root","password":"pw"}"#,
            &[],
        )
        .expect("authenticate");
        let value: Value = serde_json::from_str(&response.body).expect("JSON");
        value["token"].as_str().expect("token").to_owned()
    };
    let (etcd_token, qraft_token) = (token(&pair.etcd), token(&pair.qraft));
    let etcd_range = answer(
        &pair.etcd,
        "/v3/kv/range",
        r#"{"key":"Zm9v"}"#,
        &[("Authorization", &etcd_token)],
    );
    let qraft_range = answer(
        &pair.qraft,
        "/v3/kv/range",
        r#"{"key":"Zm9v"}"#,
        &[("Authorization", &qraft_token)],
    );
    assert_eq!(qraft_range, etcd_range, "range with a token");
    assert_eq!(etcd_range.0, 200);

    // The probes on the client URL.
    let health = get(&pair.qraft, "/health").expect("health");
    assert_eq!(health.status, 200, "{health:?}");
    let health: Value = serde_json::from_str(&health.body).expect("health JSON");
    assert_eq!(health["health"], "true");
    assert_eq!(get(&pair.qraft, "/version").expect("version").status, 200);
    let metrics = get(&pair.qraft, "/metrics").expect("metrics");
    assert!(
        metrics.body.contains("qraft_server_has_leader 1"),
        "{metrics:?}"
    );
    for addr in [&pair.etcd, &pair.qraft] {
        assert_eq!(get(addr, "/nope").expect("404").status, 404);
    }
}
