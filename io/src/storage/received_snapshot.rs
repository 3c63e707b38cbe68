//! A snapshot from the leader, received as a stream into a fresh environment and then swapped
//! in whole for the member's own.
//!
//! Receiving ([`LmdbStorage::receive_snapshot`], off the loop thread, while the member goes on
//! serving from its old state): the stream's records are written into a new environment at
//! `<data-dir>/member/snapshot-<index>.partial-<n>/`, committed every
//! [`COMMIT_EVERY_BYTES`] (so memory stays O(chunk) whatever the snapshot's size) without an
//! fsync each, checked to its end (record count, CRC-32, the applied index matching the
//! metadata), synced once, then the directory is renamed to `snapshot-<index>/`: the name says
//! it is complete.
//!
//! Installing ([`LmdbStorage::install_received_snapshot`], on the loop thread, once raft
//! accepted the snapshot): the raft state of the member after the snapshot (log reset to the
//! snapshot's position, its configuration, the hard state, the member's identity and the
//! journal position) is committed into the received environment, both environments are
//! closed, and the received `data.mdb` is renamed over the member's — one atomic rename, the
//! commit point. A crash before it leaves the old state (the leader sends the snapshot again);
//! after it, the new one, whole: the journal records before the recorded position are never
//! replayed over it. Leftover `snapshot-*` directories are removed at the next open.
//!
//! Because the new file is written from scratch in key order, its size follows the data (as
//! the leader's does), instead of the old file plus a full copy.
//!
//! When the core asks for it (`Server::index_while_receiving`: a member whose own key index is
//! small, such as a new one), the receiving thread also builds the key index from the history
//! records as they pass (they arrive in revision order), and keeps it with the snapshot's index
//! for the state reopened after the install ([`LmdbStorage::take_received_index`]), which then
//! does not read the key space again. It lives in memory only: a crash loses it, and the state
//! reopened at the next start scans as usual.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use heed::{EnvFlags, FlagSetMode};
use qraft_core::mvcc::KeyIndexBuilder;
use qraft_proto::raftpb::{HardState, SnapshotMetadata};

use super::env::{open_env, open_env_in};
use super::error::{Result, StorageError};
use super::lmdb::{LmdbStorage, load_raft_state, lock, lock_journal, read_lock, write_lock};
use super::log_tail::LogTail;
use super::opened::Opened;
use super::raft_log;
use super::read_txn::read_applied_index;
use super::snapshot::StreamParser;
use super::tables::{KEY_IDENTITY, KEY_JOURNAL_POSITION, Table, put_at_end};

/// Bytes of records written per transaction while receiving: bounds LMDB's dirty pages (held
/// in memory until a commit) independently of the snapshot's size.
const COMMIT_EVERY_BYTES: usize = 16 << 20;

/// How long an install waits for other threads' read transactions (a `snapshot save`, a
/// status call) to end before it gives up with [`StorageError::Busy`].
const INSTALL_READER_WAIT: Duration = Duration::from_secs(30);

const PREFIX: &str = "snapshot-";

/// Distinguishes concurrent receptions of the same snapshot (a resend while one runs).
static RECEPTIONS: AtomicU64 = AtomicU64::new(0);

impl LmdbStorage {
    fn member_dir(&self) -> PathBuf {
        member_dir(&self.env_dir())
    }

    /// Writes the snapshot stream `stream` (see [`super::snapshot`]) for `meta` into a fresh
    /// environment beside the member's, checked to its end; returns the records written. Blocks:
    /// run it off the loop thread. A bad or cut stream leaves nothing behind.
    pub fn receive_snapshot(&self, meta: &SnapshotMetadata, stream: impl Read) -> Result<u64> {
        let member = self.member_dir();
        let partial = member.join(format!(
            "{PREFIX}{}.partial-{}",
            meta.index,
            RECEPTIONS.fetch_add(1, Ordering::Relaxed)
        ));
        super::permissions::create_private_dir_all(&partial)?;
        let indexer = self
            .shared
            .index_while_receiving
            .load(Ordering::Acquire)
            .then(KeyIndexBuilder::new);
        let (records, indexed) = match write_stream(&partial, self, meta, stream, indexer) {
            Ok(written) => written,
            Err(err) => {
                let _ = fs::remove_dir_all(&partial);
                return Err(err);
            }
        };
        let complete = staged_dir(&member, meta.index);
        if complete.exists() {
            // The same snapshot arrived twice; the first copy stays (with its index, if any).
            let _ = fs::remove_dir_all(&partial);
        } else {
            fs::rename(&partial, &complete)?;
            File::open(&member)?.sync_all()?;
            // Replaces an index kept for another snapshot: one at most is held.
            *lock(&self.shared.received_index) = indexed.map(|index| (meta.index, index));
        }
        self.remove_staged(|index| index.is_some_and(|i| i < meta.index && self.stale(i)));
        Ok(records)
    }

    /// Whether a received snapshot at `index` can no longer be installed: raft refuses one at
    /// or below its commit index, and the applied index never passes it.
    fn stale(&self, index: u64) -> bool {
        index <= self.applied_index()
    }

    /// Makes the snapshot received for `meta` (by [`Self::receive_snapshot`]) the member's
    /// state: see the module documentation. `hard_state` is raft's after accepting the
    /// snapshot (`None`: the current one). The caller holds no write batch. Fails with
    /// [`StorageError::Busy`], the old state intact, if other threads' read transactions stay
    /// open too long.
    pub fn install_received_snapshot(
        &self,
        meta: &SnapshotMetadata,
        hard_state: Option<&HardState>,
    ) -> Result<()> {
        let staged = staged_dir(&self.member_dir(), meta.index);
        if !staged.join("data.mdb").exists() {
            return Err(StorageError::BadSnapshot(format!(
                "no received data for the snapshot at index {}",
                meta.index
            )));
        }
        let shared = &self.shared;
        let writer = shared.cell.lock_writer();
        let mut raft = read_lock(&shared.raft).clone();
        if let Some(hard_state) = hard_state {
            raft.hard_state = *hard_state;
        }
        let identity = {
            let opened = shared
                .cell
                .for_writer(&writer)
                .ok_or(StorageError::Closed)?;
            let txn = opened.env.read_txn()?;
            opened
                .tables
                .raft_state
                .get(&txn, KEY_IDENTITY)?
                .map(<[u8]>::to_vec)
        };
        let journal_end = lock_journal(shared).end();
        {
            let received = open_env_in(&staged, &shared.config)?;
            let mut txn = received.env.write_txn()?;
            raft_log::apply_snapshot(&mut txn, &received.tables, &mut raft, meta)?;
            if let Some(identity) = &identity {
                received
                    .tables
                    .raft_state
                    .put(&mut txn, KEY_IDENTITY, identity)?;
            }
            received.tables.raft_state.put(
                &mut txn,
                KEY_JOURNAL_POSITION,
                &journal_end.encode(),
            )?;
            txn.commit()?;
            close(received);
        }
        let env_dir = self.env_dir();
        let swapped = shared
            .cell
            .with_no_readers(INSTALL_READER_WAIT, |access| -> Result<()> {
                let old = access.take(&writer).ok_or(StorageError::Closed)?;
                close(old);
                let renamed = fs::rename(staged.join("data.mdb"), env_dir.join("data.mdb"))
                    .and_then(|()| File::open(&env_dir)?.sync_all());
                let opened = open_env(&shared.config)?;
                access.put(&writer, opened);
                Ok(renamed?)
            })
            .ok_or(StorageError::Busy(
                "snapshot install: read transactions stayed open",
            ))?;
        swapped?;
        let opened = shared
            .cell
            .for_writer(&writer)
            .ok_or(StorageError::Closed)?;
        let (loaded, applied, _) = load_raft_state(opened)?;
        {
            let mut published = write_lock(&shared.raft);
            *published = loaded;
            *write_lock(&shared.tail) = LogTail::new(journal_end);
            shared.applied_index.store(applied, Ordering::Release);
        }
        drop(writer);
        if let Err(err) = lock_journal(shared).release_before(journal_end) {
            tracing::warn!(%err, "could not delete old raft journal segments");
        }
        self.remove_staged(|index| index.is_some_and(|i| i <= meta.index));
        Ok(())
    }

    /// Drops the received snapshots at or below `index` that raft refused (see
    /// `Output::SnapshotRefused`): they would never be installed, and each is a copy of the
    /// key space on disk. Receptions still in progress are left to finish.
    pub fn discard_received_snapshots(&self, index: u64) {
        self.remove_staged(|staged| staged.is_some_and(|i| i <= index));
        let mut kept = lock(&self.shared.received_index);
        if kept.as_ref().is_some_and(|(at, _)| *at <= index) {
            *kept = None;
        }
    }

    /// Says whether the next snapshots received get their key index built as they arrive (the
    /// core's `Server::index_while_receiving`). Cheap: the driver calls it every turn.
    pub fn set_index_while_receiving(&self, on: bool) {
        self.shared
            .index_while_receiving
            .store(on, Ordering::Release);
    }

    /// The key index built as the snapshot at `index` arrived, for the state reopened after
    /// its install (`qraft_core::server::StateOpenJob::run`); `None` if none was built, or for
    /// another snapshot (which is then dropped too: only the snapshot installed last is ever
    /// reopened).
    pub fn take_received_index(&self, index: u64) -> Option<KeyIndexBuilder> {
        let kept = lock(&self.shared.received_index).take()?;
        (kept.0 == index).then_some(kept.1)
    }

    /// Removes the received snapshots (complete ones with an index, partial ones with `None`)
    /// `doomed` picks; an error only leaves a directory for the next open to remove.
    fn remove_staged(&self, doomed: impl Fn(Option<u64>) -> bool) {
        for (path, index) in staged_dirs(&self.member_dir()) {
            if doomed(index) {
                let _ = fs::remove_dir_all(path);
            }
        }
    }
}

/// At open: every received snapshot left by a previous run goes (none was installed — an
/// installed one is renamed away — so the old state stands and the leader sends again).
pub(crate) fn remove_leftovers(env_dir: &Path) -> Result<()> {
    for (path, _) in staged_dirs(&member_dir(env_dir)) {
        fs::remove_dir_all(path)?;
    }
    Ok(())
}

fn member_dir(env_dir: &Path) -> PathBuf {
    env_dir
        .parent()
        .map_or_else(|| env_dir.to_path_buf(), Path::to_path_buf)
}

fn staged_dir(member: &Path, index: u64) -> PathBuf {
    member.join(format!("{PREFIX}{index}"))
}

/// The `snapshot-*` directories in `member`: with their index when complete.
fn staged_dirs(member: &Path) -> Vec<(PathBuf, Option<u64>)> {
    let Ok(entries) = fs::read_dir(member) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let rest = name.strip_prefix(PREFIX)?;
            Some((entry.path(), rest.parse::<u64>().ok()))
        })
        .collect()
}

fn close(opened: Opened) {
    let Opened { env, .. } = opened;
    env.prepare_for_closing().wait();
}

/// The stream's records into a fresh environment in `dir`, in transactions of bounded size;
/// with `indexer`, the key index of the history built on the way (returned with the count).
fn write_stream(
    dir: &Path,
    storage: &LmdbStorage,
    meta: &SnapshotMetadata,
    stream: impl Read,
    mut indexer: Option<KeyIndexBuilder>,
) -> Result<(u64, Option<KeyIndexBuilder>)> {
    let opened = open_env_in(dir, &storage.shared.config)?;
    // The partial directory is thrown away unless the whole stream arrives, so its commits
    // need not reach the disk one by one: an fsync per commit made the receiving thread wait
    // for the disk ~140 times per 2 GiB. One sync at the end (below) makes the whole file
    // durable before the rename that marks it complete.
    // SAFETY: no other thread uses this freshly opened environment, and nothing relies on its
    // commits being durable before `force_sync` returns.
    #[allow(unsafe_code)]
    unsafe {
        opened
            .env
            .set_flags(EnvFlags::NO_SYNC, FlagSetMode::Enable)?
    };
    let result = (|| {
        let mut parser = StreamParser::new(stream);
        let mut txn = opened.env.write_txn()?;
        let mut pending = 0usize;
        while let Some(record) = parser.next_record()? {
            pending += record.key.len() + record.value.len();
            if record.table == Table::Key
                && let Some(builder) = indexer.as_mut()
                && let Err(err) = builder.add(&record.key, &record.value)
            {
                // The reopened state scans the stored history instead, and reports it.
                tracing::warn!(%err, "snapshot history not indexed as it arrived");
                indexer = None;
            }
            // The leader sends each table in key order: the pages fill up as in a compacted
            // copy, whatever holes the leader's own file has.
            put_at_end(
                opened.tables.data(record.table),
                &mut txn,
                &record.key,
                &record.value,
            )?;
            if pending >= COMMIT_EVERY_BYTES {
                txn.commit()?;
                txn = opened.env.write_txn()?;
                pending = 0;
            }
        }
        let applied = read_applied_index(&txn, &opened.tables)?;
        if applied != meta.index {
            return Err(StorageError::BadSnapshot(format!(
                "the data is at index {applied}, its metadata says {}",
                meta.index
            )));
        }
        txn.commit()?;
        opened.env.force_sync()?;
        Ok((parser.records(), indexer))
    })();
    close(opened);
    result
}
