//! Framing: a u32 big-endian length, then that many bytes of one prost message.
//!
//! The length is checked against a limit before anything is allocated, so a hostile length
//! prefix costs nothing; a body that does not decode is a typed error, never a panic.

use futures::{AsyncRead, AsyncReadExt};
use prost::Message;
use qraft_proto::Bytes;

/// Client request frames: etcd's 1.5 MiB request limit plus the 512 KiB allowance it gives
/// gRPC framing, so a request just over the limit still arrives and gets etcd's error.
pub const CLIENT_REQUEST_FRAME_LIMIT: usize = 1_572_864 + 512 * 1024;
/// Client response frames (ranges can be large; etcd clients accept up to 2 GiB).
pub const CLIENT_RESPONSE_FRAME_LIMIT: usize = 512 * 1024 * 1024;
/// Peer frames: raft messages with batched entries, and snapshot chunks.
pub const PEER_FRAME_LIMIT: usize = 64 * 1024 * 1024;

const HEADER: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("malformed frame: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends `msg` as one frame to `buf` (so several frames can go out in one write).
pub fn encode_frame<M: Message>(msg: &M, buf: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = msg.encoded_len();
    let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge {
        len,
        limit: u32::MAX as usize,
    })?;
    buf.reserve(HEADER + len);
    buf.extend_from_slice(&prefix.to_be_bytes());
    msg.encode(buf)
        .map_err(|_| FrameError::TooLarge { len, limit: len })?;
    Ok(())
}

/// Reads one frame. `Ok(None)` means the stream ended cleanly between frames.
pub async fn read_frame<M, R>(recv: &mut R, limit: usize) -> Result<Option<M>, FrameError>
where
    M: Message + Default,
    R: AsyncRead + Unpin,
{
    Ok(read_sized_frame(recv, limit).await?.map(|(msg, _)| msg))
}

/// As [`read_frame`], with the frame's size on the wire (length prefix included), for the
/// traffic metrics.
pub async fn read_sized_frame<M, R>(
    recv: &mut R,
    limit: usize,
) -> Result<Option<(M, usize)>, FrameError>
where
    M: Message + Default,
    R: AsyncRead + Unpin,
{
    let mut header = [0u8; HEADER];
    let mut filled = 0;
    while filled < HEADER {
        let n = recv.read(&mut header[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        filled += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    Ok(Some((M::decode(Bytes::from(body))?, HEADER + len)))
}

/// Reads frames one after another from one stream, keeping a partly read frame between
/// calls: a [`FrameReader::next`] future dropped before it completes (a timeout, a `select`)
/// loses no byte, and the next call goes on where it stopped. [`read_frame`] keeps its
/// progress in the future itself, so dropping it mid-frame desynchronizes the stream; use
/// this wherever a caller may give up waiting.
#[derive(Debug, Default)]
pub struct FrameReader {
    header: [u8; HEADER],
    header_filled: usize,
    /// The body of the frame being read, once its length is known.
    body: Option<Vec<u8>>,
    body_filled: usize,
}

impl FrameReader {
    /// The next frame, as [`read_frame`]. Cancel-safe: the reads it awaits consume nothing
    /// unless they complete, and what they consumed is kept in `self`.
    pub async fn next<M, R>(&mut self, recv: &mut R, limit: usize) -> Result<Option<M>, FrameError>
    where
        M: Message + Default,
        R: AsyncRead + Unpin,
    {
        while self.header_filled < HEADER {
            let n = recv.read(&mut self.header[self.header_filled..]).await?;
            if n == 0 {
                return if self.header_filled == 0 {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
            self.header_filled += n;
        }
        let len = u32::from_be_bytes(self.header) as usize;
        if len > limit {
            return Err(FrameError::TooLarge { len, limit });
        }
        let body = self.body.get_or_insert_with(|| vec![0u8; len]);
        while self.body_filled < len {
            let n = recv.read(&mut body[self.body_filled..]).await?;
            if n == 0 {
                return Err(FrameError::Truncated);
            }
            self.body_filled += n;
        }
        let body = self.body.take().unwrap_or_default();
        self.header_filled = 0;
        self.body_filled = 0;
        Ok(Some(M::decode(Bytes::from(body))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qraft_proto::qraftpb::PeerHello;

    fn hello(id: u64) -> PeerHello {
        PeerHello {
            cluster_id: 7,
            member_id: id,
            server_version: "3.6.0".into(),
        }
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut buf = Vec::new();
        for id in 1..=3 {
            encode_frame(&hello(id), &mut buf).unwrap();
        }
        let mut src = buf.as_slice();
        crate::runtime::block_on(async {
            for id in 1..=3 {
                let got: PeerHello = read_frame(&mut src, 1024).await.unwrap().unwrap();
                assert_eq!(got, hello(id));
            }
            assert!(
                read_frame::<PeerHello, _>(&mut src, 1024)
                    .await
                    .unwrap()
                    .is_none()
            );
        });
    }

    #[test]
    fn oversized_length_is_rejected_before_reading_the_body() {
        let mut src: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        let err = crate::runtime::block_on(read_frame::<PeerHello, _>(&mut src, 1024)).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                len: 0xffff_ffff,
                limit: 1024
            }
        ));
    }

    #[test]
    fn garbage_body_is_a_decode_error_and_short_input_is_truncated() {
        let mut src: &[u8] = &[0, 0, 0, 3, 0xff, 0xff, 0xff];
        let err = crate::runtime::block_on(read_frame::<PeerHello, _>(&mut src, 1024)).unwrap_err();
        assert!(matches!(err, FrameError::Decode(_)), "{err}");
        let mut src: &[u8] = &[0, 0, 0, 9, 1];
        let err = crate::runtime::block_on(read_frame::<PeerHello, _>(&mut src, 1024)).unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
        let mut src: &[u8] = &[0, 0];
        let err = crate::runtime::block_on(read_frame::<PeerHello, _>(&mut src, 1024)).unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
    }

    /// A reader that hands out one byte per read and is pending before every other read, so a
    /// frame takes many polls to arrive.
    struct Trickle<'a> {
        bytes: &'a [u8],
        ready: bool,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            if !self.ready {
                self.ready = true;
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            self.ready = false;
            let n = self.bytes.len().min(buf.len()).min(1);
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn a_frame_reader_dropped_mid_frame_loses_nothing() {
        use futures::FutureExt;
        let mut buf = Vec::new();
        for id in 1..=3 {
            encode_frame(&hello(id), &mut buf).unwrap();
        }
        let mut src = Trickle {
            bytes: &buf,
            ready: false,
        };
        let mut reader = FrameReader::default();
        let mut got = Vec::new();
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        // Each attempt is polled twice and then dropped, as a short timeout would.
        for _ in 0..10 * buf.len() {
            let mut next = Box::pin(reader.next::<PeerHello, _>(&mut src, 1024));
            for _ in 0..2 {
                if let std::task::Poll::Ready(frame) = next.poll_unpin(&mut cx) {
                    match frame.unwrap() {
                        Some(hello) => got.push(hello),
                        None => break,
                    }
                    break;
                }
            }
        }
        assert_eq!(got, vec![hello(1), hello(2), hello(3)]);
    }
}
