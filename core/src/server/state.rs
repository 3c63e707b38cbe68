//! The replicated application state: key space, leases, auth and members.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use qraft_proto::qraftpb::MemberRecord;

use crate::auth::{AuthConfig, AuthStore};
use crate::backend::{BackendError, ReadTxn, Table, Visit, meta};
use crate::error::Result;
use crate::lease::{Lessor, LessorConfig, load_leases};
use crate::mvcc::{KeyIndexBuilder, MvccStore};

use super::alarm::AlarmStore;
use super::config::ServerConfig;

/// Everything applying entries changes. Opened from the backend on start, so a restarted
/// member continues exactly where its last committed apply transaction left it.
#[derive(Debug)]
pub struct AppState {
    pub mvcc: MvccStore,
    pub lessor: Lessor,
    pub auth: AuthStore,
    pub members: BTreeMap<u64, MemberRecord>,
    /// IDs of removed members (the `members_removed` table): never issued again, since a
    /// member with a removed ID is refused by every peer.
    pub removed_members: BTreeSet<u64>,
    /// The active alarms (`super::alarm`).
    pub alarms: AlarmStore,
    /// This member's key space disagreed with a proposed hash (`super::corrupt`): not
    /// replicated state, a finding the member acts on by raising CORRUPT through raft.
    pub hash_mismatch: bool,
    /// Index and term of the last applied entry, as stored with the data.
    pub applied_index: u64,
    pub applied_term: u64,
}

impl AppState {
    pub fn open<T: ReadTxn + ?Sized>(txn: &T, config: &ServerConfig) -> Result<Self> {
        Self::open_with(txn, config.lessor.clone(), config.auth.clone(), None)
    }

    /// As [`AppState::open`], with only the settings the state itself needs (what a
    /// [`super::StateOpenJob`] carries to the shell's worker thread). One pass over the key
    /// history: O(keys), never on the shell's loop thread once the member serves — unless
    /// `indexed` already holds the index built from that very history (as a snapshot
    /// arrived: [`KeyIndexBuilder`]), which is then taken instead.
    pub(super) fn open_with<T: ReadTxn + ?Sized>(
        txn: &T,
        lessor_config: LessorConfig,
        auth_config: AuthConfig,
        indexed: Option<KeyIndexBuilder>,
    ) -> Result<Self> {
        let (mvcc, leased) = match indexed {
            Some(builder) => builder.finish(txn)?,
            None => MvccStore::open_reporting_leases(txn)?,
        };
        let mut lessor = Lessor::new(lessor_config);
        lessor.restore(load_leases(txn)?);
        for (key, lease) in leased {
            // A key whose lease is gone was deleted with the revoke; ignore stale links.
            let _ = lessor.attach(lease, key);
        }
        let mut auth = AuthStore::new(auth_config);
        auth.load(txn)?;
        let members = load_members(txn)?;
        let removed_members = load_removed_members(txn)?;
        let alarms = AlarmStore::load(txn)?;
        Ok(AppState {
            mvcc,
            lessor,
            auth,
            members,
            removed_members,
            alarms,
            hash_mismatch: false,
            applied_index: meta::get_u64(txn, meta::CONSISTENT_INDEX)?.unwrap_or(0),
            applied_term: meta::get_u64(txn, meta::TERM)?.unwrap_or(0),
        })
    }

    /// What stands in for the state while it reopens after a snapshot from the leader
    /// (`super::reopen`): empty, at the snapshot's index. Nothing reads it: every path to the
    /// state waits for the reopened one.
    pub(super) fn placeholder(index: u64, term: u64, config: &ServerConfig) -> Self {
        AppState {
            mvcc: MvccStore::default(),
            lessor: Lessor::new(config.lessor.clone()),
            auth: AuthStore::new(config.auth.clone()),
            members: BTreeMap::new(),
            removed_members: BTreeSet::new(),
            alarms: AlarmStore::default(),
            hash_mismatch: false,
            applied_index: index,
            applied_term: term,
        }
    }
}

fn load_removed_members<T: ReadTxn + ?Sized>(
    txn: &T,
) -> std::result::Result<BTreeSet<u64>, BackendError> {
    let mut removed = BTreeSet::new();
    txn.scan(Table::MembersRemoved, &[], None, &mut |key, _| {
        if let Ok(bytes) = <[u8; 8]>::try_from(key) {
            removed.insert(u64::from_be_bytes(bytes));
        }
        Visit::Continue(())
    })?;
    Ok(removed)
}

fn load_members<T: ReadTxn + ?Sized>(
    txn: &T,
) -> std::result::Result<BTreeMap<u64, MemberRecord>, BackendError> {
    let mut members = BTreeMap::new();
    let mut failure = None;
    txn.scan(
        Table::Members,
        &[],
        None,
        &mut |_, value| match MemberRecord::decode(value) {
            Ok(member) => {
                members.insert(member.id, member);
                Visit::Continue(())
            }
            Err(err) => {
                failure = Some(BackendError::Corrupt {
                    table: Table::Members,
                    reason: err.to_string(),
                });
                Visit::Break(())
            }
        },
    )?;
    match failure {
        Some(err) => Err(err),
        None => Ok(members),
    }
}
