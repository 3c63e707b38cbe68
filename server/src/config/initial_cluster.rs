//! `--initial-cluster`: parsing, the checks etcd makes on it, and the member IDs every member
//! derives from it without talking to the others.

use super::{ClusterState, ConfigError, DEFAULT_CLUSTER_TOKEN, Flags, InitialMember, Url, invalid};

/// How the member bootstraps: with whom (`--initial-cluster`), into a new or an existing
/// cluster, and the token its IDs are derived with.
#[derive(Debug)]
pub(super) struct Bootstrap {
    pub initial_cluster: Vec<InitialMember>,
    pub initial_cluster_state: ClusterState,
    pub initial_cluster_token: String,
}

impl Bootstrap {
    /// `name` and `advertise` (its peer URLs) must appear in the initial cluster, which is
    /// this member alone by default.
    pub(super) fn resolve(s: &Flags, name: &str, advertise: &[Url]) -> Result<Self, ConfigError> {
        let initial_cluster = match s.initial_cluster.as_deref() {
            Some(v) => parse_initial_cluster(v)?,
            None => vec![InitialMember {
                name: name.to_string(),
                peer_urls: advertise.to_vec(),
            }],
        };
        check_initial_cluster(name, &initial_cluster, advertise)?;
        let initial_cluster_state = match s.initial_cluster_state.as_deref().unwrap_or("new") {
            "new" => ClusterState::New,
            "existing" => ClusterState::Existing,
            other => {
                return Err(invalid(format!(
                    "unexpected --initial-cluster-state {other:?}: must be \"new\" or \"existing\""
                )));
            }
        };
        Ok(Self {
            initial_cluster,
            initial_cluster_state,
            initial_cluster_token: (s.initial_cluster_token.clone())
                .unwrap_or_else(|| DEFAULT_CLUSTER_TOKEN.to_string()),
        })
    }
}

fn parse_initial_cluster(text: &str) -> Result<Vec<InitialMember>, ConfigError> {
    let mut members: Vec<InitialMember> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, url) = part.split_once('=').ok_or_else(|| {
            invalid(format!(
                "--initial-cluster: {part:?} is not of the form name=peer-url"
            ))
        })?;
        let url: Url = url.parse().map_err(|source| ConfigError::Url {
            flag: "--initial-cluster",
            source,
        })?;
        match members.iter_mut().find(|m| m.name == name) {
            Some(m) => m.peer_urls.push(url),
            None => members.push(InitialMember {
                name: name.to_string(),
                peer_urls: vec![url],
            }),
        }
    }
    if members.is_empty() {
        return Err(invalid("--initial-cluster must name at least one member"));
    }
    Ok(members)
}

fn check_initial_cluster(
    name: &str,
    cluster: &[InitialMember],
    advertise: &[Url],
) -> Result<(), ConfigError> {
    let mut seen: Vec<&Url> = Vec::new();
    for m in cluster {
        for u in &m.peer_urls {
            if seen.contains(&u) {
                return Err(invalid(format!(
                    "--initial-cluster: peer URL {u} is used by more than one member"
                )));
            }
            seen.push(u);
        }
    }
    let me = cluster.iter().find(|m| m.name == name).ok_or_else(|| {
        invalid(format!(
            "couldn't find local name {name:?} in the initial cluster configuration"
        ))
    })?;
    let mut a: Vec<String> = me.peer_urls.iter().map(Url::to_string).collect();
    let mut b: Vec<String> = advertise.iter().map(Url::to_string).collect();
    a.sort();
    b.sort();
    if a != b {
        return Err(invalid(format!(
            "--initial-cluster has {name}={} but missing from --initial-advertise-peer-urls={}",
            a.join(","),
            b.join(",")
        )));
    }
    Ok(())
}

/// Member ID from its peer URLs and the cluster token, so that every member computes the same
/// ID for everyone in `--initial-cluster` without talking. Derived as etcd derives it: the first
/// 8 bytes (big-endian) of SHA-1 over the sorted peer URLs concatenated, then the token — the
/// same flags give the same IDs as etcd (`etcd` alone: member 8e9e05c52164694d).
pub fn member_id(peer_urls: &[Url], token: &str) -> u64 {
    let mut urls: Vec<String> = peer_urls.iter().map(Url::to_string).collect();
    urls.sort();
    let mut input = urls.concat().into_bytes();
    input.extend_from_slice(token.as_bytes());
    nonzero(sha1_prefix(&input))
}

/// The cluster ID from every initial member's ID, in any order, as etcd derives it: SHA-1 over
/// the sorted IDs, each 8 bytes big-endian (`etcd` alone: cluster cdf818194e3a8c32).
pub(super) fn cluster_id_of(mut ids: Vec<u64>) -> u64 {
    ids.sort_unstable();
    let input: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    nonzero(sha1_prefix(&input))
}

/// The first 8 bytes of SHA-1 (etcd's ID hash; not used for anything secret), big-endian.
fn sha1_prefix(input: &[u8]) -> u64 {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, input);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// Raft reserves ID 0 for "none".
fn nonzero(id: u64) -> u64 {
    if id == 0 { 1 } else { id }
}
