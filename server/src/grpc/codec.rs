//! gRPC message framing: every message on an HTTP/2 stream is a 5-byte prefix (a compressed
//! flag, then the length as a big-endian u32) followed by the protobuf bytes.
//!
//! The decoder is incremental because HTTP/2 DATA frames split and merge messages at will.
//! It enforces the receive limit *before* buffering a message, so a peer announcing a huge
//! length cannot make the server allocate it.

use prost::bytes::{Buf, BufMut, Bytes, BytesMut};

use super::status::{Code, Status};

/// Bytes in a message prefix.
pub const PREFIX_LEN: usize = 5;

/// Frames one encoded protobuf message.
pub fn encode_frame(message: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(PREFIX_LEN + message.len());
    frame.put_u8(0);
    // Responses come from our own messages, bounded far below 4 GiB by the request limits.
    frame.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    frame.put_slice(message);
    frame.freeze()
}

/// Splits a byte stream into gRPC messages.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: BytesMut,
    max_message_bytes: usize,
}

impl FrameDecoder {
    pub fn new(max_message_bytes: usize) -> Self {
        FrameDecoder {
            buffer: BytesMut::new(),
            max_message_bytes,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed, or the status that
    /// must end the call (compressed or oversized message, bad flag).
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buffer.len() < PREFIX_LEN {
            return Ok(None);
        }
        let flag = self.buffer[0];
        let len_bytes = [
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ];
        let len = u32::from_be_bytes(len_bytes) as usize;
        match flag {
            0 => {}
            1 => {
                return Err(Status::new(
                    Code::Unimplemented,
                    "grpc: compressed messages are not supported by this server",
                ));
            }
            other => {
                return Err(Status::new(
                    Code::Internal,
                    format!("grpc: invalid compressed-flag {other} in message prefix"),
                ));
            }
        }
        if len > self.max_message_bytes {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!(
                    "grpc: received message larger than max ({len} vs. {})",
                    self.max_message_bytes
                ),
            ));
        }
        if self.buffer.len() < PREFIX_LEN + len {
            self.buffer.reserve(PREFIX_LEN + len - self.buffer.len());
            return Ok(None);
        }
        self.buffer.advance(PREFIX_LEN);
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// True when bytes of an unfinished message are buffered (the body ended mid-message).
    pub fn has_partial_message(&self) -> bool {
        !self.buffer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_and_merged_across_pushes_come_out_whole() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode_frame(b"hello"));
        wire.extend_from_slice(&encode_frame(b""));
        wire.extend_from_slice(&encode_frame(b"world!"));
        let mut decoder = FrameDecoder::new(64);
        let mut out = Vec::new();
        for chunk in wire.chunks(3) {
            decoder.push(chunk);
            while let Some(message) = decoder.next_message().expect("valid frames") {
                out.push(message);
            }
        }
        assert_eq!(out, vec![&b"hello"[..], &b""[..], &b"world!"[..]]);
        assert!(!decoder.has_partial_message());
    }

    #[test]
    fn compressed_messages_are_unimplemented() {
        let mut decoder = FrameDecoder::new(64);
        decoder.push(&[1, 0, 0, 0, 1, 7]);
        let status = decoder.next_message().expect_err("compressed");
        assert_eq!(status.code, Code::Unimplemented as i32);
    }

    #[test]
    fn oversized_messages_are_refused_before_buffering() {
        let mut decoder = FrameDecoder::new(10);
        decoder.push(&[0, 0, 0, 0, 11]);
        let status = decoder.next_message().expect_err("too large");
        assert_eq!(status.code, Code::ResourceExhausted as i32);
        assert_eq!(
            status.message,
            "grpc: received message larger than max (11 vs. 10)"
        );
        let mut at_limit = FrameDecoder::new(10);
        at_limit.push(&encode_frame(&[9; 10]));
        assert_eq!(
            at_limit.next_message().expect("fits").map(|m| m.len()),
            Some(10)
        );
    }

    #[test]
    fn an_unknown_flag_is_an_internal_error() {
        let mut decoder = FrameDecoder::new(10);
        decoder.push(&[2, 0, 0, 0, 0]);
        assert_eq!(
            decoder.next_message().expect_err("bad flag").code,
            Code::Internal as i32
        );
    }

    #[test]
    fn a_truncated_message_is_reported_as_partial() {
        let mut decoder = FrameDecoder::new(10);
        decoder.push(&[0, 0, 0, 0, 4, 1]);
        assert_eq!(decoder.next_message().expect("incomplete"), None);
        assert!(decoder.has_partial_message());
    }
}
