//! A member's LMDB data directory set up or rewritten before its driver runs, as the core lays
//! it out: a new cluster's or a joining member's bootstrap (`bootstrap`), `--force-new-cluster`
//! (`force_new_cluster`, the plan from `qraft_core::server::plan_force_new_cluster`) and
//! `snapshot restore` (`restore`, the records `qraft_core::server::kept_by_restore` keeps).
//! These are the LMDB-specific offline pieces; the driver itself is generic over its storage
//! (`crate::driver::DriverStorage`).

mod bootstrap;
mod force_new_cluster;
mod restore;

pub use bootstrap::{
    InitialMember, bootstrap_if_new, bootstrap_join, is_new_store, record_identity,
};
pub use force_new_cluster::{ForcedConfiguration, force_new_cluster};
pub use restore::{
    BATCH_BYTES as RESTORE_BATCH_BYTES, RestoreError, RestorePlan, restore_data_dir, temp_dir_for,
};
