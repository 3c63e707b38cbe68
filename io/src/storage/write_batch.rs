//! One LMDB write transaction covering a whole driver loop turn (group commit).
//!
//! A [`WriteBatch`] comes from [`super::LmdbStorage::begin_write`] (or the closure form
//! [`super::LmdbStorage::write`]). Everything done through it — raft appends, hard state,
//! snapshot installation, compaction, and the state machine's writes of the committed entries
//! with the applied index — becomes durable together with one fsync at [`WriteBatch::commit`],
//! or not at all if the batch is dropped. Raft state readers (`LmdbStorage::raft_state`, the
//! raft `Storage` impl) see the changes only after the commit.

use std::io::Read;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use heed::{Env, EnvFlags, FlagSetMode, RwTxn, WithoutTls};
use qraft_core::backend::BackendError;
use qraft_core::backend::meta::TERM;
use qraft_core::server::install_image;
use qraft_proto::raftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};

use super::codec::encode_pair;
use super::error::{Result, StorageError};
use super::journal::JournalPosition;
use super::lmdb::MemberIdentity;
use super::lmdb::{Shared, append_to_journal, lock_journal, read_lock, write_lock};
use super::opened::WriterGuard;
use super::raft_log;
use super::raft_state::{PersistedRaftState, store_conf_state, store_hard_state};
use super::read_txn::{Visitor, read_applied_index, scan};
use super::snapshot::restore_key_space;
use super::tables::{
    CONSISTENT_INDEX, KEY_IDENTITY, KEY_JOURNAL_POSITION, STORAGE_VERSION, Table, Tables,
};

/// How much of a commit is synced to the device before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    Durable,
    DataOnly,
}

pub struct WriteBatch<'s> {
    // Field order matters: the transaction is aborted (if not committed) before the writer
    // guard lets the next batch start.
    txn: RwTxn<'s>,
    raft: PersistedRaftState,
    /// The journal position this batch makes LMDB hold (`None`: unchanged).
    folds_journal_to: Option<JournalPosition>,
    /// The journal took records through this batch since it began: fold again at commit.
    journal_appended: bool,
    tables: Tables,
    env: &'s Env<WithoutTls>,
    shared: &'s Shared,
    _writer: WriterGuard<'s>,
}

impl<'s> WriteBatch<'s> {
    pub(crate) fn new(shared: &'s Shared, writer: WriterGuard<'s>) -> Result<Self> {
        // The environment stays in place while this batch holds the writer guard.
        let opened = shared
            .cell
            .for_writer(&writer)
            .ok_or(StorageError::Closed)?;
        let mut txn = opened.env.write_txn()?;
        let mut raft = read_lock(&shared.raft).clone();
        let folds_journal_to = fold_journal_tail(shared, &mut txn, &opened.tables, &mut raft)?;
        Ok(WriteBatch {
            txn,
            raft,
            folds_journal_to,
            journal_appended: false,
            tables: opened.tables,
            env: &opened.env,
            shared,
            _writer: writer,
        })
    }

    /// Commits durably (the data pages and the meta page synced), then publishes the new raft
    /// state to readers.
    pub fn commit(self) -> Result<()> {
        self.commit_with(Durability::Durable)
    }

    /// Commits with the data pages synced but the meta page written without a sync of its own:
    /// one device flush instead of two. The batch is atomic and consistent at once, and it
    /// becomes durable with the next commit of any kind (whose sync of the data file carries
    /// this meta page); a power loss before that undoes it and nothing else (LMDB's
    /// `MDB_NOMETASYNC` contract: it never reuses pages of the last two commits). For batches
    /// whose loss a restart repairs on its own — applying committed entries that the raft log
    /// already holds durably, or a commit index — never for raft entries, votes or terms.
    pub fn commit_unsynced_meta(self) -> Result<()> {
        self.commit_with(Durability::DataOnly)
    }

    /// [`super::LmdbStorage::journal_append`] while this batch is open: a driver that keeps its
    /// batch of applied entries open across loop turns still makes each turn's raft entries
    /// durable at once. The commit folds them into LMDB with the rest of the journal's tail.
    /// Refused once the batch changed the raft state itself (appends, snapshots, compaction,
    /// configuration): that change and the journal's would then both claim the log.
    pub fn journal_append(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<()> {
        if self.raft != *read_lock(&self.shared.raft) {
            return Err(StorageError::Config(
                "journal append into a write batch that changed the raft state".into(),
            ));
        }
        append_to_journal(self.shared, entries, hard_state, sync)?;
        self.raft = read_lock(&self.shared.raft).clone();
        self.journal_appended = true;
        Ok(())
    }

    /// Folds what the journal took since this batch began (see [`Self::journal_append`]), so
    /// that the commit holds the whole tail it then marks as folded. Folding is idempotent:
    /// entries folded when the batch began are written again as they were.
    fn fold_rest_of_tail(&mut self) -> Result<()> {
        if !self.journal_appended {
            return Ok(());
        }
        if let Some(position) =
            fold_journal_tail(self.shared, &mut self.txn, &self.tables, &mut self.raft)?
        {
            self.folds_journal_to = Some(position);
        }
        Ok(())
    }

    // `set_flags` is unsafe only for its thread-safety requirement, which the writer lock meets.
    #[allow(unsafe_code)]
    fn commit_with(mut self, durability: Durability) -> Result<()> {
        self.fold_rest_of_tail()?;
        let applied = read_applied_index(&self.txn, &self.tables)?;
        let mut published = write_lock(&self.shared.raft);
        let env = self.env;
        let committed = match durability {
            Durability::Durable => self.txn.commit(),
            Durability::DataOnly => {
                // SAFETY: the flag is set and cleared while this batch holds the writer lock,
                // so no other commit runs under it, and `NO_META_SYNC` keeps the environment
                // consistent (see `commit_unsynced_meta`).
                unsafe { env.set_flags(EnvFlags::NO_META_SYNC, FlagSetMode::Enable)? };
                let committed = self.txn.commit();
                // SAFETY: as above; every other commit syncs its meta page again.
                unsafe { env.set_flags(EnvFlags::NO_META_SYNC, FlagSetMode::Disable)? };
                committed
            }
        };
        committed?;
        *published = self.raft;
        self.shared.applied_index.store(applied, Ordering::Release);
        let mut tail = write_lock(&self.shared.tail);
        // A commit of either kind makes the one before it durable (its sync carries the
        // previous meta page); a durable commit is durable itself.
        let durable = match durability {
            Durability::Durable => self.folds_journal_to.unwrap_or(tail.lmdb_position()),
            Durability::DataOnly => tail.lmdb_position(),
        };
        if self.folds_journal_to.is_some() {
            tail.folded();
        }
        drop(tail);
        drop(published);
        // Old segments go only once LMDB can no longer fall back behind them.
        if let Err(err) = lock_journal(self.shared).release_before(durable) {
            // The commit stands; the old segments go at a later commit or the next open.
            tracing::warn!(%err, "could not delete old raft journal segments");
        }
        Ok(())
    }

    /// The raft state as it will be after this batch commits.
    pub fn raft_state(&self) -> &PersistedRaftState {
        &self.raft
    }

    // ---- raft log and state ------------------------------------------------------------------

    /// Appends consecutive entries, replacing any stored entry at or after the first one (the
    /// conflicting suffix). Entries at or below the log start are skipped. Error on a gap.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        raft_log::append(&mut self.txn, &self.tables, &mut self.raft, entries)
    }

    pub fn set_hard_state(&mut self, hard_state: &HardState) -> Result<()> {
        store_hard_state(&mut self.txn, &self.tables, hard_state)?;
        self.raft.hard_state = *hard_state;
        Ok(())
    }

    /// The configuration in force after applying a conf change; a restart resumes with it.
    pub fn set_conf_state(&mut self, conf_state: &ConfState) -> Result<()> {
        store_conf_state(&mut self.txn, &self.tables, conf_state)?;
        self.raft.conf_state = conf_state.clone();
        Ok(())
    }

    /// Records that the local state at `index` is a snapshot, with `conf_state` (`None`: the
    /// current one). `index` must be in the log and past the latest snapshot. The log may then be
    /// compacted up to `index`. The snapshot's data is the key space, exported when needed.
    pub fn create_snapshot(
        &mut self,
        index: u64,
        conf_state: Option<ConfState>,
    ) -> Result<SnapshotMetadata> {
        raft_log::create_snapshot(
            &mut self.txn,
            &self.tables,
            &mut self.raft,
            index,
            conf_state,
        )
    }

    /// Discards log entries up to and including `index`, which must not pass the latest
    /// snapshot. [`super::StorageError::Compacted`] if already compacted that far.
    pub fn compact(&mut self, index: u64) -> Result<()> {
        raft_log::compact(&mut self.txn, &self.tables, &mut self.raft, index)
    }

    /// Bootstraps a new member's log with `conf_state`, as `MemStorage::new_with_conf_state`:
    /// a snapshot at index 1, term 1 holding the configuration, hard state term 1, commit 1.
    /// Only on an empty log.
    pub fn bootstrap(&mut self, conf_state: ConfState) -> Result<()> {
        if self.raft.last_index != 0 || self.raft.snapshot.index != 0 {
            return Err(super::StorageError::Config(
                "bootstrap of a non-empty log".into(),
            ));
        }
        let meta = SnapshotMetadata {
            conf_state: Some(conf_state),
            index: 1,
            term: 1,
        };
        self.apply_snapshot(&meta)
    }

    /// Records this member's ID and its cluster's ID (see [`super::LmdbStorage::identity`]).
    pub fn set_identity(&mut self, identity: MemberIdentity) -> Result<()> {
        let value = encode_pair(identity.member_id, identity.cluster_id);
        self.tables
            .raft_state
            .put(&mut self.txn, KEY_IDENTITY, &value)?;
        Ok(())
    }

    /// Installs a snapshot's metadata from the leader: the log is reset to the snapshot's
    /// position, its conf state adopted, and the hard state's term/commit raised to it. Restore
    /// the data with [`Self::restore_key_space`] in the same batch.
    pub fn apply_snapshot(&mut self, meta: &SnapshotMetadata) -> Result<()> {
        raft_log::apply_snapshot(&mut self.txn, &self.tables, &mut self.raft, meta)
    }

    /// Installs a snapshot whose data is an image of every table
    /// (`qraft_core::server::encode_image`) in this batch, log and data together: the log is
    /// reset to its position ([`Self::apply_snapshot`]), every table is replaced by the image and
    /// the applied index and term become the snapshot's. The driver does not use it (a snapshot
    /// from the leader is streamed into a fresh environment and swapped in whole, see
    /// `received_snapshot.rs`); the journal's crash tests do.
    pub fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        let meta = snapshot
            .metadata
            .as_ref()
            .ok_or_else(|| StorageError::BadSnapshot("snapshot without metadata".into()))?;
        self.apply_snapshot(meta)?;
        install_image(self, &snapshot.data).map_err(|err| match err {
            BackendError::Corrupt { reason, .. } => StorageError::BadSnapshot(reason),
            other => StorageError::BadSnapshot(other.to_string()),
        })?;
        self.set_applied_index(meta.index)?;
        self.put(Table::Meta, TERM, &meta.term.to_be_bytes())
    }

    /// Replaces every data table (so also the applied index) with the content of a snapshot
    /// stream (see [`super::snapshot`]). Returns the number of key-value records restored. A
    /// malformed stream is an error; dropping the batch then leaves the store untouched.
    pub fn restore_key_space(&mut self, stream: impl Read) -> Result<u64> {
        restore_key_space(&mut self.txn, &self.tables, stream)
    }

    // ---- state machine -------------------------------------------------------------------------

    /// The last applied raft index, as of this batch.
    pub fn applied_index(&self) -> Result<u64> {
        read_applied_index(&self.txn, &self.tables)
    }

    /// Stored in the same transaction as the effects of the entries it covers, so a crash never
    /// applies an entry twice nor loses one.
    pub fn set_applied_index(&mut self, index: u64) -> Result<()> {
        self.put(Table::Meta, CONSISTENT_INDEX, &index.to_be_bytes())
    }

    /// The storage schema version recorded in the meta table.
    pub fn storage_version(&self) -> Result<Option<String>> {
        Ok(self
            .get(Table::Meta, STORAGE_VERSION)?
            .map(|v| String::from_utf8_lossy(v).into_owned()))
    }

    /// Used by schema migration (downgrade/upgrade).
    pub fn set_storage_version(&mut self, version: &str) -> Result<()> {
        self.put(Table::Meta, STORAGE_VERSION, version.as_bytes())
    }

    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>> {
        Ok(self.tables.data(table).get(&self.txn, key)?)
    }

    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.tables.data(table).put(&mut self.txn, key, value)?)
    }

    /// [`put`](Self::put) of a key that sorts after every key of `table` (see
    /// [`super::tables::put_at_end`]).
    pub fn put_at_end(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(super::tables::put_at_end(
            self.tables.data(table),
            &mut self.txn,
            key,
            value,
        )?)
    }

    /// Returns whether the key existed.
    pub fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        Ok(self.tables.data(table).delete(&mut self.txn, key)?)
    }

    /// Deletes the keys within the bounds; returns how many were deleted.
    pub fn delete_range(
        &mut self,
        table: Table,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> Result<usize> {
        Ok(self
            .tables
            .data(table)
            .delete_range(&mut self.txn, &(start, end))?)
    }

    /// Calls `visit` for each pair with `start <= key < end`, seeing this batch's own writes.
    pub fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        scan(&self.txn, &self.tables, table, start, end, visit)
    }
}

/// Writes what the journal holds beyond LMDB into `txn` — the entries (replacing a conflicting
/// suffix), the hard state and the journal position — so that this batch's commit makes LMDB
/// whole again. The published state already includes the tail, so `raft` needs no change but
/// the log's last index. Returns the position the batch records, if the tail had anything.
fn fold_journal_tail(
    shared: &Shared,
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    raft: &mut PersistedRaftState,
) -> Result<Option<JournalPosition>> {
    let tail = read_lock(&shared.tail);
    if !tail.is_pending() {
        return Ok(None);
    }
    raft_log::append(txn, tables, raft, tail.entries())?;
    if let Some(hard_state) = tail.hard_state() {
        store_hard_state(txn, tables, hard_state)?;
    }
    let position = tail.journal_end();
    tables
        .raft_state
        .put(txn, KEY_JOURNAL_POSITION, &position.encode())?;
    Ok(Some(position))
}
