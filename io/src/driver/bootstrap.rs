//! First start of a member of a new cluster: the initial configuration and member records are
//! written in one transaction, so a crash during bootstrap leaves either nothing or a complete
//! bootstrap (and a restart never bootstraps twice).

use prost::Message as _;
use qraft_proto::qraftpb::{Attributes, MemberRecord, RaftAttributes};
use qraft_proto::raftpb::ConfState;

use crate::storage::{LmdbStorage, StorageError, Table};

/// One member of `--initial-cluster`, with its ID already computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    /// Only known for this member itself; others publish theirs when they apply.
    pub client_urls: Vec<String>,
}

/// Writes the initial configuration when the log is empty; returns whether it did. A member
/// that already has a log (restart) or joins an existing cluster (`new_cluster == false`) is
/// left alone: it learns the configuration from the leader.
pub fn bootstrap_if_new(
    storage: &LmdbStorage,
    members: &[InitialMember],
    new_cluster: bool,
) -> Result<bool, StorageError> {
    let state = storage.raft_state();
    if !new_cluster || state.last_index != 0 || state.snapshot.index != 0 {
        return Ok(false);
    }
    let conf_state = ConfState {
        voters: members.iter().map(|m| m.id).collect(),
        ..Default::default()
    };
    storage.write(|batch| {
        batch.bootstrap(conf_state.clone())?;
        for m in members {
            let record = MemberRecord {
                id: m.id,
                raft_attrs: Some(RaftAttributes {
                    peer_urls: m.peer_urls.clone(),
                    is_learner: false,
                }),
                member_attrs: Some(Attributes {
                    name: m.name.clone(),
                    client_urls: m.client_urls.clone(),
                }),
                server_version: String::new(),
            };
            batch.put(Table::Members, &m.id.to_be_bytes(), &record.encode_to_vec())?;
        }
        Ok::<(), StorageError>(())
    })?;
    Ok(true)
}
