//! Revisions and their encoding as keys of [`Table::Key`](crate::backend::Table::Key).
//!
//! A revision `(main, sub)` names one change: `main` is the store revision of the write
//! transaction, `sub` counts the changes inside it. The backend key is `main` (8 bytes,
//! big-endian), `_`, `sub` (8 bytes, big-endian), plus a trailing `t` for a tombstone, so the
//! table iterates in revision order and a tombstone is recognisable without decoding the value.

use crate::backend::{BackendError, Table};

/// Length of an encoded revision without the tombstone marker.
pub const REV_BYTES: usize = 17;
const TOMBSTONE_MARK: u8 = b't';

/// One change's position in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    pub const fn new(main: i64, sub: i64) -> Self {
        Self { main, sub }
    }

    /// The backend key of this revision.
    pub fn encode(self, tombstone: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(REV_BYTES + 1);
        out.extend_from_slice(&self.main.to_be_bytes());
        out.push(b'_');
        out.extend_from_slice(&self.sub.to_be_bytes());
        if tombstone {
            out.push(TOMBSTONE_MARK);
        }
        out
    }

    /// The first backend key at or after every change of main revision `main`.
    pub fn start_key(main: i64) -> Vec<u8> {
        Revision::new(main, 0).encode(false)
    }

    /// Decodes a backend key into the revision and whether it marks a tombstone.
    pub fn decode(bytes: &[u8]) -> Result<(Revision, bool), BackendError> {
        let corrupt = |reason: &str| BackendError::Corrupt {
            table: Table::Key,
            reason: format!("revision key {bytes:02x?}: {reason}"),
        };
        let tombstone = match bytes.len() {
            REV_BYTES => false,
            n if n == REV_BYTES + 1 && bytes[REV_BYTES] == TOMBSTONE_MARK => true,
            _ => return Err(corrupt("bad length or marker")),
        };
        let mut main = [0u8; 8];
        let mut sub = [0u8; 8];
        main.copy_from_slice(&bytes[..8]);
        sub.copy_from_slice(&bytes[9..17]);
        if bytes[8] != b'_' {
            return Err(corrupt("missing separator"));
        }
        Ok((
            Revision::new(i64::from_be_bytes(main), i64::from_be_bytes(sub)),
            tombstone,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_orders_like_revisions_and_round_trips() {
        let a = Revision::new(2, 7);
        let b = Revision::new(3, 0);
        assert!(a.encode(false) < b.encode(false));
        assert!(a.encode(true) < b.encode(false));
        assert_eq!(Revision::decode(&a.encode(true)).unwrap(), (a, true));
        assert_eq!(Revision::decode(&b.encode(false)).unwrap(), (b, false));
        assert!(Revision::decode(b"short").is_err());
    }
}
