//! `snapshot restore` (etcdutl's meaning), decided: which records of a snapshot file a member
//! of a **new** cluster keeps. The shell reads the file, writes the records this keeps, and
//! lays out the new cluster's membership and raft state as a bootstrap does
//! ([`super::initial_members`]).
//!
//! Kept: the key space with every revision (create/mod/version), the compaction point,
//! leases, auth (users, roles, enabled flag and revision), the storage schema version.
//! Replaced by the new cluster's: the membership (members and removed members) and the raft
//! records of the meta table (applied index, term, configuration). Dropped: alarms (a restored
//! cluster starts with none, as etcd's does) and the cluster records (cluster version,
//! downgrade), which the new cluster decides again from its members' versions.

use crate::backend::Table;
use crate::backend::meta::{CONF_STATE, CONSISTENT_INDEX, TERM};

/// Whether a record of table `table` under `key` in a snapshot goes into the restored member
/// as it is (see the module doc).
pub fn kept_by_restore(table: Table, key: &[u8]) -> bool {
    match table {
        Table::Members | Table::MembersRemoved | Table::Alarm | Table::Cluster => false,
        Table::Meta => ![CONSISTENT_INDEX, TERM, CONF_STATE].contains(&key),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_auth_and_leases_are_kept_membership_raft_records_and_alarms_are_not() {
        assert!(kept_by_restore(
            Table::Key,
            b"\0\0\0\0\0\0\0\x02_\0\0\0\0\0\0\0\0"
        ));
        assert!(kept_by_restore(Table::Lease, &7u64.to_be_bytes()));
        assert!(kept_by_restore(Table::AuthUsers, b"root"));
        assert!(!kept_by_restore(Table::Members, &1u64.to_be_bytes()));
        assert!(!kept_by_restore(Table::MembersRemoved, &2u64.to_be_bytes()));
        assert!(!kept_by_restore(Table::Alarm, b"x"));
        assert!(!kept_by_restore(Table::Cluster, b"clusterVersion"));
        assert!(!kept_by_restore(Table::Meta, CONSISTENT_INDEX));
        assert!(!kept_by_restore(Table::Meta, TERM));
        assert!(!kept_by_restore(Table::Meta, CONF_STATE));
        assert!(kept_by_restore(
            Table::Meta,
            crate::backend::meta::FINISHED_COMPACT_REVISION
        ));
    }
}
