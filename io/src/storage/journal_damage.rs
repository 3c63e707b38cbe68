//! Telling a torn last record from damage, where a scan of the journal's last segment stops at
//! bytes that are not a whole record.
//!
//! A record is acknowledged only after its `fdatasync` returns, so the one record a crash may
//! leave incomplete is the last one written, and only before its sync. What such a write can
//! leave on disk is narrow, because segments are zero-filled and synced before any record goes
//! in and each record is written once, at the end: the bytes past the last whole record are
//! zero except inside the extent of that one write, and within the extent each 512-byte sector
//! either reached the disk or is still zero (sector writes are atomic; the page cache writes
//! back whole pages, in any order).
//!
//! So the stop at offset `at` is a torn write only if:
//! - no whole record starts anywhere after `at` (records after it were acknowledged);
//! - when the header at `at` gives a length that fits, nothing past that extent is non-zero,
//!   some sector's part of the extent is still all zero (a write that landed whole and fails its
//!   checksum is damage, not a crash), and no shorter length matches the checksum (a damaged
//!   length field, not an incomplete payload);
//! - when the length does not fit, the header itself straddles a sector boundary with one part
//!   unwritten.
//!
//! Anything else is [`super::StorageError::Corrupt`]: an acknowledged record would be lost.
//! The one ambiguity left is a damaged last record whose data has an all-zero sector of its own;
//! it is dropped as torn.

use super::journal_record::{FRAME_HEADER, Frame, read_frame, read_u32};

const SECTOR: usize = 512;

/// How many payload bytes the search for a whole record past the damage may hash before it
/// gives up and calls the segment damaged (the search is exhaustive only for a torn write's
/// size of garbage; see [`whole_record_after`]).
const SEARCH_BUDGET: u64 = 1 << 30;

/// `Ok` if the bytes of `segment` from `at` on are what a crash during the last write leaves;
/// otherwise why not.
pub(crate) fn explain_as_torn_write(segment: &[u8], at: usize) -> Result<(), String> {
    let Some(len) = read_u32(segment, at) else {
        // Fewer than a header's bytes left: nothing was ever written there.
        return whole_record_after(segment, at);
    };
    if len == 0 {
        // The header's sector never reached the disk; any bytes after it are the rest of that
        // write — unless they hold records.
        return whole_record_after(segment, at);
    }
    let extent_end = at
        .checked_add(FRAME_HEADER)
        .and_then(|start| start.checked_add(len as usize))
        .filter(|end| *end <= segment.len());
    let Some(extent_end) = extent_end else {
        if has_unwritten_sector(segment, at, at + FRAME_HEADER) {
            return whole_record_after(segment, at);
        }
        return Err(format!(
            "the record at offset {at} claims {len} bytes, past the end of the segment"
        ));
    };
    if let Some(stray) = segment[extent_end..].iter().position(|b| *b != 0) {
        return Err(format!(
            "the record at offset {at} fails its checksum and data follows it at offset {}",
            extent_end + stray
        ));
    }
    if !has_unwritten_sector(segment, at, extent_end) {
        return Err(format!(
            "the last record (offset {at}) was written whole but fails its checksum"
        ));
    }
    if shorter_length_matches(segment, at, extent_end) {
        return Err(format!(
            "the last record (offset {at}) has a damaged length field"
        ));
    }
    Ok(())
}

/// Whether some 512-byte sector's part of `start..end` is all zero: that part of the write never
/// reached the disk.
fn has_unwritten_sector(segment: &[u8], start: usize, end: usize) -> bool {
    let end = end.min(segment.len());
    let mut piece_start = start;
    while piece_start < end {
        let piece_end = ((piece_start / SECTOR) + 1) * SECTOR;
        let piece_end = piece_end.min(end);
        if segment[piece_start..piece_end].iter().all(|b| *b == 0) {
            return true;
        }
        piece_start = piece_end;
    }
    false
}

/// Whether the checksum in the header at `at` matches a proper prefix of the payload that the
/// rest of the extent only pads with zeros: the length field was damaged, the record is whole.
fn shorter_length_matches(segment: &[u8], at: usize, extent_end: usize) -> bool {
    let Some(crc) = read_u32(segment, at + 4) else {
        return false;
    };
    let payload = &segment[at + FRAME_HEADER..extent_end];
    let data_len = payload
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&payload[..data_len]);
    for len in data_len..payload.len() {
        if len > 0 && hasher.clone().finalize() == crc {
            return true;
        }
        hasher.update(&[0]);
    }
    false
}

/// `Ok` if no whole record starts after `at` (up to the last non-zero byte).
fn whole_record_after(segment: &[u8], at: usize) -> Result<(), String> {
    let last_data = segment
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    let mut budget = SEARCH_BUDGET;
    for start in at + 1..last_data {
        let Some(len) = read_u32(segment, start) else {
            break;
        };
        if len == 0 || start + FRAME_HEADER + len as usize > segment.len() {
            continue;
        }
        budget = budget.saturating_sub(u64::from(len));
        if budget == 0 {
            return Err(format!(
                "damage at offset {at}, and too much data after it to tell a torn write from lost records"
            ));
        }
        if matches!(
            read_frame(&segment[start..]),
            Ok(Frame::Record(..) | Frame::Roll)
        ) {
            return Err(format!(
                "damage at offset {at}, and a whole record follows at offset {start}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::journal_record::JournalRecord;
    use qraft_proto::raftpb::Entry;

    fn record(index: u64, size: usize) -> Vec<u8> {
        JournalRecord {
            entries: vec![Entry {
                index,
                term: 1,
                data: vec![0x5a; size].into(),
                ..Entry::default()
            }],
            hard_state: None,
        }
        .encode_frame()
    }

    /// A segment of `len` zeros holding `records` from offset 0; returns the start of the last.
    fn segment(records: &[Vec<u8>], len: usize) -> (Vec<u8>, usize) {
        let mut bytes = Vec::new();
        let mut last = 0;
        for record in records {
            last = bytes.len();
            bytes.extend_from_slice(record);
        }
        bytes.resize(len, 0);
        (bytes, last)
    }

    #[test]
    fn a_write_missing_whole_sectors_is_torn() {
        let (mut bytes, at) = segment(&[record(1, 100), record(2, 3000)], 8192);
        // The record's second and third sectors never landed.
        let sector = (at / SECTOR + 1) * SECTOR;
        bytes[sector..sector + 2 * SECTOR].fill(0);
        assert_eq!(explain_as_torn_write(&bytes, at), Ok(()));
        // Nor did its first: the header reads as zero.
        bytes[at..sector].fill(0);
        assert_eq!(explain_as_torn_write(&bytes, at), Ok(()));
    }

    #[test]
    fn a_flipped_byte_in_a_whole_record_is_damage() {
        let (mut bytes, at) = segment(&[record(1, 100), record(2, 3000)], 8192);
        bytes[at + 700] ^= 0x10;
        assert!(explain_as_torn_write(&bytes, at).is_err());
        // A flipped length that grows the record past zeros.
        let (mut bytes, at) = segment(&[record(1, 100), record(2, 300)], 8192);
        bytes[at + 1] ^= 0x08;
        let err = explain_as_torn_write(&bytes, at).expect_err("damaged length");
        assert!(err.contains("length"), "{err}");
    }

    #[test]
    fn a_zeroed_header_with_records_after_it_is_damage() {
        let (mut bytes, _) = segment(&[record(1, 100), record(2, 100), record(3, 100)], 8192);
        let second = record(1, 100).len();
        bytes[second..second + 4].fill(0);
        let err = explain_as_torn_write(&bytes, second).expect_err("records follow");
        assert!(err.contains("follows"), "{err}");
    }
}
