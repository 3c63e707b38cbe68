//! gRPC message framing: every message on an HTTP/2 stream is a 5-byte prefix (a compressed
//! flag, then the length as a big-endian u32) followed by the protobuf bytes, gzip-compressed
//! when the flag is 1 and the call's `grpc-encoding` is `gzip`.
//!
//! The decoder is incremental because HTTP/2 DATA frames split and merge messages at will.
//! It enforces the receive limit *before* buffering a message, so a peer announcing a huge
//! length cannot make the server allocate it, and again while inflating one, so a small
//! compressed message cannot expand past it either.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use prost::bytes::{Buf, BufMut, Bytes, BytesMut};

use super::status::{Code, Status};

/// Bytes in a message prefix.
pub const PREFIX_LEN: usize = 5;

/// A call's message encoding (`grpc-encoding`): the only compressor served is gzip, the one
/// every gRPC implementation ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEncoding {
    Identity,
    Gzip,
}

impl MessageEncoding {
    /// The encoding a request's `grpc-encoding` header names (absent = identity), or the
    /// status grpc-go answers for one it has no decompressor for.
    pub fn from_header(value: Option<&[u8]>) -> Result<Self, Status> {
        match value {
            None | Some(b"identity") => Ok(MessageEncoding::Identity),
            Some(b"gzip") => Ok(MessageEncoding::Gzip),
            Some(other) => Err(Status::new(
                Code::Unimplemented,
                format!(
                    "grpc: Decompressor is not installed for grpc-encoding {:?}",
                    String::from_utf8_lossy(other)
                ),
            )),
        }
    }
}

/// Frames one encoded protobuf message; compressed (flag 1) under gzip, as grpc-go answers a
/// call whose request was compressed.
pub fn encode_frame(message: &[u8], encoding: MessageEncoding) -> Bytes {
    let compressed;
    let (flag, payload) = match encoding {
        MessageEncoding::Identity => (0, message),
        MessageEncoding::Gzip => {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            // Writing into a Vec cannot fail.
            compressed = encoder
                .write_all(message)
                .and_then(|()| encoder.finish())
                .unwrap_or_default();
            (1, compressed.as_slice())
        }
    };
    let mut frame = BytesMut::with_capacity(PREFIX_LEN + payload.len());
    frame.put_u8(flag);
    // Responses come from our own messages, bounded far below 4 GiB by the request limits.
    frame.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    frame.put_slice(payload);
    frame.freeze()
}

/// Splits a byte stream into gRPC messages.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: BytesMut,
    max_message_bytes: usize,
    encoding: MessageEncoding,
}

impl FrameDecoder {
    pub fn new(max_message_bytes: usize, encoding: MessageEncoding) -> Self {
        FrameDecoder {
            buffer: BytesMut::new(),
            max_message_bytes,
            encoding,
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
            1 if self.encoding == MessageEncoding::Gzip => {}
            1 => {
                return Err(Status::new(
                    Code::Internal,
                    "grpc: compressed flag set with identity or empty encoding",
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
        let message = self.buffer.split_to(len).freeze();
        if flag == 0 {
            return Ok(Some(message));
        }
        self.inflate(&message).map(Some)
    }

    /// Inflates a gzip message, reading at most one byte past the limit to detect overflow.
    fn inflate(&self, compressed: &[u8]) -> Result<Bytes, Status> {
        let limit = self.max_message_bytes as u64 + 1;
        let mut out = Vec::new();
        GzDecoder::new(compressed)
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|error| {
                Status::new(
                    Code::Internal,
                    format!("grpc: failed to decompress the received message: {error}"),
                )
            })?;
        if out.len() > self.max_message_bytes {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!(
                    "grpc: received message after decompression larger than max ({} vs. {})",
                    out.len(),
                    self.max_message_bytes
                ),
            ));
        }
        Ok(Bytes::from(out))
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
        wire.extend_from_slice(&encode_frame(b"hello", MessageEncoding::Identity));
        wire.extend_from_slice(&encode_frame(b"", MessageEncoding::Identity));
        wire.extend_from_slice(&encode_frame(b"world!", MessageEncoding::Identity));
        let mut decoder = FrameDecoder::new(64, MessageEncoding::Identity);
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
    fn compressed_messages_need_the_gzip_encoding() {
        let mut decoder = FrameDecoder::new(64, MessageEncoding::Identity);
        decoder.push(&[1, 0, 0, 0, 1, 7]);
        let status = decoder.next_message().expect_err("compressed");
        assert_eq!(status.code, Code::Internal as i32);
        assert_eq!(
            status.message,
            "grpc: compressed flag set with identity or empty encoding"
        );
        let status = MessageEncoding::from_header(Some(b"snappy")).expect_err("unknown");
        assert_eq!(status.code, Code::Unimplemented as i32);
        assert_eq!(
            status.message,
            "grpc: Decompressor is not installed for grpc-encoding \"snappy\""
        );
    }

    #[test]
    fn gzip_messages_round_trip_and_mix_with_uncompressed_ones() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode_frame(b"hello hello hello", MessageEncoding::Gzip));
        wire.extend_from_slice(&encode_frame(b"plain", MessageEncoding::Identity));
        assert_eq!(wire[0], 1);
        let mut decoder = FrameDecoder::new(64, MessageEncoding::Gzip);
        decoder.push(&wire);
        assert_eq!(
            decoder.next_message().expect("gzip"),
            Some(Bytes::from_static(b"hello hello hello"))
        );
        assert_eq!(
            decoder.next_message().expect("plain"),
            Some(Bytes::from_static(b"plain"))
        );
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit_and_garbage_is_an_error() {
        let big = vec![0u8; 100_000];
        let frame = encode_frame(&big, MessageEncoding::Gzip);
        assert!(frame.len() < 1000, "zeros compress well");
        let mut decoder = FrameDecoder::new(10_000, MessageEncoding::Gzip);
        decoder.push(&frame);
        let status = decoder.next_message().expect_err("too large inflated");
        assert_eq!(status.code, Code::ResourceExhausted as i32);
        assert_eq!(
            status.message,
            "grpc: received message after decompression larger than max (10001 vs. 10000)"
        );
        let mut garbage = FrameDecoder::new(64, MessageEncoding::Gzip);
        garbage.push(&[1, 0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(
            garbage.next_message().expect_err("not gzip").code,
            Code::Internal as i32
        );
    }

    #[test]
    fn oversized_messages_are_refused_before_buffering() {
        let mut decoder = FrameDecoder::new(10, MessageEncoding::Identity);
        decoder.push(&[0, 0, 0, 0, 11]);
        let status = decoder.next_message().expect_err("too large");
        assert_eq!(status.code, Code::ResourceExhausted as i32);
        assert_eq!(
            status.message,
            "grpc: received message larger than max (11 vs. 10)"
        );
        let mut at_limit = FrameDecoder::new(10, MessageEncoding::Identity);
        at_limit.push(&encode_frame(&[9; 10], MessageEncoding::Identity));
        assert_eq!(
            at_limit.next_message().expect("fits").map(|m| m.len()),
            Some(10)
        );
    }

    #[test]
    fn an_unknown_flag_is_an_internal_error() {
        let mut decoder = FrameDecoder::new(10, MessageEncoding::Identity);
        decoder.push(&[2, 0, 0, 0, 0]);
        assert_eq!(
            decoder.next_message().expect_err("bad flag").code,
            Code::Internal as i32
        );
    }

    #[test]
    fn a_truncated_message_is_reported_as_partial() {
        let mut decoder = FrameDecoder::new(10, MessageEncoding::Identity);
        decoder.push(&[0, 0, 0, 0, 4, 1]);
        assert_eq!(decoder.next_message().expect("incomplete"), None);
        assert!(decoder.has_partial_message());
    }
}
