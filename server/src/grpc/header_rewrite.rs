//! Sits between a client connection and hyper's HTTP/2 server and rewrites the header blocks
//! the client sends, so requests that etcd (grpc-go) accepts are not refused by the h2 crate.
//!
//! The case that needs it: etcdctl 3.4's per-endpoint calls (`endpoint status`, `endpoint
//! hashkv`, `defrag`, `move-leader`) send `:authority` = `http://host:port`. grpc-go ignores
//! the authority; h2 parses it as a URI authority and resets the stream with PROTOCOL_ERROR.
//! Here the scheme (and any path) is cut off; an authority that still does not parse is
//! dropped, which HTTP/2 allows.
//!
//! HPACK blocks cannot be edited in place: a field may come from, or be added to, the dynamic
//! table both ends keep. So every client block (HEADERS + CONTINUATIONs) is decoded with the
//! client's table ([`Decoder`]). While no block has needed a fix, each passes to hyper byte
//! for byte, so hyper's table stays the client's and hyper decodes indexed fields cheaply
//! (the clients that never send a bad `:authority` — nearly all — pay only for the decoding
//! here). From the first block that needs a fix on, every block is re-encoded as plain
//! literals that never use hyper's dynamic table: what is left in it goes stale but is never
//! read again, so it can never disagree with the client's.
//! Every other frame, and the server-to-client direction, passes through byte for byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::AsyncRead;
use hyper::http::uri::Authority;

use super::hpack::{self, Decoder, Field};

const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The smallest SETTINGS_MAX_FRAME_SIZE a peer may announce: re-encoded blocks are split into
/// frames no larger, so whatever hyper announced, they fit.
const MIN_MAX_FRAME_SIZE: usize = 16_384;
/// hyper's decoder table size: the server announces no SETTINGS_HEADER_TABLE_SIZE, so the
/// client may use the protocol's default.
const HEADER_TABLE_SIZE: usize = 4096;
/// Compressed bytes of one header block, and what it may decode to. Far above what gRPC
/// clients send, far below what could hurt.
const MAX_BLOCK_BYTES: usize = 256 * 1024;
const MAX_DECODED_BYTES: usize = 1024 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// A header block being collected from HEADERS and CONTINUATION frames.
struct PendingBlock {
    stream_id: [u8; 4],
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The block's frames as the client sent them (headers and payloads).
    raw: Vec<u8>,
}

enum State {
    FrameHeader {
        header: [u8; FRAME_HEADER_LEN],
        len: usize,
    },
    /// The connection preface, or the payload of any frame other than HEADERS/CONTINUATION:
    /// copied as it arrives.
    PassThrough { left: usize },
    /// A HEADERS or CONTINUATION payload, collected whole.
    HeaderPayload {
        header: [u8; FRAME_HEADER_LEN],
        payload: Vec<u8>,
        left: usize,
    },
}

/// The client-to-server byte stream's rewriter: bytes in, rewritten bytes out.
pub struct Rewriter {
    state: State,
    pending: Option<PendingBlock>,
    decoder: Decoder,
    /// A block needed a fix: from then on every block is re-encoded as literals.
    rewriting: bool,
}

impl Default for Rewriter {
    fn default() -> Self {
        Rewriter {
            state: State::PassThrough { left: PREFACE_LEN },
            pending: None,
            decoder: Decoder::new(HEADER_TABLE_SIZE, MAX_DECODED_BYTES),
            rewriting: false,
        }
    }
}

fn protocol_error(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl Rewriter {
    /// Feeds bytes the client sent; appends what hyper should read to `out`. An error means
    /// the connection is broken beyond repair (bad HPACK, bad framing) and must close.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !input.is_empty() {
            match &mut self.state {
                State::PassThrough { left } => {
                    let n = (*left).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *left -= n;
                    if *left == 0 {
                        self.state = State::FrameHeader {
                            header: [0; FRAME_HEADER_LEN],
                            len: 0,
                        };
                    }
                }
                State::FrameHeader { header, len } => {
                    let n = (FRAME_HEADER_LEN - *len).min(input.len());
                    header[*len..*len + n].copy_from_slice(&input[..n]);
                    *len += n;
                    input = &input[n..];
                    if *len == FRAME_HEADER_LEN {
                        let header = *header;
                        self.on_frame_header(header, out)?;
                    }
                }
                State::HeaderPayload {
                    header,
                    payload,
                    left,
                } => {
                    let n = (*left).min(input.len());
                    payload.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *left -= n;
                    if *left == 0 {
                        let header = *header;
                        let payload = std::mem::take(payload);
                        self.state = State::FrameHeader {
                            header: [0; FRAME_HEADER_LEN],
                            len: 0,
                        };
                        self.on_header_frame(header, &payload, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_frame_header(
        &mut self,
        header: [u8; FRAME_HEADER_LEN],
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let len =
            (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2]);
        let kind = header[3];
        if self.pending.is_some() && kind != CONTINUATION {
            return Err(protocol_error("header block interrupted by another frame"));
        }
        if kind == HEADERS || kind == CONTINUATION {
            if len > MAX_BLOCK_BYTES {
                return Err(protocol_error("header frame too large"));
            }
            self.state = State::HeaderPayload {
                header,
                payload: Vec::with_capacity(len),
                left: len,
            };
            if len == 0 {
                self.state = State::FrameHeader {
                    header: [0; FRAME_HEADER_LEN],
                    len: 0,
                };
                self.on_header_frame(header, &[], out)?;
            }
            return Ok(());
        }
        out.extend_from_slice(&header);
        self.state = if len == 0 {
            State::FrameHeader {
                header: [0; FRAME_HEADER_LEN],
                len: 0,
            }
        } else {
            State::PassThrough { left: len }
        };
        Ok(())
    }

    fn on_header_frame(
        &mut self,
        header: [u8; FRAME_HEADER_LEN],
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let (kind, flags) = (header[3], header[4]);
        let stream_id = [header[5], header[6], header[7], header[8]];
        let fragment = if kind == HEADERS {
            if self.pending.is_some() {
                return Err(protocol_error("HEADERS inside a header block"));
            }
            let mut body = payload;
            let mut pad = 0usize;
            if flags & PADDED != 0 {
                let (&pad_len, rest) = body
                    .split_first()
                    .ok_or_else(|| protocol_error("PADDED HEADERS without pad length"))?;
                pad = usize::from(pad_len);
                body = rest;
            }
            let priority = if flags & PRIORITY != 0 {
                if body.len() < 5 {
                    return Err(protocol_error("HEADERS priority truncated"));
                }
                let (p, rest) = body.split_at(5);
                body = rest;
                Some([p[0], p[1], p[2], p[3], p[4]])
            } else {
                None
            };
            if pad > body.len() {
                return Err(protocol_error("HEADERS padding longer than its payload"));
            }
            self.pending = Some(PendingBlock {
                stream_id,
                end_stream: flags & END_STREAM != 0,
                priority,
                fragment: Vec::new(),
                raw: Vec::new(),
            });
            &body[..body.len() - pad]
        } else {
            match &self.pending {
                Some(block) if block.stream_id == stream_id => payload,
                _ => return Err(protocol_error("CONTINUATION without its HEADERS")),
            }
        };
        let Some(block) = self.pending.as_mut() else {
            return Err(protocol_error("header block lost"));
        };
        // The raw frames too: empty CONTINUATIONs grow them without growing the fragment.
        if block.fragment.len() + fragment.len() > MAX_BLOCK_BYTES
            || block.raw.len() + FRAME_HEADER_LEN + payload.len() > 2 * MAX_BLOCK_BYTES
        {
            return Err(protocol_error("header block too large"));
        }
        block.fragment.extend_from_slice(fragment);
        block.raw.extend_from_slice(&header);
        block.raw.extend_from_slice(payload);
        if flags & END_HEADERS == 0 {
            return Ok(());
        }
        let Some(block) = self.pending.take() else {
            return Err(protocol_error("header block lost"));
        };
        let mut fields = self
            .decoder
            .decode(&block.fragment)
            .map_err(|error| protocol_error(format!("HPACK: {error}")))?;
        self.rewriting |= fix_authority(&mut fields);
        if self.rewriting {
            write_block(&block, &hpack::encode_literals(&fields), out);
        } else {
            out.extend_from_slice(&block.raw);
        }
        Ok(())
    }
}

/// Cuts `scheme://` and any path off `:authority`, and drops it when what is left is still
/// not a valid authority (grpc-go, and so etcd, ignores it either way). True when it changed
/// something.
fn fix_authority(fields: &mut Vec<Field>) -> bool {
    let mut fixed = false;
    fields.retain_mut(|(name, value)| {
        if name.as_slice() != b":authority" || Authority::try_from(value.as_slice()).is_ok() {
            return true;
        }
        fixed = true;
        let text = String::from_utf8_lossy(value);
        let without_scheme = text.split_once("://").map_or(&*text, |(_, rest)| rest);
        let host = without_scheme.split('/').next().unwrap_or_default();
        if host.is_empty() || Authority::try_from(host).is_err() {
            return false;
        }
        *value = host.as_bytes().to_vec();
        true
    });
    fixed
}

/// Writes a HEADERS frame (flags END_STREAM and PRIORITY as the client set them, no padding)
/// and as many CONTINUATIONs as the block needs.
fn write_block(block: &PendingBlock, encoded: &[u8], out: &mut Vec<u8>) {
    let priority_len = if block.priority.is_some() { 5 } else { 0 };
    let first_room = MIN_MAX_FRAME_SIZE - priority_len;
    let (first, mut rest) = encoded.split_at(encoded.len().min(first_room));
    let mut flags = if block.end_stream { END_STREAM } else { 0 };
    if block.priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    write_frame_header(
        out,
        priority_len + first.len(),
        HEADERS,
        flags,
        block.stream_id,
    );
    if let Some(priority) = block.priority {
        out.extend_from_slice(&priority);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MIN_MAX_FRAME_SIZE));
        rest = tail;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        write_frame_header(out, chunk.len(), CONTINUATION, flags, block.stream_id);
        out.extend_from_slice(chunk);
    }
}

fn write_frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream_id: [u8; 4]) {
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&stream_id);
}

/// A connection whose read side goes through a [`Rewriter`]; writes pass straight through.
pub struct HeaderRewrite<S> {
    inner: S,
    rewriter: Rewriter,
    /// Rewritten bytes not yet read by hyper; refilled only when empty, so it stays within
    /// one read chunk plus the growth of the blocks in it.
    out: Vec<u8>,
    out_pos: usize,
    scratch: Vec<u8>,
}

impl<S> HeaderRewrite<S> {
    pub fn new(inner: S) -> Self {
        HeaderRewrite {
            inner,
            rewriter: Rewriter::default(),
            out: Vec::new(),
            out_pos: 0,
            scratch: vec![0; READ_CHUNK],
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeaderRewrite<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.len());
                buf[..n].copy_from_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                return Poll::Ready(Ok(n));
            }
            this.out.clear();
            this.out_pos = 0;
            let n = match Pin::new(&mut this.inner).poll_read(cx, &mut this.scratch) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            this.rewriter.feed(&this.scratch[..n], &mut this.out)?;
        }
    }
}

super::writes_pass_through!(HeaderRewrite);

#[cfg(test)]
mod tests {
    use super::*;

    const PREFACE: &[u8; PREFACE_LEN] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        write_frame_header(&mut f, payload.len(), kind, flags, [0, 0, 0, stream]);
        f.extend_from_slice(payload);
        f
    }

    fn fields(list: &[(&str, &str)]) -> Vec<Field> {
        list.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    /// Splits the rewriter's output into frames: (kind, flags, stream, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = (usize::from(bytes[0]) << 16)
                | (usize::from(bytes[1]) << 8)
                | usize::from(bytes[2]);
            out.push((bytes[3], bytes[4], bytes[8], bytes[9..9 + len].to_vec()));
            bytes = &bytes[9 + len..];
        }
        out
    }

    fn run(input: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
        let mut rewriter = Rewriter::default();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            rewriter.feed(piece, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn a_url_authority_becomes_host_and_port_and_other_frames_pass_through() {
        // HPACK: :method POST (static 3), then literal :authority with incremental indexing
        // (static name 1), then in a second block the same authority from the dynamic table.
        let authority = b"http://127.0.0.1:2379";
        let mut block = vec![0x83, 0x41, authority.len() as u8];
        block.extend_from_slice(authority);
        let mut input = PREFACE.to_vec();
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        input.extend_from_slice(&settings);
        // Split across HEADERS + CONTINUATION, padded, with priority.
        let mut headers_payload = vec![2u8];
        headers_payload.extend_from_slice(&[0, 0, 0, 0, 15]);
        headers_payload.extend_from_slice(&block[..4]);
        headers_payload.extend_from_slice(&[0, 0]);
        input.extend(frame(HEADERS, PADDED | PRIORITY, 1, &headers_payload));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, &block[4..]));
        let data = frame(0x0, END_STREAM, 1, b"\0\0\0\0\0");
        input.extend_from_slice(&data);
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &[0x83, 0xbe]));
        for chunk in [1, 7, input.len()] {
            let out = run(&input, chunk).expect("valid stream");
            assert_eq!(&out[..PREFACE_LEN], PREFACE);
            let got = frames(&out[PREFACE_LEN..]);
            assert_eq!(got.len(), 4);
            assert_eq!(got[0], (0x4, 0, 0, settings[9..].to_vec()));
            let (kind, flags, stream, payload) = &got[1];
            assert_eq!(
                (*kind, *flags, *stream),
                (HEADERS, PRIORITY | END_HEADERS, 1)
            );
            assert_eq!(payload[..5], [0, 0, 0, 0, 15]);
            let expected = fields(&[(":method", "POST"), (":authority", "127.0.0.1:2379")]);
            let mut check = Decoder::new(4096, 1 << 20);
            assert_eq!(check.decode(&payload[5..]).expect("literals"), expected);
            assert_eq!(got[2], (0x0, END_STREAM, 1, data[9..].to_vec()));
            let (kind, flags, stream, payload) = &got[3];
            assert_eq!(
                (*kind, *flags, *stream),
                (HEADERS, END_HEADERS | END_STREAM, 3)
            );
            assert_eq!(check.decode(payload).expect("literals"), expected);
        }
    }

    #[test]
    fn large_blocks_are_split_into_continuations() {
        let big = "x".repeat(40_000);
        let block =
            hpack::encode_literals(&fields(&[(":authority", "http://h:1"), ("x-big", &big)]));
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, &block[..10_000]));
        for piece in block[10_000..].chunks(10_000) {
            input.extend(frame(CONTINUATION, 0, 1, piece));
        }
        input.extend(frame(CONTINUATION, END_HEADERS, 1, &[]));
        let out = run(&input, 4096).expect("valid");
        let got = frames(&out[PREFACE_LEN..]);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|f| f.3.len() <= MIN_MAX_FRAME_SIZE));
        assert_eq!(got[0].0, HEADERS);
        assert_eq!((got[1].0, got[1].1), (CONTINUATION, 0));
        assert_eq!((got[2].0, got[2].1), (CONTINUATION, END_HEADERS));
        let joined: Vec<u8> = got.iter().flat_map(|f| f.3.clone()).collect();
        assert_eq!(
            Decoder::new(4096, 1 << 20).decode(&joined).expect("block"),
            fields(&[(":authority", "h:1"), ("x-big", &big)])
        );
    }

    #[test]
    fn blocks_pass_unchanged_until_one_needs_a_fix_and_are_literals_after() {
        // Block 1 adds a valid authority to the dynamic table (index 62), block 2 uses it:
        // both pass byte for byte, so hyper's table stays the client's.
        let good = b"127.0.0.1:2379";
        let mut first = vec![0x83, 0x41, good.len() as u8];
        first.extend_from_slice(good);
        let passing = [
            frame(HEADERS, END_HEADERS, 1, &first),
            frame(HEADERS, END_HEADERS | END_STREAM, 3, &[0x83, 0xbe]),
        ]
        .concat();
        // Block 3 adds a URL authority (now index 62, the good one 63) and needs the fix;
        // block 4 refers to the good one by index, which hyper's stale table must not serve.
        let bad = b"http://h:1";
        let mut third = vec![0x83, 0x41, bad.len() as u8];
        third.extend_from_slice(bad);
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(&passing);
        input.extend(frame(HEADERS, END_HEADERS, 5, &third));
        input.extend(frame(HEADERS, END_HEADERS, 7, &[0x83, 0xbf]));
        for chunk in [1, 5, input.len()] {
            let out = run(&input, chunk).expect("valid stream");
            let after_preface = &out[PREFACE_LEN..];
            assert_eq!(&after_preface[..passing.len()], &passing[..]);
            let got = frames(&after_preface[passing.len()..]);
            assert_eq!(got.len(), 2);
            let mut fresh = Decoder::new(4096, 1 << 20);
            assert_eq!(
                fresh.decode(&got[0].3).expect("literals"),
                fields(&[(":method", "POST"), (":authority", "h:1")])
            );
            assert_eq!(
                fresh.decode(&got[1].3).expect("literals, no table"),
                fields(&[(":method", "POST"), (":authority", "127.0.0.1:2379")])
            );
        }
    }

    #[test]
    fn authorities_are_kept_fixed_or_dropped() {
        for (sent, kept) in [
            ("127.0.0.1:2379", Some("127.0.0.1:2379")),
            ("localhost", Some("localhost")),
            ("http://127.0.0.1:2379", Some("127.0.0.1:2379")),
            ("https://[::1]:2379/", Some("[::1]:2379")),
            ("unix://", None),
            ("http://bad host", None),
        ] {
            let mut list = fields(&[(":path", "/x"), (":authority", sent)]);
            fix_authority(&mut list);
            let got = list
                .iter()
                .find(|(n, _)| n == b":authority")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
            assert_eq!(got.as_deref(), kept, "{sent}");
            assert_eq!(list[0].0, b":path");
        }
    }

    #[test]
    fn broken_framing_and_hpack_close_the_connection() {
        let mut interrupted = PREFACE.to_vec();
        interrupted.extend(frame(HEADERS, 0, 1, &[0x83]));
        interrupted.extend(frame(0x0, 0, 1, b"x"));
        assert!(run(&interrupted, 64).is_err());
        let mut orphan = PREFACE.to_vec();
        orphan.extend(frame(CONTINUATION, END_HEADERS, 1, &[0x83]));
        assert!(run(&orphan, 64).is_err());
        let mut bad_index = PREFACE.to_vec();
        bad_index.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0x00]));
        assert!(run(&bad_index, 64).is_err());
    }
}
