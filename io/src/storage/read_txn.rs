//! An owned, `Send` read transaction over the state machine's tables.
//!
//! It owns a handle on the storage, so it can live on any thread (the environment is opened
//! without thread-local reader slots) and outlive the call that created it — the snapshot
//! exporter keeps one for the whole stream. Keep them short otherwise: LMDB cannot reuse pages
//! freed after the oldest live reader started, and the map cannot grow while one is open.

use std::ops::{Bound, ControlFlow};
use std::sync::Arc;

use heed::{Env, RoTxn, WithoutTls};

use super::codec::decode_u64;
use super::error::Result;
use super::lmdb::{ReaderSlot, Shared};
use super::tables::{CONSISTENT_INDEX, Table, Tables};

/// A range scan callback: gets each key and value, says whether to go on.
pub type Visitor<'v> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'v;

pub struct ReadTxn {
    // Field order matters: the transaction and its environment handle end before the reader
    // slot is released (a defrag waits for the slot, then closes the environment).
    txn: RoTxn<'static, WithoutTls>,
    env: Env<WithoutTls>,
    tables: Tables,
    _slot: ReaderSlot,
}

impl ReadTxn {
    pub(crate) fn begin(shared: &Arc<Shared>) -> Result<ReadTxn> {
        let slot = ReaderSlot::acquire(shared);
        let opened = slot.opened()?;
        let (env, tables) = (opened.env.clone(), opened.tables);
        let txn = env.clone().static_read_txn()?;
        Ok(ReadTxn {
            txn,
            env,
            tables,
            _slot: slot,
        })
    }

    pub(crate) fn tables(&self) -> &Tables {
        &self.tables
    }

    pub(crate) fn env(&self) -> &Env<WithoutTls> {
        &self.env
    }

    pub(crate) fn raw(&self) -> &RoTxn<'static, WithoutTls> {
        &self.txn
    }

    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>> {
        Ok(self.tables().data(table).get(&self.txn, key)?)
    }

    /// Key-value pairs of `table` within the bounds, in key order.
    pub fn range<'a>(
        &'a self,
        table: Table,
        start: Bound<&'a [u8]>,
        end: Bound<&'a [u8]>,
    ) -> Result<impl Iterator<Item = Result<(&'a [u8], &'a [u8])>> + 'a> {
        let iter = self.tables().data(table).range(&self.txn, &(start, end))?;
        Ok(iter.map(|item| item.map_err(Into::into)))
    }

    /// Calls `visit` for each pair with `start <= key < end` (no end: to the last key).
    pub fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        scan(&self.txn, self.tables(), table, start, end, visit)
    }

    /// The index of the last raft entry whose effects are in this snapshot of the data.
    pub fn applied_index(&self) -> Result<u64> {
        read_applied_index(&self.txn, self.tables())
    }
}

pub(crate) fn scan(
    txn: &RoTxn<'_>,
    tables: &Tables,
    table: Table,
    start: &[u8],
    end: Option<&[u8]>,
    visit: &mut Visitor<'_>,
) -> Result<()> {
    if end.is_some_and(|end| end <= start) {
        return Ok(());
    }
    let end = end.map_or(Bound::Unbounded, Bound::Excluded);
    // LMDB keys are never empty (and cannot be searched for): "" means from the first key.
    let start = if start.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(start)
    };
    for item in tables.data(table).range(txn, &(start, end))? {
        let (key, value) = item?;
        if visit(key, value).is_break() {
            break;
        }
    }
    Ok(())
}

pub(crate) fn read_applied_index(txn: &RoTxn<'_>, tables: &Tables) -> Result<u64> {
    match tables.meta().get(txn, CONSISTENT_INDEX)? {
        Some(bytes) => decode_u64("applied index", bytes),
        None => Ok(0),
    }
}
