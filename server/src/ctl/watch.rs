//! `watch`: prints events as etcdctl does (`PUT`/`DELETE`, key, value; prev value with
//! `--prev-kv`), one JSON response per line with `-w json`.

use qraft_io::client::Client;
use qraft_proto::etcdserverpb::WatchCreateRequest;
use qraft_proto::mvccpb::event::EventType;
use serde_json::{Map, Value, json};

use super::args::WatchArgs;
use super::kv::range_end;
use super::output::{Printer, header_json, kv_json};

pub async fn run(client: &Client, a: &WatchArgs, p: &Printer) -> anyhow::Result<()> {
    let create = WatchCreateRequest {
        key: a.key.clone().into_bytes().into(),
        range_end: range_end(&a.key, a.range_end.as_deref(), a.prefix, false).into(),
        start_revision: a.rev,
        prev_kv: a.prev_kv,
        progress_notify: a.progress_notify,
        ..Default::default()
    };
    let mut watch = client.watch(create).await?;
    let mut seen = 0u64;
    while let Some(resp) = watch.next().await {
        let resp = resp?;
        if resp.canceled {
            let reason = if resp.compact_revision > 0 {
                format!(
                    "watch is canceled by the server: required revision has been compacted \
                     (compact revision {})",
                    resp.compact_revision
                )
            } else {
                format!("watch is canceled by the server: {}", resp.cancel_reason)
            };
            anyhow::bail!(reason);
        }
        if resp.created && resp.events.is_empty() {
            continue;
        }
        if p.is_json() {
            let mut m = Map::new();
            m.insert("Header".into(), header_json(resp.header.as_ref()));
            let events: Vec<Value> = resp
                .events
                .iter()
                .map(|e| {
                    let mut ev = Map::new();
                    if e.r#type != 0 {
                        ev.insert("type".into(), json!(e.r#type));
                    }
                    if let Some(kv) = &e.kv {
                        ev.insert("kv".into(), kv_json(kv));
                    }
                    if let Some(kv) = &e.prev_kv {
                        ev.insert("prev_kv".into(), kv_json(kv));
                    }
                    Value::Object(ev)
                })
                .collect();
            m.insert("Events".into(), Value::Array(events));
            m.insert("CompactRevision".into(), json!(resp.compact_revision));
            m.insert("Canceled".into(), json!(resp.canceled));
            m.insert("Created".into(), json!(resp.created));
            p.print_json(&Value::Object(m));
        } else {
            for e in &resp.events {
                let kind = if e.r#type == EventType::Delete as i32 {
                    "DELETE"
                } else {
                    "PUT"
                };
                println!("{kind}");
                if let Some(prev) = &e.prev_kv {
                    println!("{}", p.bytes(&prev.key));
                    println!("{}", p.bytes(&prev.value));
                }
                if let Some(kv) = &e.kv {
                    println!("{}", p.bytes(&kv.key));
                    println!("{}", p.bytes(&kv.value));
                }
            }
        }
        seen += resp.events.len() as u64;
        if a.max_events > 0 && seen >= a.max_events {
            break;
        }
    }
    watch.close();
    Ok(())
}
