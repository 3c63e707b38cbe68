//! `txn`: etcdctl's transaction syntax, interactively or from standard input —
//! three blank-line-separated sections: compares (`mod("k") > "0"`, `value("k") = "v"`), then
//! success requests, then failure requests (`put k v`, `get k [end] [--prefix]`, `del k`).

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use qraft_io::client::Client;
use qraft_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use qraft_proto::etcdserverpb::request_op::Request as Op;
use qraft_proto::etcdserverpb::response_op::Response as OpResp;
use qraft_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, TxnResponse,
};
use serde_json::{Map, Value, json};

use super::args::TxnArgs;
use super::kv::{prefix_end, print_del, print_get, print_put};
use super::output::{Printer, header_json};

pub async fn run(client: &Client, a: &TxnArgs, p: &Printer) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut section = |prompt: &str| -> anyhow::Result<Vec<String>> {
        if a.interactive {
            eprintln!("{prompt}");
            let _ = std::io::stderr().flush();
        }
        let mut out = Vec::new();
        for line in lines.by_ref() {
            let line = line.context("reading the transaction")?;
            if line.trim().is_empty() {
                break;
            }
            out.push(line);
        }
        Ok(out)
    };
    let compares = section("compares:")?;
    let success = section("success requests (get, put, del):")?;
    let failure = section("failure requests (get, put, del):")?;
    let req = TxnRequest {
        compare: compares
            .iter()
            .map(|l| parse_compare(l))
            .collect::<anyhow::Result<_>>()?,
        success: success
            .iter()
            .map(|l| parse_op(l))
            .collect::<anyhow::Result<_>>()?,
        failure: failure
            .iter()
            .map(|l| parse_op(l))
            .collect::<anyhow::Result<_>>()?,
    };
    let resp = client.txn(req).await?;
    print_txn(&resp, p);
    Ok(())
}

pub fn print_txn(resp: &TxnResponse, p: &Printer) {
    if p.is_json() {
        let mut m = Map::new();
        m.insert("header".into(), header_json(resp.header.as_ref()));
        if resp.succeeded {
            m.insert("succeeded".into(), json!(true));
        }
        m.insert("responses".into(), json!(resp.responses.len()));
        return p.print_json(&Value::Object(m));
    }
    println!("{}", if resp.succeeded { "SUCCESS" } else { "FAILURE" });
    for r in &resp.responses {
        println!();
        match &r.response {
            Some(OpResp::ResponsePut(x)) => print_put(x, p),
            Some(OpResp::ResponseRange(x)) => print_get(x, p, false),
            Some(OpResp::ResponseDeleteRange(x)) => print_del(x, p),
            Some(OpResp::ResponseTxn(x)) => print_txn(x, p),
            None => {}
        }
    }
}

/// Splits a line into words; `"..."` is one word with `\"` and `\\` escapes.
fn words(line: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(e) => word.push(e),
                        None => bail!("unterminated escape in {line:?}"),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => word.push(c),
                }
            }
            if !closed {
                bail!("missing closing quote in {line:?}");
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        out.push(word);
    }
    Ok(out)
}

pub fn parse_compare(line: &str) -> anyhow::Result<Compare> {
    let bad = || anyhow::anyhow!("malformed comparison: {line}");
    let open = line.find('(').ok_or_else(bad)?;
    let close = line.rfind(')').ok_or_else(bad)?;
    let target = line[..open].trim();
    let key = words(&line[open + 1..close])?;
    let [key] = key.as_slice() else {
        return Err(bad());
    };
    let rest = words(&line[close + 1..])?;
    let [op, value] = rest.as_slice() else {
        return Err(bad());
    };
    let result = match op.as_str() {
        "=" | "==" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        "<" => CompareResult::Less,
        ">" => CompareResult::Greater,
        _ => bail!("malformed comparison: {line} (unknown operator {op:?})"),
    };
    let int = || -> anyhow::Result<i64> { value.parse().map_err(|_| bad()) };
    let (target, union) = match target {
        "ver" | "version" => (CompareTarget::Version, TargetUnion::Version(int()?)),
        "c" | "create" => (CompareTarget::Create, TargetUnion::CreateRevision(int()?)),
        "m" | "mod" => (CompareTarget::Mod, TargetUnion::ModRevision(int()?)),
        "val" | "value" => (
            CompareTarget::Value,
            TargetUnion::Value(value.clone().into_bytes().into()),
        ),
        "lease" => (
            CompareTarget::Lease,
            TargetUnion::Lease(i64::from_str_radix(value, 16).map_err(|_| bad())?),
        ),
        _ => bail!("malformed comparison: {line} (unknown target {target:?})"),
    };
    Ok(Compare {
        result: result as i32,
        target: target as i32,
        key: key.clone().into_bytes().into(),
        target_union: Some(union),
        range_end: Default::default(),
    })
}

pub fn parse_op(line: &str) -> anyhow::Result<RequestOp> {
    let w = words(line)?;
    let prefix = w.iter().any(|x| x == "--prefix");
    let args: Vec<&String> = w.iter().filter(|x| !x.starts_with("--")).collect();
    let op = match args.as_slice() {
        [cmd, key, value] if *cmd == "put" => Op::RequestPut(PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            ..Default::default()
        }),
        [cmd, key, rest @ ..] if *cmd == "get" && rest.len() <= 1 => {
            Op::RequestRange(RangeRequest {
                key: key.as_bytes().to_vec().into(),
                range_end: end(key, rest.first().map(|s| s.as_str()), prefix).into(),
                ..Default::default()
            })
        }
        [cmd, key, rest @ ..] if (*cmd == "del" || *cmd == "delete") && rest.len() <= 1 => {
            Op::RequestDeleteRange(DeleteRangeRequest {
                key: key.as_bytes().to_vec().into(),
                range_end: end(key, rest.first().map(|s| s.as_str()), prefix).into(),
                prev_kv: false,
            })
        }
        _ => bail!("invalid txn request: {line} (expected put/get/del)"),
    };
    Ok(RequestOp { request: Some(op) })
}

fn end(key: &str, explicit: Option<&str>, prefix: bool) -> Vec<u8> {
    match explicit {
        Some(e) => e.as_bytes().to_vec(),
        None if prefix => prefix_end(key.as_bytes()),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_in_etcdctls_syntax() {
        let c = parse_compare(r#"mod("key1") > "0""#).unwrap();
        assert_eq!(c.target, CompareTarget::Mod as i32);
        assert_eq!(c.result, CompareResult::Greater as i32);
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(0)));
        let c = parse_compare(r#"value("key1") = "a b""#).unwrap();
        assert_eq!(
            c.target_union,
            Some(TargetUnion::Value(b"a b".to_vec().into()))
        );
        assert!(parse_compare(r#"size("k") = "1""#).is_err());
        assert!(parse_compare(r#"mod("k") > "x""#).is_err());
        assert!(parse_compare("garbage").is_err());
    }

    #[test]
    fn requests_in_etcdctls_syntax() {
        let op = parse_op(r#"put key1 "overwrote key1""#).unwrap();
        let Some(Op::RequestPut(p)) = op.request else {
            panic!("expected a put")
        };
        assert_eq!(p.value.as_ref(), b"overwrote key1");
        let op = parse_op("get a --prefix").unwrap();
        let Some(Op::RequestRange(r)) = op.request else {
            panic!("expected a get")
        };
        assert_eq!(r.range_end.as_ref(), b"b");
        assert!(parse_op("frobnicate x").is_err());
        assert!(parse_op(r#"put "unterminated"#).is_err());
    }
}
