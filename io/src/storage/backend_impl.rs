//! `qraft_core::backend::Backend` on LMDB: the state machine's tables are named databases of the
//! member's environment, and its write transaction is the loop turn's [`WriteBatch`] — so the
//! state machine's writes, the applied index and the raft log commit with one fsync.
//!
//! Read transactions are owned LMDB snapshots ([`ReadTxn`]); `write_txn` does not wait: it
//! fails with `WriteTxnActive` while another batch is open, as the trait requires.

use qraft_core::backend::{self, Backend, BackendError, Table, Visit};

use super::error::StorageError;
use super::lmdb::LmdbStorage;
use super::read_txn::ReadTxn;
use super::write_batch::WriteBatch;

impl From<StorageError> for BackendError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Corrupt { what, detail } => BackendError::Corrupt {
                table: Table::Meta,
                reason: format!("{what}: {detail}"),
            },
            StorageError::Busy(why) => BackendError::Busy(why.to_string()),
            other => BackendError::Storage(other.to_string()),
        }
    }
}

/// Corruption found while reading `table` names that table.
fn in_table(table: Table) -> impl Fn(StorageError) -> BackendError {
    move |err| match err {
        StorageError::Corrupt { what, detail } => BackendError::Corrupt {
            table,
            reason: format!("{what}: {detail}"),
        },
        other => other.into(),
    }
}

impl Backend for LmdbStorage {
    type ReadTxn<'a> = ReadTxn;
    type WriteTxn<'a> = WriteBatch<'a>;

    fn read_txn(&self) -> Result<ReadTxn, BackendError> {
        Ok(self.read()?)
    }

    fn write_txn(&self) -> Result<WriteBatch<'_>, BackendError> {
        self.try_begin_write()?.ok_or(BackendError::WriteTxnActive)
    }

    /// The pages the databases use against `--quota-backend-bytes`.
    fn space(&self) -> Result<Option<backend::BackendSpace>, BackendError> {
        let size = self.size_info()?;
        Ok(Some(backend::BackendSpace {
            file_bytes: size.file_bytes,
            in_use_bytes: size.in_use_bytes,
            quota_bytes: size.quota_bytes,
        }))
    }
}

impl backend::ReadTxn for ReadTxn {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, BackendError> {
        ReadTxn::get(self, table, key).map_err(in_table(table))
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Visit,
    ) -> Result<(), BackendError> {
        ReadTxn::scan(self, table, start, end, visit).map_err(in_table(table))
    }
}

impl backend::ReadTxn for WriteBatch<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<&[u8]>, BackendError> {
        WriteBatch::get(self, table, key).map_err(in_table(table))
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> Visit,
    ) -> Result<(), BackendError> {
        WriteBatch::scan(self, table, start, end, visit).map_err(in_table(table))
    }
}

impl backend::WriteTxn for WriteBatch<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), BackendError> {
        WriteBatch::put(self, table, key, value).map_err(in_table(table))
    }

    fn put_at_end(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), BackendError> {
        WriteBatch::put_at_end(self, table, key, value).map_err(in_table(table))
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, BackendError> {
        WriteBatch::delete(self, table, key).map_err(in_table(table))
    }

    fn commit(self) -> Result<(), BackendError> {
        Ok(WriteBatch::commit(self)?)
    }
}
