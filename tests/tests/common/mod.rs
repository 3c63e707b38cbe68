//! Script language shared by the MVCC and watch transcript runners: parsing KV requests from
//! script lines and printing responses and events compactly.
//!
//! Request syntax (arguments in any order after the key):
//! - `put KEY [VALUE] [lease=N] [prev_kv] [ignore_value] [ignore_lease]`
//! - `get KEY [end=END|prefix|from] [rev=N] [limit=N] [sort=none|asc|desc|N]
//!   [target=key|version|create|mod|value|N] [keys_only] [count_only] [min_mod=N] [max_mod=N]
//!   [min_create=N] [max_create=N]`
//! - `del KEY [end=END|prefix|from] [prev_kv]`
//! - a txn block: `txn` / `if TARGET(KEY) OP VALUE [end=END]` / `then OP...` / `else OP...` /
//!   `end`, where an op line is a put/get/del or a nested `txn` block.
//!
//! `\0` in a word stands for a zero byte; `""` is the empty string.

#![allow(dead_code, clippy::unwrap_used)]

use qraft_core::error::Error;
use qraft_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use qraft_proto::etcdserverpb::request_op::Request;
use qraft_proto::etcdserverpb::response_op::Response;
use qraft_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse,
};
use qraft_proto::mvccpb::{Event, KeyValue};

pub fn bytes(word: &str) -> Vec<u8> {
    if word == "\"\"" {
        return Vec::new();
    }
    word.replace("\\0", "\0").into_bytes()
}

pub fn show(b: &[u8]) -> String {
    if b.is_empty() {
        return "\"\"".into();
    }
    String::from_utf8_lossy(b).replace('\0', "\\0")
}

/// Increments the last byte that is not 0xff and truncates after it (etcd's prefix end).
pub fn prefix_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn int(v: &str) -> i64 {
    v.parse().unwrap_or_else(|_| panic!("not an integer: {v}"))
}

fn range_end(key: &[u8], word: &str) -> Option<Vec<u8>> {
    match word {
        "prefix" => Some(prefix_end(key)),
        "from" => Some(vec![0]),
        _ => word.strip_prefix("end=").map(bytes),
    }
}

pub fn parse_put(args: &[&str]) -> PutRequest {
    let mut req = PutRequest {
        key: bytes(args[0]).into(),
        ..Default::default()
    };
    for word in &args[1..] {
        match *word {
            "prev_kv" => req.prev_kv = true,
            "ignore_value" => req.ignore_value = true,
            "ignore_lease" => req.ignore_lease = true,
            w if w.starts_with("lease=") => req.lease = int(&w[6..]),
            w => req.value = bytes(w).into(),
        }
    }
    req
}

pub fn parse_range(args: &[&str]) -> RangeRequest {
    let key = bytes(args[0]);
    let mut req = RangeRequest {
        key: key.clone().into(),
        ..Default::default()
    };
    for word in &args[1..] {
        if let Some(end) = range_end(&key, word) {
            req.range_end = end.into();
            continue;
        }
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        match name {
            "rev" => req.revision = int(value),
            "limit" => req.limit = int(value),
            "keys_only" => req.keys_only = true,
            "count_only" => req.count_only = true,
            "serializable" => req.serializable = true,
            "min_mod" => req.min_mod_revision = int(value),
            "max_mod" => req.max_mod_revision = int(value),
            "min_create" => req.min_create_revision = int(value),
            "max_create" => req.max_create_revision = int(value),
            "sort" => {
                req.sort_order = match value {
                    "none" => 0,
                    "asc" => 1,
                    "desc" => 2,
                    n => int(n) as i32,
                }
            }
            "target" => {
                req.sort_target = match value {
                    "key" => 0,
                    "version" => 1,
                    "create" => 2,
                    "mod" => 3,
                    "value" => 4,
                    n => int(n) as i32,
                }
            }
            _ => panic!("unknown get argument {word}"),
        }
    }
    req
}

pub fn parse_delete(args: &[&str]) -> DeleteRangeRequest {
    let key = bytes(args[0]);
    let mut req = DeleteRangeRequest {
        key: key.clone().into(),
        ..Default::default()
    };
    for word in &args[1..] {
        if let Some(end) = range_end(&key, word) {
            req.range_end = end.into();
        } else if *word == "prev_kv" {
            req.prev_kv = true;
        } else {
            panic!("unknown del argument {word}");
        }
    }
    req
}

/// `TARGET(KEY) OP VALUE [end=..|prefix|from]`, e.g. `version(a) > 1`, `value(k) = x`.
/// `TARGET` may be `mod_as_version` etc. to set a union of another kind (as etcd allows).
pub fn parse_compare(words: &[&str]) -> Compare {
    let (target, key) = words[0]
        .trim_end_matches(')')
        .split_once('(')
        .unwrap_or_else(|| panic!("compare wants TARGET(KEY): {}", words[0]));
    let key = bytes(key);
    let result = match words[1] {
        "=" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        ">" => CompareResult::Greater,
        "<" => CompareResult::Less,
        other => panic!("unknown compare op {other}"),
    };
    let value = words.get(2).copied().unwrap_or("\"\"");
    let (target, union) = match target {
        "version" => (CompareTarget::Version, TargetUnion::Version(int(value))),
        "create" => (
            CompareTarget::Create,
            TargetUnion::CreateRevision(int(value)),
        ),
        "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(int(value))),
        "lease" => (CompareTarget::Lease, TargetUnion::Lease(int(value))),
        "value" => (
            CompareTarget::Value,
            TargetUnion::Value(bytes(value).into()),
        ),
        "version_given_mod" => (CompareTarget::Version, TargetUnion::ModRevision(int(value))),
        other => panic!("unknown compare target {other}"),
    };
    let mut compare = Compare {
        result: result as i32,
        target: target as i32,
        key: key.clone().into(),
        target_union: Some(union),
        range_end: Default::default(),
    };
    for word in words.iter().skip(3) {
        if let Some(end) = range_end(&key, word) {
            compare.range_end = end.into();
        }
    }
    compare
}

/// Parses one op line (`put`, `get`, `del`, or `txn` starting a nested block).
pub fn parse_op(words: &[&str], lines: &mut dyn Iterator<Item = String>) -> RequestOp {
    let request = match words[0] {
        "put" => Request::RequestPut(parse_put(&words[1..])),
        "get" => Request::RequestRange(parse_range(&words[1..])),
        "del" => Request::RequestDeleteRange(parse_delete(&words[1..])),
        "txn" => Request::RequestTxn(parse_txn_block(lines)),
        "empty" => return RequestOp { request: None },
        other => panic!("unknown op {other}"),
    };
    RequestOp {
        request: Some(request),
    }
}

/// Reads txn block lines up to the matching `end`.
pub fn parse_txn_block(lines: &mut dyn Iterator<Item = String>) -> TxnRequest {
    let mut txn = TxnRequest::default();
    while let Some(line) = lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            None => continue,
            Some("end") => return txn,
            Some("if") => txn.compare.push(parse_compare(&words[1..])),
            Some("then") => {
                let op = parse_op(&words[1..], lines);
                txn.success.push(op);
            }
            Some("else") => {
                let op = parse_op(&words[1..], lines);
                txn.failure.push(op);
            }
            Some(other) => panic!("unexpected line in txn block: {other}"),
        }
    }
    panic!("txn block without end")
}

pub fn fmt_kv(kv: &KeyValue) -> String {
    let mut s = format!(
        "{}={} c{} m{} v{}",
        show(&kv.key),
        show(&kv.value),
        kv.create_revision,
        kv.mod_revision,
        kv.version
    );
    if kv.lease != 0 {
        s.push_str(&format!(" lease={}", kv.lease));
    }
    s
}

pub fn fmt_event(ev: &Event) -> String {
    let kind = if ev.r#type == 0 { "PUT" } else { "DELETE" };
    let kv = ev.kv.as_ref().map(fmt_kv).unwrap_or_default();
    match &ev.prev_kv {
        Some(prev) => format!("{kind} {kv} (prev {})", fmt_kv(prev)),
        None => format!("{kind} {kv}"),
    }
}

pub fn fmt_error(e: &Error) -> String {
    format!("error {:?}: {e}", e.code())
}

fn rev_of(header: &Option<qraft_proto::etcdserverpb::ResponseHeader>) -> String {
    match header {
        Some(h) => format!("rev={}", h.revision),
        None => "no-header".into(),
    }
}

pub fn fmt_range(r: &qraft_proto::etcdserverpb::RangeResponse, indent: &str, out: &mut String) {
    out.push_str(&format!(
        "{indent}range {} count={} more={}\n",
        rev_of(&r.header),
        r.count,
        r.more
    ));
    for kv in &r.kvs {
        out.push_str(&format!("{indent}  {}\n", fmt_kv(kv)));
    }
}

pub fn fmt_put(r: &qraft_proto::etcdserverpb::PutResponse, indent: &str, out: &mut String) {
    out.push_str(&format!("{indent}put {}", rev_of(&r.header)));
    if let Some(prev) = &r.prev_kv {
        out.push_str(&format!(" prev: {}", fmt_kv(prev)));
    }
    out.push('\n');
}

pub fn fmt_delete(
    r: &qraft_proto::etcdserverpb::DeleteRangeResponse,
    indent: &str,
    out: &mut String,
) {
    out.push_str(&format!(
        "{indent}del {} deleted={}\n",
        rev_of(&r.header),
        r.deleted
    ));
    for kv in &r.prev_kvs {
        out.push_str(&format!("{indent}  prev: {}\n", fmt_kv(kv)));
    }
}

pub fn fmt_txn(r: &TxnResponse, indent: &str, out: &mut String) {
    out.push_str(&format!(
        "{indent}txn {} succeeded={}\n",
        rev_of(&r.header),
        r.succeeded
    ));
    let inner = format!("{indent}  ");
    for op in &r.responses {
        match &op.response {
            Some(Response::ResponseRange(r)) => fmt_range(r, &inner, out),
            Some(Response::ResponsePut(r)) => fmt_put(r, &inner, out),
            Some(Response::ResponseDeleteRange(r)) => fmt_delete(r, &inner, out),
            Some(Response::ResponseTxn(r)) => fmt_txn(r, &inner, out),
            None => out.push_str(&format!("{inner}<empty>\n")),
        }
    }
}

pub fn fmt_events(events: &[Event], out: &mut String) {
    for ev in events {
        out.push_str(&format!("  event {}\n", fmt_event(ev)));
    }
}
