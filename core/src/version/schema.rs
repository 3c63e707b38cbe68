//! The storage schema versions and the migrations between them, over the [`Backend`] tables.
//!
//! | schema | meta `storageVersion` | `lease_checkpoint` table |
//! |--------|-----------------------|-----------------------------------------------|
//! | 0.1    | `"0.1"`               | must be empty (0.1 does not know it)          |
//! | 0.2    | `"0.2"`               | lease id (i64 BE) → remaining TTL s (i64 BE)  |
//!
//! Both schemas keep the replicated version state (`qraftpb.VersionState`) in
//! [`Table::Cluster`] under [`VERSION_STATE`]. Migrating 0.1 → 0.2 only rewrites the version
//! (the table starts empty). Migrating 0.2 → 0.1 deletes every checkpoint, so leases fall back to
//! their granted TTL as in 0.1, and is refused while the raft log still holds an entry that a
//! 0.1 member cannot apply ([`super::minimal_version`]): the server compacts the log (snapshot)
//! and tries again.
//!
//! Every function works inside the caller's transaction so a migration commits atomically with
//! the applied index, or not at all.

use super::catalog::{V0_1, V0_2, minimal_version};
use super::cluster::ClusterVersions;
use super::errors::VersionError;
use super::semver::Version;
use crate::backend::{BackendError, ReadTxn, Table, WriteTxn, meta};
use qraft_proto::Message;
use qraft_proto::qraftpb::{InternalRequest, VersionState};
use std::ops::ControlFlow;

/// Key of the persisted [`ClusterVersions`] in [`Table::Cluster`].
pub const VERSION_STATE: &[u8] = b"versionState";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Version(#[from] VersionError),
}

/// The stored schema version; `None` for a backend that was never initialised.
pub fn read_storage_version<T: ReadTxn + ?Sized>(txn: &T) -> Result<Option<Version>, SchemaError> {
    let Some(raw) = txn.get(Table::Meta, meta::STORAGE_VERSION)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(raw);
    let version = Version::parse(&text).map_err(|source| VersionError::InvalidStored {
        what: "storage version",
        source,
    })?;
    Ok(Some(version.minor_only()))
}

/// Writes the schema version, as `"major.minor"`.
pub fn write_storage_version<T: WriteTxn + ?Sized>(
    txn: &mut T,
    version: Version,
) -> Result<(), SchemaError> {
    txn.put(
        Table::Meta,
        meta::STORAGE_VERSION,
        version.minor_string().as_bytes(),
    )?;
    Ok(())
}

/// The persisted replicated version state (default when there is none yet).
pub fn read_version_state<T: ReadTxn + ?Sized>(txn: &T) -> Result<ClusterVersions, SchemaError> {
    let Some(raw) = txn.get(Table::Cluster, VERSION_STATE)? else {
        return Ok(ClusterVersions::default());
    };
    let state =
        VersionState::decode(raw).map_err(|e| VersionError::UndecodableState(e.to_string()))?;
    Ok(ClusterVersions::from_proto(&state)?)
}

/// Persists the replicated state; call in the transaction that applied the version entry.
pub fn write_version_state<T: WriteTxn + ?Sized>(
    txn: &mut T,
    state: &ClusterVersions,
) -> Result<(), SchemaError> {
    txn.put(
        Table::Cluster,
        VERSION_STATE,
        &state.to_proto().encode_to_vec(),
    )?;
    Ok(())
}

/// Stores a lease's checkpointed remaining TTL (schema 0.2; the caller applies a
/// `LeaseCheckpointRequest`, which only exists at cluster version ≥ 0.2).
pub fn put_lease_checkpoint<T: WriteTxn + ?Sized>(
    txn: &mut T,
    lease: i64,
    remaining_ttl: i64,
) -> Result<(), SchemaError> {
    txn.put(
        Table::LeaseCheckpoint,
        &lease.to_be_bytes(),
        &remaining_ttl.to_be_bytes(),
    )?;
    Ok(())
}

/// The checkpointed remaining TTL of a lease, if any.
pub fn get_lease_checkpoint<T: ReadTxn + ?Sized>(
    txn: &T,
    lease: i64,
) -> Result<Option<i64>, SchemaError> {
    let Some(raw) = txn.get(Table::LeaseCheckpoint, &lease.to_be_bytes())? else {
        return Ok(None);
    };
    let raw = <[u8; 8]>::try_from(raw).map_err(|_| BackendError::Corrupt {
        table: Table::LeaseCheckpoint,
        reason: format!("checkpoint of lease {lease} is not 8 bytes"),
    })?;
    Ok(Some(i64::from_be_bytes(raw)))
}

/// Removes a lease's checkpoint (when the lease is revoked).
pub fn delete_lease_checkpoint<T: WriteTxn + ?Sized>(
    txn: &mut T,
    lease: i64,
) -> Result<(), SchemaError> {
    txn.delete(Table::LeaseCheckpoint, &lease.to_be_bytes())?;
    Ok(())
}

/// Migrates the schema from `from` to `to` (adjacent minors of the known versions) inside
/// `txn`. `log` yields the raft entries this member still holds after its last snapshot
/// (index, request); a downgrade is refused while one of them needs a newer version.
pub fn migrate<'a, T: WriteTxn + ?Sized>(
    txn: &mut T,
    from: Version,
    to: Version,
    log: impl IntoIterator<Item = (u64, &'a InternalRequest)>,
) -> Result<(), SchemaError> {
    let (from, to) = (from.minor_only(), to.minor_only());
    if from == to {
        return Ok(());
    }
    if to < from {
        for (index, request) in log {
            let needs = minimal_version(request);
            if needs > to {
                return Err(VersionError::LogHasNewerEntries {
                    target: to,
                    needs,
                    index,
                }
                .into());
            }
        }
    }
    match (from, to) {
        (V0_1, V0_2) => {}
        (V0_2, V0_1) => clear_table(txn, Table::LeaseCheckpoint)?,
        _ => return Err(VersionError::NoMigration { from, to }.into()),
    }
    write_storage_version(txn, to)
}

fn clear_table<T: WriteTxn + ?Sized>(txn: &mut T, table: Table) -> Result<(), BackendError> {
    let mut keys = Vec::new();
    txn.scan(table, &[], None, &mut |key, _| {
        keys.push(key.to_vec());
        ControlFlow::Continue(())
    })?;
    for key in keys {
        txn.delete(table, &key)?;
    }
    Ok(())
}
