//! Leases in the backend's lease table.
//!
//! Key: the lease ID as 8 bytes big-endian; value: [`LeaseRecord`], wire-compatible with etcd's
//! `leasepb.Lease`. Attached keys are not stored here: every key-value records its lease, so
//! they are re-attached from the key space on restore.

use crate::backend::{BackendError, ReadTxn, Table, Visit, WriteTxn};

use super::lessor::Lessor;

/// The persisted part of a lease.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct LeaseRecord {
    #[prost(int64, tag = "1")]
    pub id: i64,
    #[prost(int64, tag = "2")]
    pub ttl: i64,
    /// Last checkpointed remaining TTL in seconds; 0 = none.
    #[prost(int64, tag = "3")]
    pub remaining_ttl: i64,
}

impl Lessor {
    /// Writes lease `id` as it is now: its record if it exists, a deletion if it was revoked.
    /// Call it in the apply transaction after every change to that lease (grant, revoke,
    /// checkpoint), so the table commits together with the applied index.
    pub fn persist<T: WriteTxn + ?Sized>(&self, txn: &mut T, id: i64) -> Result<(), BackendError> {
        let key = id.to_be_bytes();
        match self.get(id) {
            Some(lease) => {
                let record = LeaseRecord {
                    id,
                    ttl: lease.ttl,
                    remaining_ttl: lease.remaining_ttl,
                };
                txn.put(Table::Lease, &key, &prost::Message::encode_to_vec(&record))
            }
            None => txn.delete(Table::Lease, &key).map(|_| ()),
        }
    }
}

/// Every lease record in the table, ascending by the table's key order.
pub fn load_leases<T: ReadTxn + ?Sized>(txn: &T) -> Result<Vec<LeaseRecord>, BackendError> {
    let mut records = Vec::new();
    let mut failure = None;
    txn.scan(Table::Lease, &[], None, &mut |_key, value| {
        match <LeaseRecord as prost::Message>::decode(value) {
            Ok(record) => {
                records.push(record);
                Visit::Continue(())
            }
            Err(err) => {
                failure = Some(BackendError::Corrupt {
                    table: Table::Lease,
                    reason: err.to_string(),
                });
                Visit::Break(())
            }
        }
    })?;
    match failure {
        Some(err) => Err(err),
        None => Ok(records),
    }
}
