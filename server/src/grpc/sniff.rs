//! Tells HTTP/2 from HTTP/1.1 on a client connection, as etcd's connection multiplexer does:
//! an HTTP/2 client starts with the fixed connection preface, anything else is HTTP/1.1. The
//! bytes read to decide are replayed to whichever server takes the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncReadExt};

/// RFC 9113 3.4.
pub const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http2,
    Http1,
}

/// Reads until the bytes either are the whole HTTP/2 preface or stop matching it (or the
/// client closes), and returns the stream with those bytes put back in front.
pub async fn sniff<S: AsyncRead + Unpin>(mut stream: S) -> io::Result<(Prefixed<S>, Protocol)> {
    let mut seen = Vec::with_capacity(HTTP2_PREFACE.len());
    let mut buf = [0u8; 24];
    let protocol = loop {
        let want = HTTP2_PREFACE.len() - seen.len();
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            break Protocol::Http1;
        }
        seen.extend_from_slice(&buf[..n]);
        if !HTTP2_PREFACE.starts_with(&seen) {
            break Protocol::Http1;
        }
        if seen.len() == HTTP2_PREFACE.len() {
            break Protocol::Http2;
        }
    };
    Ok((
        Prefixed {
            prefix: seen,
            pos: 0,
            inner: stream,
        },
        protocol,
    ))
}

/// A stream whose first reads return `prefix`.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.len());
            buf[..n].copy_from_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

super::writes_pass_through!(Prefixed);

#[cfg(test)]
mod tests {
    use super::*;

    fn sniffed(input: &[u8]) -> (Protocol, Vec<u8>) {
        futures::executor::block_on(async {
            let (mut stream, protocol) = sniff(futures::io::Cursor::new(input.to_vec()))
                .await
                .expect("sniff");
            let mut all = Vec::new();
            stream.read_to_end(&mut all).await.expect("replay");
            (protocol, all)
        })
    }

    #[test]
    fn the_preface_means_http2_and_every_byte_is_replayed() {
        let mut h2 = HTTP2_PREFACE.to_vec();
        h2.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(sniffed(&h2), (Protocol::Http2, h2.clone()));
        let h1 = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert_eq!(sniffed(&h1), (Protocol::Http1, h1.clone()));
        // "PRI" alone, then the client closes: not HTTP/2.
        assert_eq!(sniffed(b"PRI"), (Protocol::Http1, b"PRI".to_vec()));
        let post = b"POST /v3/kv/range HTTP/1.1\r\n\r\n{}".to_vec();
        assert_eq!(sniffed(&post), (Protocol::Http1, post.clone()));
    }
}
