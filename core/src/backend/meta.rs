//! Well-known keys of [`Table::Meta`] and helpers for their fixed-width encodings.
//!
//! Integers are stored big-endian (8 bytes) so they are readable by any implementation and
//! order like numbers.

use super::{BackendError, ReadTxn, Table, WriteTxn};

/// Index of the last raft entry whose effects are in the backend (u64). Written in the same
/// write transaction as those effects.
pub const CONSISTENT_INDEX: &[u8] = b"consistent_index";
/// Term of the entry at [`CONSISTENT_INDEX`] (u64).
pub const TERM: &[u8] = b"term";
/// Revision of the last compaction that was requested (i64); set before the compaction runs.
pub const SCHEDULED_COMPACT_REVISION: &[u8] = b"scheduledCompactRev";
/// Revision of the last compaction that completed (i64).
pub const FINISHED_COMPACT_REVISION: &[u8] = b"finishedCompactRev";
/// Storage schema version ("major.minor"), checked on open and migrated on downgrade.
pub const STORAGE_VERSION: &[u8] = b"storageVersion";
/// The raft ConfState of the applied configuration (encoded `raftpb.ConfState`).
pub const CONF_STATE: &[u8] = b"confState";

/// Reads a big-endian u64 stored under `key` in [`Table::Meta`].
pub fn get_u64<T: ReadTxn + ?Sized>(txn: &T, key: &[u8]) -> Result<Option<u64>, BackendError> {
    match txn.get(Table::Meta, key)? {
        None => Ok(None),
        Some(bytes) => match <[u8; 8]>::try_from(bytes) {
            Ok(raw) => Ok(Some(u64::from_be_bytes(raw))),
            Err(_) => Err(BackendError::Corrupt {
                table: Table::Meta,
                reason: format!(
                    "{} holds {} bytes, want 8",
                    String::from_utf8_lossy(key),
                    bytes.len()
                ),
            }),
        },
    }
}

/// Writes a big-endian u64 under `key` in [`Table::Meta`].
pub fn put_u64<T: WriteTxn + ?Sized>(
    txn: &mut T,
    key: &[u8],
    value: u64,
) -> Result<(), BackendError> {
    txn.put(Table::Meta, key, &value.to_be_bytes())
}

/// Reads an i64 stored (as its u64 bit pattern, big-endian) under `key` in [`Table::Meta`].
pub fn get_i64<T: ReadTxn + ?Sized>(txn: &T, key: &[u8]) -> Result<Option<i64>, BackendError> {
    Ok(get_u64(txn, key)?.map(|v| v as i64))
}

/// Writes an i64 under `key` in [`Table::Meta`].
pub fn put_i64<T: WriteTxn + ?Sized>(
    txn: &mut T,
    key: &[u8],
    value: i64,
) -> Result<(), BackendError> {
    put_u64(txn, key, value as u64)
}
