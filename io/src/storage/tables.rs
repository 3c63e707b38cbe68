//! The named databases of a member's environment and the fixed keys inside them.
//!
//! | database     | key                      | value                                   |
//! |--------------|--------------------------|-----------------------------------------|
//! | `raft_log`   | entry index (u64 BE)     | prost `raftpb::Entry`                   |
//! | `raft_state` | `hard_state`             | prost `raftpb::HardState`               |
//! |              | `conf_state`             | prost `raftpb::ConfState`               |
//! |              | `snapshot`               | prost `raftpb::SnapshotMetadata`        |
//! |              | `log_start`              | index u64 BE ‖ term u64 BE (see below)  |
//! |              | `identity`               | member ID u64 BE ‖ cluster ID u64 BE    |
//! |              | `journal_position`       | segment u64 BE ‖ offset u64 BE          |
//! | `meta`       | `consistent_index`       | u64 BE: the applied index               |
//! |              | `storageVersion`         | UTF-8 "major.minor"                     |
//! |              | other keys               | the state machine's (`Backend` meta)    |
//! | one per other `Table` | owned by the state machine (the `Backend` tables), raw bytes  |
//!
//! Every `Table` (including `meta`) is part of the key space: the state machine's data, which
//! snapshots export and `restore_key_space` replaces. `raft_log` and `raft_state` are the
//! member's own and never leave it.
//!
//! `log_start` is the position just before the first retained entry (etcd's "dummy entry"):
//! after a compaction or a snapshot its term is still needed to check the log-matching property
//! of the next append, although the entry itself is gone.
//!
//! Big-endian index keys sort numerically, so LMDB's key order is log order.

use heed::byteorder::BigEndian;
use heed::types::{Bytes, U64};
use heed::{CommitOrAbort, Database, Env, MdbError, PutFlags, RwTxn, WithoutTls};

use super::error::{Result, StorageError};

pub(crate) type LogDb<'e> = Database<'e, U64<BigEndian>, Bytes>;
pub(crate) type BytesDb<'e> = Database<'e, Bytes, Bytes>;

pub(crate) const RAFT_LOG: &str = "raft_log";
pub(crate) const RAFT_STATE: &str = "raft_state";

pub(crate) const KEY_HARD_STATE: &[u8] = b"hard_state";
pub(crate) const KEY_CONF_STATE: &[u8] = b"conf_state";
pub(crate) const KEY_SNAPSHOT: &[u8] = b"snapshot";
pub(crate) const KEY_LOG_START: &[u8] = b"log_start";
/// This member's ID and its cluster's ID, written once when the member's storage is first
/// set up (etcd keeps them in the WAL metadata): a restart takes them from here, never from
/// flags, and a snapshot from the leader never touches them.
pub(crate) const KEY_IDENTITY: &[u8] = b"identity";
/// The raft journal position up to which this environment holds every record (see
/// `super::journal`); recovery replays the records after it.
pub(crate) const KEY_JOURNAL_POSITION: &[u8] = b"journal_position";

pub use qraft_core::backend::Table;
pub(crate) use qraft_core::backend::meta::{CONSISTENT_INDEX, STORAGE_VERSION};

/// How many named databases the environment holds (LMDB needs the bound before opening).
pub(crate) const MAX_DBS: u32 = 2 + Table::ALL.len() as u32;

/// Stores a pair whose key is expected to sort after every key of `db` with LMDB's `APPEND`:
/// the last page fills up before a new one starts, instead of the half-and-half split of an
/// ordinary insert (sequential 1 KiB values then take ~2/3 of the pages). A key that does not
/// sort last is refused by LMDB before anything changes (`KEYEXIST`) and stored the ordinary
/// way, so a wrong guess costs only the saving.
pub(crate) fn put_at_end(
    db: BytesDb<'_>,
    txn: &mut RwTxn<'_>,
    key: &[u8],
    value: &[u8],
) -> heed::Result<()> {
    match db.put_with_flags(txn, PutFlags::APPEND, key, value) {
        Err(heed::Error::Mdb(MdbError::KeyExist)) => db.put(txn, key, value),
        done => done,
    }
}

/// Handles of every named database; valid for the environment that created them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    pub log: LogDb<'static>,
    pub raft_state: BytesDb<'static>,
    data: [BytesDb<'static>; Table::ALL.len()],
}

impl Tables {
    pub fn data(&self, table: Table) -> BytesDb<'static> {
        // `Table::ALL` lists the variants in declaration order (checked by a test below), so a
        // variant's discriminant is its position.
        self.data[table as usize]
    }

    pub fn meta(&self) -> BytesDb<'static> {
        self.data(Table::Meta)
    }

    /// Creates (or opens) every database in one committed transaction.
    pub fn create(env: &Env<WithoutTls>) -> Result<Tables> {
        let wtxn = env.write_txn()?;
        let created = env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_> {
            let log: LogDb<'_> = opener.create_database(wtxn, Some(RAFT_LOG))?;
            let raft_state: BytesDb<'_> = opener.create_database(wtxn, Some(RAFT_STATE))?;
            let mut data = Vec::with_capacity(Table::ALL.len());
            for table in Table::ALL {
                let db: BytesDb<'_> = opener.create_database(wtxn, Some(table.name()))?;
                data.push(db);
            }
            let data: [BytesDb<'_>; Table::ALL.len()] = data
                .try_into()
                .map_err(|_| StorageError::Config("table count mismatch".into()))?;
            Ok(CommitOrAbort::<_, ()>::Commit((log, raft_state, data)))
        })?;
        match created {
            CommitOrAbort::Commit((log, raft_state, data)) => Ok(Tables {
                log,
                raft_state,
                data,
            }),
            CommitOrAbort::Abort(()) => Err(StorageError::Config("table creation aborted".into())),
        }
    }
}

/// The table stored under `name`, for decoding snapshot streams.
pub(crate) fn table_by_name(name: &str) -> Option<Table> {
    Table::ALL.into_iter().find(|t| t.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_discriminants_are_positions_in_all() {
        for (pos, table) in Table::ALL.into_iter().enumerate() {
            assert_eq!(table as usize, pos, "{table:?}");
            assert_eq!(table_by_name(table.name()), Some(table));
        }
        assert_eq!(table_by_name("raft_log"), None);
    }
}
