//! First start of a member: a member of a new cluster stores the initial configuration and
//! member records, a member joining an existing cluster the member list it was given — both as
//! the core lays them out (`qraft_core::server::initial_members`) — and both record the
//! member's identity (member and cluster ID) in the same transaction. So a crash during
//! bootstrap leaves either nothing or a complete bootstrap, a restart never bootstraps twice,
//! and a restart takes its identity from storage, never from flags.

use qraft_core::server::{InitialMembers, initial_members};
use qraft_proto::qraftpb::{Attributes, MemberRecord, RaftAttributes};

use crate::storage::{LmdbStorage, MemberIdentity, StorageError, WriteBatch};

/// One member of `--initial-cluster`, with its ID already computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    /// Only known for this member itself; others publish theirs once they run.
    pub client_urls: Vec<String>,
}

impl InitialMember {
    pub(crate) fn record(&self) -> MemberRecord {
        MemberRecord {
            id: self.id,
            raft_attrs: Some(RaftAttributes {
                peer_urls: self.peer_urls.clone(),
                is_learner: false,
            }),
            member_attrs: Some(Attributes {
                name: self.name.clone(),
                client_urls: self.client_urls.clone(),
            }),
            server_version: String::new(),
        }
    }
}

/// Whether the store has never been set up (no log, no snapshot, no identity).
pub fn is_new_store(storage: &LmdbStorage) -> Result<bool, StorageError> {
    let state = storage.raft_state();
    Ok(state.last_index == 0 && state.snapshot.index == 0 && storage.identity()?.is_none())
}

/// Writes the initial configuration of a new cluster and this member's identity when the
/// store is new; returns whether it did. A member that already has a log (restart) or joins
/// an existing cluster (`new_cluster == false`) is left alone.
pub fn bootstrap_if_new(
    storage: &LmdbStorage,
    identity: MemberIdentity,
    members: &[InitialMember],
    new_cluster: bool,
) -> Result<bool, StorageError> {
    if !new_cluster || !is_new_store(storage)? {
        return Ok(false);
    }
    let records: Vec<MemberRecord> = members.iter().map(InitialMember::record).collect();
    let initial = initial_members(&records);
    storage.write(|batch| {
        batch.bootstrap(initial.conf_state.clone())?;
        write_members(batch, &initial)?;
        batch.set_identity(identity)?;
        Ok::<(), StorageError>(())
    })?;
    Ok(true)
}

/// Writes the member records of `initial` into `batch`.
pub(super) fn write_members(
    batch: &mut WriteBatch<'_>,
    initial: &InitialMembers,
) -> Result<(), StorageError> {
    for (table, key, value) in &initial.records {
        batch.put(*table, key, value)?;
    }
    Ok(())
}

/// Sets up a member joining an existing cluster: its identity and the cluster's members as
/// an existing member reported them. The raft log stays empty (no configuration either): the
/// leader brings the member up to date with a snapshot, which replaces these records; until
/// then they tell the driver where its peers are.
pub fn bootstrap_join(
    storage: &LmdbStorage,
    identity: MemberIdentity,
    members: &[MemberRecord],
) -> Result<(), StorageError> {
    if !is_new_store(storage)? {
        return Err(StorageError::Config(
            "joining a cluster needs an empty data dir".into(),
        ));
    }
    storage.write(|batch| {
        write_members(batch, &initial_members(members))?;
        batch.set_identity(identity)?;
        Ok::<(), StorageError>(())
    })
}

/// Records the identity of a store set up before identities were recorded (its ID then came
/// from the flags, as it keeps doing).
pub fn record_identity(
    storage: &LmdbStorage,
    identity: MemberIdentity,
) -> Result<(), StorageError> {
    storage.write(|batch| batch.set_identity(identity))
}
