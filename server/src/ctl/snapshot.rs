//! The offline `snapshot` commands: `status` checks a snapshot file and prints etcdctl's
//! summary of it; `restore` builds one member's data directory of a new cluster from it.
//! Neither contacts an endpoint.

use std::path::Path;

use qraft_io::data_dir::{InitialMember, RestorePlan, restore_data_dir};
use qraft_io::storage::{DigestPolicy, MemberIdentity, SnapshotFileSummary, scan_snapshot_file};
use serde_json::json;

use super::args::{RestoreArgs, SnapshotCommand};
use super::bad_args;
use super::output::{Format, Printer, human_bytes, right_aligned_table};
use crate::config::{Config, Flags, Url, member_id};

pub fn offline(cmd: &SnapshotCommand, p: &Printer) -> anyhow::Result<()> {
    match cmd {
        SnapshotCommand::Status { filename } => status(filename, p),
        SnapshotCommand::Restore(args) => restore(args, p),
        SnapshotCommand::Save { .. } => anyhow::bail!("internal error: save needs an endpoint"),
    }
}

/// What etcdctl's `snapshot status` prints: for an etcd file exactly its figures; for a qraft
/// file the stream's CRC-32 as the hash and its records as the keys (see
/// `SnapshotFileSummary`).
fn file_status(path: &Path) -> anyhow::Result<SnapshotFileSummary> {
    scan_snapshot_file(path, DigestPolicy::IfPresent, |_| Ok(()))
        .map_err(|err| anyhow::anyhow!("snapshot file {}: {err}", path.display()))
}

fn status(path: &Path, p: &Printer) -> anyhow::Result<()> {
    let s = file_status(path)?;
    let size = human_bytes(i64::try_from(s.total_size).unwrap_or(i64::MAX));
    match p.format {
        Format::Json => p.print_json(&json!({
                "hash": s.hash, "revision": s.revision,
            "totalKey": s.total_keys, "totalSize": s.total_size,
        })),
        Format::Table => print!(
            "{}",
            right_aligned_table(
                &["hash", "revision", "total keys", "total size"],
                &[vec![
                    format!("{:x}", s.hash),
                    s.revision.to_string(),
                    s.total_keys.to_string(),
                    size,
                ]],
            )
        ),
        Format::Simple => println!("{:x}, {}, {}, {}", s.hash, s.revision, s.total_keys, size),
    }
    Ok(())
}

fn restore(args: &RestoreArgs, p: &Printer) -> anyhow::Result<()> {
    // The server's own resolver checks the flags and defaults them as `qraft` would, so the
    // IDs are the ones a member started with the same flags computes at bootstrap.
    let flags = Flags {
        name: Some(args.name.clone()),
        data_dir: args.data_dir.clone(),
        initial_cluster: args.initial_cluster.clone(),
        initial_cluster_token: Some(args.initial_cluster_token.clone()),
        initial_advertise_peer_urls: args.initial_advertise_peer_urls.clone(),
        ..Flags::default()
    };
    let config = Config::resolve(flags).map_err(|err| bad_args(err.to_string()))?;
    let members: Vec<InitialMember> = config
        .initial_cluster
        .iter()
        .map(|m| InitialMember {
            id: member_id(&m.peer_urls, &config.initial_cluster_token),
            name: m.name.clone(),
            peer_urls: m.peer_urls.iter().map(Url::to_string).collect(),
            client_urls: Vec::new(),
        })
        .collect();
    let identity = MemberIdentity {
        member_id: config.member_id(),
        cluster_id: config.cluster_id(),
    };
    let plan = RestorePlan {
        snapshot: args.filename.clone(),
        data_dir: config.data_dir.clone(),
        identity,
        members,
        skip_hash_check: args.skip_hash_check,
    };
    // The error's text already carries its cause: print it once.
    let summary = restore_data_dir(&plan).map_err(|err| anyhow::anyhow!("{err}"))?;
    if p.is_json() {
        p.print_json(&json!({
            "data_dir": plan.data_dir, "member_id": identity.member_id,
            "cluster_id": identity.cluster_id, "totalKey": summary.total_keys,
        }));
    } else {
        println!(
            "Restored snapshot {} into {} (member {:x} of new cluster {:x})",
            args.filename.display(),
            plan.data_dir.display(),
            identity.member_id,
            identity.cluster_id
        );
    }
    Ok(())
}
