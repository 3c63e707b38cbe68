//! put, get, del, compaction.

use std::io::Read;

use anyhow::Context;
use qraft_io::client::Client;
use qraft_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use qraft_proto::etcdserverpb::{
    CompactionRequest, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse,
};
use serde_json::{Map, Value, json};

use super::args::{CompactionArgs, DelArgs, GetArgs, PutArgs, parse_hex_id};
use super::output::{Printer, header_json, kv_json, put_nonzero_i};

/// The request key for `key`: etcd's client turns an empty key with `--prefix` or
/// `--from-key` into `\0` (the first key), so `get "" --prefix` means every key instead of
/// the server's "key is not provided".
pub fn range_key(key: &str, prefix: bool, from_key: bool) -> Vec<u8> {
    if key.is_empty() && (prefix || from_key) {
        return vec![0];
    }
    key.as_bytes().to_vec()
}

/// etcd's key-range conventions: `--prefix` ends at the prefix + 1, `--from-key` at `\0`.
pub fn range_end(key: &str, end: Option<&str>, prefix: bool, from_key: bool) -> Vec<u8> {
    if let Some(end) = end {
        return end.as_bytes().to_vec();
    }
    if from_key {
        return vec![0];
    }
    if prefix {
        return prefix_end(key.as_bytes());
    }
    Vec::new()
}

pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): every key from the prefix on.
    vec![0]
}

pub async fn put(client: &Client, a: &PutArgs, p: &Printer) -> anyhow::Result<()> {
    let value = match &a.value {
        Some(v) => v.clone().into_bytes(),
        None if a.ignore_value => Vec::new(),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the value from standard input")?;
            buf
        }
    };
    let resp = client
        .put(PutRequest {
            key: a.key.clone().into_bytes().into(),
            value: value.into(),
            lease: parse_hex_id(&a.lease)? as i64,
            prev_kv: a.prev_kv,
            ignore_value: a.ignore_value,
            ignore_lease: a.ignore_lease,
        })
        .await?;
    print_put(&resp, p);
    Ok(())
}

pub fn print_put(resp: &PutResponse, p: &Printer) {
    if p.is_json() {
        let mut m = Map::new();
        m.insert("header".into(), header_json(resp.header.as_ref()));
        if let Some(kv) = &resp.prev_kv {
            m.insert("prev_kv".into(), kv_json(kv));
        }
        return p.print_json(&Value::Object(m));
    }
    println!("OK");
    if let Some(kv) = &resp.prev_kv {
        println!("{}", p.bytes(&kv.key));
        println!("{}", p.bytes(&kv.value));
    }
}

pub fn range_request(a: &GetArgs) -> anyhow::Result<RangeRequest> {
    let sort_order = match a.order.to_ascii_uppercase().as_str() {
        "" => SortOrder::None,
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        other => anyhow::bail!("bad sort order {other:?}"),
    };
    let sort_target = match a.sort_by.to_ascii_uppercase().as_str() {
        "" | "KEY" => SortTarget::Key,
        "CREATE" => SortTarget::Create,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        other => anyhow::bail!("bad sort target {other:?}"),
    };
    // etcdctl: a sort target without an order sorts ascending.
    let sort_order = if sort_order == SortOrder::None && !a.sort_by.is_empty() {
        SortOrder::Ascend
    } else {
        sort_order
    };
    let serializable = match a.consistency.as_str() {
        "l" => false,
        "s" => true,
        other => anyhow::bail!("unknown consistency flag {other:?}"),
    };
    if a.prefix && a.from_key {
        anyhow::bail!("`--prefix` and `--from-key` cannot be set at the same time, choose one");
    }
    Ok(RangeRequest {
        key: range_key(&a.key, a.prefix, a.from_key).into(),
        range_end: range_end(&a.key, a.range_end.as_deref(), a.prefix, a.from_key).into(),
        limit: a.limit,
        revision: a.rev,
        sort_order: sort_order as i32,
        sort_target: sort_target as i32,
        serializable,
        keys_only: a.keys_only,
        count_only: a.count_only,
        ..Default::default()
    })
}

pub async fn get(client: &Client, a: &GetArgs, p: &Printer) -> anyhow::Result<()> {
    let resp = client.range(range_request(a)?).await?;
    print_get(&resp, p, a.print_value_only);
    Ok(())
}

pub fn print_get(resp: &RangeResponse, p: &Printer, value_only: bool) {
    if p.is_json() {
        let mut m = Map::new();
        m.insert("header".into(), header_json(resp.header.as_ref()));
        if !resp.kvs.is_empty() {
            m.insert(
                "kvs".into(),
                Value::Array(resp.kvs.iter().map(kv_json).collect()),
            );
        }
        if resp.more {
            m.insert("more".into(), json!(true));
        }
        put_nonzero_i(&mut m, "count", resp.count);
        return p.print_json(&Value::Object(m));
    }
    if resp.kvs.is_empty() && resp.count > 0 {
        // --count-only prints just the count.
        println!("{}", resp.count);
        return;
    }
    for kv in &resp.kvs {
        if !value_only {
            println!("{}", p.bytes(&kv.key));
        }
        if !kv.value.is_empty() || value_only {
            println!("{}", p.bytes(&kv.value));
        }
    }
}

pub async fn del(client: &Client, a: &DelArgs, p: &Printer) -> anyhow::Result<()> {
    if a.prefix && a.from_key {
        anyhow::bail!("`--prefix` and `--from-key` cannot be set at the same time, choose one");
    }
    let resp = client
        .delete_range(DeleteRangeRequest {
            key: range_key(&a.key, a.prefix, a.from_key).into(),
            range_end: range_end(&a.key, a.range_end.as_deref(), a.prefix, a.from_key).into(),
            prev_kv: a.prev_kv,
        })
        .await?;
    print_del(&resp, p);
    Ok(())
}

pub fn print_del(resp: &DeleteRangeResponse, p: &Printer) {
    if p.is_json() {
        let mut m = Map::new();
        m.insert("header".into(), header_json(resp.header.as_ref()));
        put_nonzero_i(&mut m, "deleted", resp.deleted);
        if !resp.prev_kvs.is_empty() {
            m.insert(
                "prev_kvs".into(),
                Value::Array(resp.prev_kvs.iter().map(kv_json).collect()),
            );
        }
        return p.print_json(&Value::Object(m));
    }
    println!("{}", resp.deleted);
    for kv in &resp.prev_kvs {
        println!("{}", p.bytes(&kv.key));
        println!("{}", p.bytes(&kv.value));
    }
}

pub async fn compaction(client: &Client, a: &CompactionArgs, p: &Printer) -> anyhow::Result<()> {
    let resp = client
        .compact(CompactionRequest {
            revision: a.revision,
            physical: a.physical,
        })
        .await?;
    if p.is_json() {
        p.print_json(&json!({ "header": header_json(resp.header.as_ref()) }));
    } else {
        println!("compacted revision {}", a.revision);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"a"), b"b");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), vec![0]);
        assert_eq!(range_end("k", None, false, true), vec![0]);
        assert_eq!(range_end("k", Some("z"), true, false), b"z");
    }

    #[test]
    fn an_empty_key_with_prefix_or_from_key_starts_at_the_first_key() {
        assert_eq!(range_key("", true, false), vec![0]);
        assert_eq!(range_key("", false, true), vec![0]);
        assert_eq!(range_end("", None, true, false), vec![0]);
        assert_eq!(range_key("", false, false), b"");
        assert_eq!(range_key("k", true, false), b"k");
    }
}
