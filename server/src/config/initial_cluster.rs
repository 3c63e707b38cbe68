//! `--initial-cluster`: parsing, the checks etcd makes on it, and the member IDs every member
//! derives from it without talking to the others.

use super::{ConfigError, InitialMember, Url, invalid};

pub(super) fn parse_initial_cluster(text: &str) -> Result<Vec<InitialMember>, ConfigError> {
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

pub(super) fn check_initial_cluster(
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
/// ID for everyone in `--initial-cluster` without talking (etcd hashes the same inputs).
pub fn member_id(peer_urls: &[Url], token: &str) -> u64 {
    let mut urls: Vec<String> = peer_urls.iter().map(Url::to_string).collect();
    urls.sort();
    let mut h = Fnv64::new();
    for u in &urls {
        h.write(u.as_bytes());
    }
    h.write(token.as_bytes());
    nonzero(h.finish())
}

/// The cluster ID from every initial member's ID, in any order.
pub(super) fn cluster_id_of(mut ids: Vec<u64>) -> u64 {
    ids.sort_unstable();
    let mut h = Fnv64::new();
    for id in ids {
        h.write(&id.to_be_bytes());
    }
    nonzero(h.finish())
}

/// Raft reserves ID 0 for "none".
fn nonzero(id: u64) -> u64 {
    if id == 0 { 1 } else { id }
}

/// FNV-1a: tiny, stable across versions and platforms (IDs end up on disk).
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Separator so that ["ab","c"] and ["a","bc"] differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
