//! The storage schema versions and the migrations between them, over the [`Backend`] tables.
//!
//! | schema | meta `storageVersion` | lease records (`Table::Lease`, `leasepb.Lease` shape)        |
//! |--------|-----------------------|--------------------------------------------------------------|
//! | 0.1    | `"0.1"`               | `ID`, `TTL` only (`RemainingTTL`, field 3, always 0/absent)  |
//! | 0.2    | `"0.2"`               | plus `RemainingTTL`: the last checkpointed remaining TTL     |
//!
//! Both schemas keep the replicated version state (`qraftpb.VersionState`) in
//! [`Table::Cluster`] under [`VERSION_STATE`]. Migrating 0.1 → 0.2 only rewrites the version
//! (checkpoints appear as they are applied). Migrating 0.2 → 0.1 rewrites every lease record
//! without its remaining TTL, so leases fall back to their granted TTL as in 0.1, and is refused while the raft log still holds an entry that a
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
use crate::lease::LeaseRecord;
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
        (V0_2, V0_1) => strip_lease_checkpoints(txn)?,
        _ => return Err(VersionError::NoMigration { from, to }.into()),
    }
    write_storage_version(txn, to)
}

/// Rewrites every lease record without its checkpointed remaining TTL (field 3, which the 0.1
/// schema does not have). Records are rewritten only when they carry one.
fn strip_lease_checkpoints<T: WriteTxn + ?Sized>(txn: &mut T) -> Result<(), BackendError> {
    let mut rewrites = Vec::new();
    let mut failure = None;
    txn.scan(Table::Lease, &[], None, &mut |key, value| {
        match LeaseRecord::decode(value) {
            Ok(record) if record.remaining_ttl != 0 => {
                let stripped = LeaseRecord {
                    remaining_ttl: 0,
                    ..record
                };
                rewrites.push((key.to_vec(), stripped.encode_to_vec()));
            }
            Ok(_) => {}
            Err(e) => {
                failure = Some(BackendError::Corrupt {
                    table: Table::Lease,
                    reason: e.to_string(),
                });
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    for (key, value) in rewrites {
        txn.put(Table::Lease, &key, &value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, MemBackend};
    use qraft_proto::etcdserverpb::LeaseCheckpointRequest;
    use qraft_proto::qraftpb::internal_request::Request;

    fn lease(txn: &mut impl WriteTxn, id: i64, remaining_ttl: i64) {
        let record = LeaseRecord {
            id,
            ttl: 60,
            remaining_ttl,
        };
        txn.put(Table::Lease, &id.to_be_bytes(), &record.encode_to_vec())
            .unwrap();
    }

    fn leases(backend: &MemBackend) -> Vec<LeaseRecord> {
        crate::lease::load_leases(&backend.read_txn().unwrap()).unwrap()
    }

    #[test]
    fn down_strips_checkpoints_and_up_keeps_records() {
        let backend = MemBackend::new();
        let mut txn = backend.write_txn().unwrap();
        write_storage_version(&mut txn, V0_2).unwrap();
        lease(&mut txn, 1, 0);
        lease(&mut txn, 2, 17);
        txn.commit().unwrap();

        let mut txn = backend.write_txn().unwrap();
        migrate(&mut txn, V0_2, V0_1, []).unwrap();
        txn.commit().unwrap();
        let read = backend.read_txn().unwrap();
        assert_eq!(
            read.get(Table::Meta, meta::STORAGE_VERSION).unwrap(),
            Some(&b"0.1"[..])
        );
        drop(read);
        let after: Vec<(i64, i64, i64)> = leases(&backend)
            .iter()
            .map(|l| (l.id, l.ttl, l.remaining_ttl))
            .collect();
        assert_eq!(after, [(1, 60, 0), (2, 60, 0)]);

        let mut txn = backend.write_txn().unwrap();
        migrate(&mut txn, V0_1, V0_2, []).unwrap();
        txn.commit().unwrap();
        assert_eq!(
            read_storage_version(&backend.read_txn().unwrap()).unwrap(),
            Some(V0_2)
        );
        assert_eq!(leases(&backend).len(), 2);
    }

    #[test]
    fn refusals_leave_the_data_alone() {
        let backend = MemBackend::new();
        let mut txn = backend.write_txn().unwrap();
        write_storage_version(&mut txn, V0_2).unwrap();
        lease(&mut txn, 5, 9);
        txn.commit().unwrap();

        let checkpoint = InternalRequest {
            request: Some(Request::LeaseCheckpoint(LeaseCheckpointRequest::default())),
            ..Default::default()
        };
        let plain = InternalRequest::default();
        let mut txn = backend.write_txn().unwrap();
        let err = migrate(&mut txn, V0_2, V0_1, [(7, &plain), (8, &checkpoint)]).unwrap_err();
        assert_eq!(
            err,
            SchemaError::Version(VersionError::LogHasNewerEntries {
                target: V0_1,
                needs: V0_2,
                index: 8
            })
        );
        let err = migrate(&mut txn, V0_2, Version::new(0, 3, 0), []).unwrap_err();
        assert!(matches!(
            err,
            SchemaError::Version(VersionError::NoMigration { .. })
        ));
        drop(txn);
        assert_eq!(leases(&backend)[0].remaining_ttl, 9);
        assert_eq!(
            read_storage_version(&backend.read_txn().unwrap()).unwrap(),
            Some(V0_2)
        );
    }

    #[test]
    fn unreadable_stored_values_are_errors() {
        let backend = MemBackend::new();
        assert_eq!(
            read_storage_version(&backend.read_txn().unwrap()).unwrap(),
            None
        );
        assert_eq!(
            read_version_state(&backend.read_txn().unwrap()).unwrap(),
            ClusterVersions::default()
        );
        let mut txn = backend.write_txn().unwrap();
        txn.put(Table::Meta, meta::STORAGE_VERSION, b"zero.one")
            .unwrap();
        txn.put(Table::Cluster, VERSION_STATE, b"\xff\xff\xff")
            .unwrap();
        txn.commit().unwrap();
        let read = backend.read_txn().unwrap();
        assert!(matches!(
            read_storage_version(&read),
            Err(SchemaError::Version(VersionError::InvalidStored { .. }))
        ));
        assert!(matches!(
            read_version_state(&read),
            Err(SchemaError::Version(VersionError::UndecodableState(_)))
        ));
    }

    #[test]
    fn version_state_round_trips() {
        let mut state = ClusterVersions::default();
        state.set_members([1, 2]);
        state.apply_publish(&qraft_proto::qraftpb::MemberVersionPublishRequest {
            member_id: 1,
            server_version: "0.2.1".into(),
            storage_version: "0.2.0".into(),
            min_version: "0.1.0".into(),
        });
        state.apply_cluster_version_set("0.2.0");
        let backend = MemBackend::new();
        let mut txn = backend.write_txn().unwrap();
        write_version_state(&mut txn, &state).unwrap();
        txn.commit().unwrap();
        let mut back = read_version_state(&backend.read_txn().unwrap()).unwrap();
        // Membership comes from the conf state, not from the stored record.
        back.set_members([1, 2]);
        assert_eq!(back, state);
    }
}
