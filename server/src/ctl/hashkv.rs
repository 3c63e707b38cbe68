//! `endpoint hashkv`: each endpoint's hash of its key-space history, to check members agree.

use qraft_io::client::Client;
use qraft_proto::etcdserverpb::HashKvRequest;
use serde_json::{Value, json};

use super::maintenance::targets;
use super::output::{Format, Printer, header_json, table};
use super::{Cli, call_endpoint};

pub async fn hashkv(
    client: &Client,
    cli: &Cli,
    cluster: bool,
    revision: i64,
    p: &Printer,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    let mut failed = Vec::new();
    for ep in targets(client, cli, cluster).await? {
        let result = call_endpoint(cli, &ep, async |c| {
            c.hash_kv(HashKvRequest { revision }).await
        })
        .await;
        match result {
            Ok(h) => {
                json_rows.push(json!({"Endpoint": ep, "HashKV": {
                    "header": header_json(h.header.as_ref()), "hash": h.hash,
                    "compact_revision": h.compact_revision, "hash_revision": h.hash_revision}}));
                rows.push(vec![
                    ep.clone(),
                    h.hash.to_string(),
                    h.hash_revision.to_string(),
                    h.compact_revision.to_string(),
                ]);
            }
            Err(e) => failed.push(format!("failed to get the hash of endpoint {ep} ({e})")),
        }
    }
    match p.format {
        Format::Json => p.print_json(&Value::Array(json_rows)),
        Format::Table => print!(
            "{}",
            table(
                &["ENDPOINT", "HASH", "HASH REVISION", "COMPACT REVISION"],
                &rows
            )
        ),
        Format::Simple => {
            for r in &rows {
                println!("{}, {}", r[0], r[1]);
            }
        }
    }
    for f in &failed {
        eprintln!("{f}");
    }
    if !failed.is_empty() {
        anyhow::bail!("failed to get the hash of {} endpoint(s)", failed.len());
    }
    Ok(())
}
