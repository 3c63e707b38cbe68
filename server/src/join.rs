//! Who this member is: its member ID and its cluster's ID, decided once and kept in storage.
//!
//! * A restart (the store already has an identity) takes it from storage; flags never change
//!   it.
//! * A member of a new cluster (`--initial-cluster-state new`, empty data dir) computes both
//!   from `--initial-cluster` and `--initial-cluster-token`, as every initial member does, and
//!   bootstraps the initial configuration.
//! * A member joining an existing cluster (`--initial-cluster-state existing`, empty data dir)
//!   does what etcd does: it asks the members listed in `--initial-cluster` (other than
//!   itself) for the cluster's ID and member list, finds itself by its advertised peer URLs
//!   (the cluster gave it a random ID at `member add`), and bootstraps from that list. Raft
//!   then brings it up to date from the leader by snapshot and appends.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use qraft_io::data_dir::{
    InitialMember, bootstrap_if_new, bootstrap_join, is_new_store, record_identity,
};
use qraft_io::runtime;
use qraft_io::storage::{LmdbStorage, MemberIdentity};
use qraft_io::tls::{Identity, PeerTrust};
use qraft_io::transport::fetch_members;
use qraft_proto::qraftpb::MembersResponse;

use crate::config::{Config, Url};

/// How long one members request may take, and how long a joining member keeps going round
/// the listed peers before giving up (peers may be starting, or the machine loaded).
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
const ASK_BUDGET: Duration = Duration::from_secs(20);

/// The member's identity, setting up its store first if it is new (see the module doc).
pub async fn resolve_identity(
    config: &Config,
    storage: &LmdbStorage,
    initial: &[InitialMember],
    new_cluster: bool,
    peer_identity: &Identity,
    peer_trust: &PeerTrust,
) -> anyhow::Result<MemberIdentity> {
    if let Some(identity) = storage.identity()? {
        return Ok(identity);
    }
    let from_flags = MemberIdentity {
        member_id: config.member_id(),
        cluster_id: config.cluster_id(),
    };
    if !is_new_store(storage)? {
        // Set up before identities were recorded: its ID came from the flags, as it still does.
        record_identity(storage, from_flags)?;
        return Ok(from_flags);
    }
    if new_cluster {
        bootstrap_if_new(storage, from_flags, initial, true)?;
        tracing::info!(members = initial.len(), "bootstrapped a new cluster");
        return Ok(from_flags);
    }
    let (identity, members) = join(config, peer_identity, peer_trust).await?;
    bootstrap_join(storage, identity, &members.members)?;
    tracing::info!(
        member_id = format_args!("{:x}", identity.member_id),
        cluster_id = format_args!("{:x}", identity.cluster_id),
        members = members.members.len(),
        "joining an existing cluster"
    );
    Ok(identity)
}

async fn join(
    config: &Config,
    peer_identity: &Identity,
    peer_trust: &PeerTrust,
) -> anyhow::Result<(MemberIdentity, MembersResponse)> {
    let mine = normalized(
        config
            .initial_advertise_peer_urls
            .iter()
            .map(Url::to_string),
    );
    let peers: Vec<String> = config
        .initial_cluster
        .iter()
        .filter(|m| m.name != config.name)
        .flat_map(|m| m.peer_urls.iter().map(Url::to_string))
        .filter(|u| !mine.contains(u))
        .collect();
    if peers.is_empty() {
        bail!(
            "--initial-cluster-state existing: --initial-cluster names no other member to join \
             through"
        );
    }
    let members = ask_any(&peers, peer_identity, peer_trust).await?;
    let me = members
        .members
        .iter()
        .find(|m| {
            let theirs = m.raft_attrs.as_ref().map(|r| r.peer_urls.clone());
            normalized(theirs.unwrap_or_default()) == mine
        })
        .with_context(|| {
            format!(
                "member {:?} (peer URLs {}) has not been added to the cluster; run `qraftctl \
                 member add {} --peer-urls={}` first",
                config.name,
                crate::config::join_list(&config.initial_advertise_peer_urls),
                config.name,
                crate::config::join_list(&config.initial_advertise_peer_urls),
            )
        })?;
    let identity = MemberIdentity {
        member_id: me.id,
        cluster_id: members.cluster_id,
    };
    Ok((identity, members))
}

/// The first answer from any of `peers`, trying each a few rounds.
async fn ask_any(
    peers: &[String],
    identity: &Identity,
    peer_trust: &PeerTrust,
) -> anyhow::Result<MembersResponse> {
    let mut errors = Vec::new();
    let deadline = Instant::now() + ASK_BUDGET;
    for round in 0.. {
        if round > 0 {
            if Instant::now() >= deadline {
                break;
            }
            runtime::sleep(Duration::from_millis(500)).await;
        }
        errors.clear();
        for url in peers {
            match fetch_members(identity, peer_trust, url, ASK_TIMEOUT).await {
                Ok(members) if members.cluster_id != 0 => return Ok(members),
                Ok(_) => errors.push(format!("{url}: answered without a cluster ID")),
                Err(err) => errors.push(format!("{url}: {err}")),
            }
        }
    }
    bail!(
        "could not get the member list from any member of the existing cluster ({})",
        errors.join("; ")
    )
}

/// URLs as a set in their canonical spelling (`https://host:port`), so a trailing slash or
/// the order of a list does not matter.
fn normalized(urls: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    urls.into_iter()
        .map(|u| u.parse::<Url>().map_or(u, |url| url.to_string()))
        .collect()
}
