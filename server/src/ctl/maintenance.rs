//! `endpoint health|status`, `snapshot save`, `defrag` (online request or offline on a data dir),
//! `move-leader`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use qraft_io::client::Client;
use qraft_io::storage::{LmdbStorage, StorageConfig};
use qraft_proto::etcdserverpb::{
    DefragmentRequest, MemberListRequest, MoveLeaderRequest, RangeRequest, StatusRequest,
};
use serde_json::{Value, json};

use super::args::{EndpointCommand, MoveLeaderArgs, SnapshotCommand, parse_hex_id};
use super::output::{Format, Printer, header_json, human_bytes, table};
use super::{Cli, call_endpoint, connect_to, endpoints, normalize_endpoint};

/// The endpoints a command addresses: the flag's, or with `--cluster` every member's client URLs.
pub(super) async fn targets(
    client: &Client,
    cli: &Cli,
    cluster: bool,
) -> anyhow::Result<Vec<String>> {
    if !cluster {
        return Ok(endpoints(cli));
    }
    let list = client
        .member_list(MemberListRequest {
            linearizable: false,
        })
        .await?;
    let mut out: Vec<String> = list
        .members
        .iter()
        .flat_map(|m| m.client_ur_ls.iter().map(|u| normalize_endpoint(u)))
        .collect();
    out.dedup();
    Ok(out)
}

pub async fn endpoint(
    client: &Client,
    cli: &Cli,
    cmd: &EndpointCommand,
    p: &Printer,
) -> anyhow::Result<()> {
    match cmd {
        EndpointCommand::Health { cluster } => health(client, cli, *cluster, p).await,
        EndpointCommand::Status { cluster } => status(client, cli, *cluster, p).await,
        EndpointCommand::Hashkv { cluster, rev } => {
            super::hashkv::hashkv(client, cli, *cluster, *rev, p).await
        }
    }
}

async fn health(client: &Client, cli: &Cli, cluster: bool, p: &Printer) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut unhealthy = 0;
    for ep in targets(client, cli, cluster).await? {
        let start = Instant::now();
        // etcdctl's check: a linearizable read goes through the leader and a quorum; a
        // permission error would still prove the cluster answers.
        let outcome = match connect_to(cli, vec![ep.clone()]).await {
            Ok(c) => {
                let r = c
                    .range(RangeRequest {
                        key: b"health".to_vec().into(),
                        ..Default::default()
                    })
                    .await;
                c.close();
                match r {
                    Err(e)
                        if e.code() != Some(qraft_io::error_responses::Code::PermissionDenied) =>
                    {
                        Err(e.to_string())
                    }
                    _ => Ok(()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let took = start.elapsed();
        let healthy = outcome.is_ok();
        if !healthy {
            unhealthy += 1;
        }
        rows.push((ep, healthy, took, outcome.err().unwrap_or_default()));
    }
    match p.format {
        Format::Json => {
            let v: Vec<Value> = rows
                .iter()
                .map(|(ep, h, t, e)| json!({"endpoint": ep, "health": h, "took": format!("{t:?}"), "error": e}))
                .collect();
            p.print_json(&Value::Array(v));
        }
        Format::Table => {
            let r: Vec<Vec<String>> = rows
                .iter()
                .map(|(ep, h, t, e)| vec![ep.clone(), h.to_string(), format!("{t:?}"), e.clone()])
                .collect();
            print!("{}", table(&["ENDPOINT", "HEALTH", "TOOK", "ERROR"], &r));
        }
        Format::Simple => {
            for (ep, h, t, e) in &rows {
                if *h {
                    println!("{ep} is healthy: successfully committed proposal: took = {t:?}");
                } else {
                    eprintln!("{ep} is unhealthy: failed to commit proposal: {e}");
                }
            }
        }
    }
    if unhealthy > 0 {
        anyhow::bail!("unhealthy cluster");
    }
    Ok(())
}

async fn status(client: &Client, cli: &Cli, cluster: bool, p: &Printer) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    let mut failed = Vec::new();
    for ep in targets(client, cli, cluster).await? {
        let result = call_endpoint(cli, &ep, async |c| c.status(StatusRequest {}).await).await;
        let s = match result {
            Ok(s) => s,
            Err(e) => {
                failed.push(format!("failed to get the status of endpoint {ep} ({e})"));
                continue;
            }
        };
        let h = s.header.unwrap_or_default();
        let not_in_use = if s.db_size > 0 {
            100 - (s.db_size_in_use * 100 / s.db_size)
        } else {
            0
        };
        let downgrade = s.downgrade_info.clone().unwrap_or_default();
        json_rows.push(json!({"Endpoint": ep, "Status": {
            "header": header_json(s.header.as_ref()), "version": s.version, "dbSize": s.db_size,
            "leader": s.leader, "raftIndex": s.raft_index, "raftTerm": s.raft_term,
            "raftAppliedIndex": s.raft_applied_index, "dbSizeInUse": s.db_size_in_use,
            "isLearner": s.is_learner, "storageVersion": s.storage_version,
            "dbSizeQuota": s.db_size_quota, "errors": s.errors,
            "downgradeInfo": {"enabled": downgrade.enabled,
                "targetVersion": downgrade.target_version}}}));
        rows.push(vec![
            ep.trim_start_matches("https://").to_string(),
            format!("{:x}", h.member_id),
            s.version.clone(),
            s.storage_version.clone(),
            human_bytes(s.db_size),
            human_bytes(s.db_size_in_use),
            format!("{not_in_use}%"),
            human_bytes(s.db_size_quota),
            (s.leader == h.member_id).to_string(),
            s.is_learner.to_string(),
            s.raft_term.to_string(),
            s.raft_index.to_string(),
            s.raft_applied_index.to_string(),
            s.errors.join(", "),
            downgrade.target_version.clone(),
            downgrade.enabled.to_string(),
        ]);
    }
    match p.format {
        Format::Json => p.print_json(&Value::Array(json_rows)),
        Format::Table => print!(
            "{}",
            table(
                &[
                    "ENDPOINT",
                    "ID",
                    "VERSION",
                    "STORAGE VERSION",
                    "DB SIZE",
                    "IN USE",
                    "PERCENTAGE NOT IN USE",
                    "QUOTA",
                    "IS LEADER",
                    "IS LEARNER",
                    "RAFT TERM",
                    "RAFT INDEX",
                    "RAFT APPLIED INDEX",
                    "ERRORS",
                    "DOWNGRADE TARGET VERSION",
                    "DOWNGRADE ENABLED",
                ],
                &rows
            )
        ),
        Format::Simple => {
            for r in rows {
                println!("{}", r.join(", "));
            }
        }
    }
    for f in &failed {
        eprintln!("{f}");
    }
    if !failed.is_empty() {
        anyhow::bail!("failed to get the status of {} endpoint(s)", failed.len());
    }
    Ok(())
}

pub async fn snapshot(client: &Client, cmd: &SnapshotCommand, p: &Printer) -> anyhow::Result<()> {
    let SnapshotCommand::Save { filename } = cmd else {
        return super::snapshot::offline(cmd, p);
    };
    let partial = filename.with_extension("part");
    // 0600 as etcdctl's: the snapshot holds every value and the users' password hashes.
    let mut file = qraft_io::storage::create_private_file(&partial)
        .with_context(|| format!("could not open {}", partial.display()))?;
    let mut stream = client.snapshot().await?;
    let mut bytes = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.blob.len();
        file.write_all(&chunk.blob)?;
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, filename)?;
    if p.is_json() {
        p.print_json(&json!({"path": filename, "bytes": bytes}));
    } else {
        println!("Snapshot saved at {}", filename.display());
    }
    Ok(())
}

pub async fn defrag(_client: &Client, cli: &Cli, p: &Printer) -> anyhow::Result<()> {
    let mut failed = 0;
    for ep in endpoints(cli) {
        let result =
            call_endpoint(cli, &ep, async |c| c.defragment(DefragmentRequest {}).await).await;
        match result {
            Ok(_) if p.is_json() => p.print_json(&json!({"endpoint": ep, "ok": true})),
            Ok(_) => println!("Finished defragmenting etcd member[{ep}]"),
            Err(e) => {
                failed += 1;
                eprintln!("Failed to defragment etcd member[{ep}] ({e})");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("defrag failed on {failed} endpoint(s)");
    }
    Ok(())
}

/// `defrag --data-dir`: rewrites a stopped member's LMDB file without its free pages.
pub fn defrag_offline(data_dir: &Path, p: &Printer) -> anyhow::Result<()> {
    let config = StorageConfig::new(data_dir);
    let (before, after) = LmdbStorage::defrag_dir(&config)
        .with_context(|| format!("defragmenting {}", data_dir.display()))?;
    if p.is_json() {
        p.print_json(
            &json!({"data_dir": data_dir, "db_size_before": before.file_bytes,
            "db_size_after": after.file_bytes}),
        );
    } else {
        println!(
            "Finished defragmenting etcd data[{}] ({} -> {})",
            data_dir.display(),
            human_bytes(before.file_bytes as i64),
            human_bytes(after.file_bytes as i64)
        );
    }
    Ok(())
}

pub async fn move_leader(client: &Client, a: &MoveLeaderArgs, p: &Printer) -> anyhow::Result<()> {
    let target = parse_hex_id(&a.transferee_id)?;
    let status = client.status(StatusRequest {}).await?;
    let from = status.leader;
    let r = client
        .move_leader(MoveLeaderRequest { target_id: target })
        .await?;
    if p.is_json() {
        p.print_json(&json!({"header": header_json(r.header.as_ref())}));
    } else {
        println!("Leadership transferred from {from:x} to {target:x}");
    }
    Ok(())
}
