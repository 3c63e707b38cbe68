//! Checked conversions between stored bytes and values: a bad record is an error, never a panic.

use prost::Message;

use super::error::{Result, StorageError};

pub(crate) fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|err| StorageError::corrupt(what, err))
}

pub(crate) fn decode_u64(what: &'static str, bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| {
        StorageError::corrupt(what, format!("expected 8 bytes, found {}", bytes.len()))
    })?;
    Ok(u64::from_be_bytes(array))
}

/// Two big-endian u64s, as `log_start` (index, term) is stored.
pub(crate) fn encode_pair(a: u64, b: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

pub(crate) fn decode_pair(what: &'static str, bytes: &[u8]) -> Result<(u64, u64)> {
    if bytes.len() != 16 {
        return Err(StorageError::corrupt(
            what,
            format!("expected 16 bytes, found {}", bytes.len()),
        ));
    }
    Ok((
        decode_u64(what, &bytes[..8])?,
        decode_u64(what, &bytes[8..])?,
    ))
}
