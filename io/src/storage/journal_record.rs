//! One journal record: what a loop turn made durable for raft — its new entries and its hard
//! state — framed so that recovery can tell a complete record from a torn one.
//!
//! Frame: `payload length (u32 LE) ‖ CRC-32 of the payload (u32 LE) ‖ payload`. A length of
//! zero is never written: it marks the unwritten (zero-filled) rest of a segment.
//!
//! Payload: `flags (u8: bit 0 = hard state present) ‖ [length u32 LE ‖ prost HardState] ‖
//! entry count (u32 LE) ‖ per entry: length u32 LE ‖ prost Entry`.
//!
//! The roll marker closes a segment: its payload is `flags = 2 (bit 1) ‖ entry count 0`. It says
//! the journal goes on in the next segment, so a missing next segment is detected. A reader that
//! does not know bit 1 sees a record without entries or hard state, which changes nothing.

use prost::Message;
use qraft_proto::raftpb::{Entry, HardState};

use super::error::{Result, StorageError};

/// Bytes of the frame header (length and checksum).
pub(crate) const FRAME_HEADER: usize = 8;

const HAS_HARD_STATE: u8 = 1;
const ROLLS_ON: u8 = 2;

/// The payload of the roll marker.
const ROLL_PAYLOAD: [u8; 5] = [ROLLS_ON, 0, 0, 0, 0];

/// Bytes of the roll marker's frame: every segment keeps room for one after its records.
pub(crate) const ROLL_MARKER_BYTES: u64 = (FRAME_HEADER + ROLL_PAYLOAD.len()) as u64;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JournalRecord {
    /// Consecutive entries; they replace any entry at or after the first one.
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
}

/// What reading a frame at some offset found.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    /// A whole record and the bytes its frame takes.
    Record(JournalRecord, usize),
    /// The roll marker: the journal goes on in the next segment.
    Roll,
    /// Zero length: nothing was written here.
    End,
    /// A frame cut short or failing its checksum: a write the crash interrupted (or damage).
    Torn,
}

impl JournalRecord {
    /// The framed bytes of this record.
    pub fn encode_frame(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(self.payload_hint());
        let flags = if self.hard_state.is_some() {
            HAS_HARD_STATE
        } else {
            0
        };
        payload.push(flags);
        if let Some(hard_state) = &self.hard_state {
            put_message(&mut payload, hard_state);
        }
        put_u32(&mut payload, self.entries.len());
        for entry in &self.entries {
            put_message(&mut payload, entry);
        }
        let mut frame = Vec::with_capacity(FRAME_HEADER + payload.len());
        put_u32(&mut frame, payload.len());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        frame
    }

    /// The framed roll marker.
    pub fn roll_marker_frame() -> Vec<u8> {
        let mut frame = Vec::with_capacity(ROLL_MARKER_BYTES as usize);
        put_u32(&mut frame, ROLL_PAYLOAD.len());
        frame.extend_from_slice(&crc32fast::hash(&ROLL_PAYLOAD).to_le_bytes());
        frame.extend_from_slice(&ROLL_PAYLOAD);
        frame
    }

    fn payload_hint(&self) -> usize {
        16 + self
            .entries
            .iter()
            .map(|e| e.encoded_len() + 4)
            .sum::<usize>()
    }
}

/// Reads the frame at the start of `bytes`.
pub(crate) fn read_frame(bytes: &[u8]) -> Result<Frame> {
    let (Some(len), Some(crc)) = (read_u32(bytes, 0), read_u32(bytes, 4)) else {
        // Fewer than 8 bytes left in the segment: nothing more fits, so nothing was written.
        return Ok(if bytes.iter().all(|b| *b == 0) {
            Frame::End
        } else {
            Frame::Torn
        });
    };
    if len == 0 {
        return Ok(Frame::End);
    }
    let Some(payload) = bytes.get(FRAME_HEADER..FRAME_HEADER + len as usize) else {
        return Ok(Frame::Torn);
    };
    if crc32fast::hash(payload) != crc {
        return Ok(Frame::Torn);
    }
    if payload == ROLL_PAYLOAD {
        return Ok(Frame::Roll);
    }
    let record = decode_payload(payload)?;
    Ok(Frame::Record(record, FRAME_HEADER + len as usize))
}

/// A payload that passed its checksum but does not decode was written wrong: corruption, not a
/// torn write.
fn decode_payload(payload: &[u8]) -> Result<JournalRecord> {
    let mut reader = Reader { bytes: payload };
    let flags = reader.take(1)?[0];
    if flags & !HAS_HARD_STATE != 0 {
        return Err(corrupt(format!("unknown record flags {flags:#x}")));
    }
    let hard_state = if flags & HAS_HARD_STATE != 0 {
        Some(reader.message::<HardState>("hard state")?)
    } else {
        None
    };
    let count = reader.u32()? as usize;
    let mut entries = Vec::with_capacity(count.min(payload.len()));
    for _ in 0..count {
        entries.push(reader.message::<Entry>("entry")?);
    }
    if !reader.bytes.is_empty() {
        return Err(corrupt("trailing bytes after the entries"));
    }
    Ok(JournalRecord {
        entries,
        hard_state,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(corrupt("record shorter than its fields"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn message<M: Message + Default>(&mut self, what: &str) -> Result<M> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        M::decode(bytes).map_err(|err| corrupt(format!("{what}: {err}")))
    }
}

fn corrupt(reason: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt("raft journal", reason)
}

fn put_u32(out: &mut Vec<u8>, value: usize) {
    // Entries and records are bounded far below 4 GiB by the request size limits.
    out.extend_from_slice(&(value as u32).to_le_bytes());
}

fn put_message(out: &mut Vec<u8>, message: &impl Message) {
    put_u32(out, message.encoded_len());
    // Encoding into a Vec cannot run out of room.
    let _ = message.encode(out);
}

pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JournalRecord {
        JournalRecord {
            entries: (5..8)
                .map(|index| Entry {
                    index,
                    term: 2,
                    data: vec![index as u8; 40].into(),
                    ..Entry::default()
                })
                .collect(),
            hard_state: Some(HardState {
                term: 2,
                vote: 1,
                commit: 4,
            }),
        }
    }

    #[test]
    fn a_record_reads_back_with_its_length() {
        let frame = record().encode_frame();
        let mut segment = frame.clone();
        segment.extend_from_slice(&[0; 16]);
        assert_eq!(
            read_frame(&segment).expect("read"),
            Frame::Record(record(), frame.len())
        );
        assert_eq!(
            read_frame(&segment[frame.len()..]).expect("read"),
            Frame::End
        );
        let bare = JournalRecord::default().encode_frame();
        assert_eq!(
            read_frame(&bare).expect("read"),
            Frame::Record(JournalRecord::default(), bare.len())
        );
    }

    #[test]
    fn a_cut_or_flipped_frame_is_torn() {
        let frame = record().encode_frame();
        for cut in [3, 9, frame.len() - 1] {
            assert_eq!(
                read_frame(&frame[..cut]).expect("read"),
                Frame::Torn,
                "{cut}"
            );
        }
        for at in [0, 5, 12, frame.len() - 1] {
            let mut flipped = frame.clone();
            flipped[at] ^= 0x40;
            assert_eq!(read_frame(&flipped).expect("read"), Frame::Torn, "{at}");
        }
        assert_eq!(read_frame(&[0, 0, 0]).expect("read"), Frame::End);
    }

    #[test]
    fn the_roll_marker_reads_back_as_such() {
        let marker = JournalRecord::roll_marker_frame();
        assert_eq!(marker.len() as u64, ROLL_MARKER_BYTES);
        assert_eq!(read_frame(&marker).expect("read"), Frame::Roll);
    }

    #[test]
    fn a_checksummed_payload_that_does_not_decode_is_corrupt() {
        let payload = [HAS_HARD_STATE, 200, 0, 0, 0];
        let mut frame = Vec::new();
        put_u32(&mut frame, payload.len());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        assert!(matches!(
            read_frame(&frame),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
