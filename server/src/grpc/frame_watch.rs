//! Watches the HTTP/2 frames a gRPC client sends, without changing them, for what hyper does
//! not enforce: that the connection preface arrives in time, and grpc-go's keep-alive
//! enforcement policy (etcd's `--grpc-keepalive-min-time`): a client that pings more often than
//! the minimum time more than [`MAX_PING_STRIKES`] times in a row is disconnected.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::AsyncRead;

/// grpc-go's `maxPingStrikes`.
pub const MAX_PING_STRIKES: u32 = 2;
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;

/// What the watcher learned, read by the connection's watchdog.
#[derive(Debug, Default)]
pub struct Observed {
    /// The preface and a first frame header arrived.
    pub started: AtomicBool,
    /// The client pinged too often.
    pub too_many_pings: AtomicBool,
}

/// A frame-by-frame parser of the client-to-server byte stream.
struct Parser {
    min_ping_interval: Duration,
    preface_left: usize,
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    payload_left: usize,
    last_ping: Option<Instant>,
    strikes: u32,
}

impl Parser {
    fn feed(&mut self, mut bytes: &[u8], now: Instant, observed: &Observed) {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(bytes.len());
                self.preface_left -= n;
                bytes = &bytes[n..];
            } else if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                self.payload_left -= n;
                bytes = &bytes[n..];
            } else {
                let n = (FRAME_HEADER_LEN - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                bytes = &bytes[n..];
                if self.header_len == FRAME_HEADER_LEN {
                    self.header_len = 0;
                    let h = self.header;
                    self.payload_left =
                        (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                    observed.started.store(true, Ordering::Release);
                    self.on_frame(h[3], h[4], now, observed);
                }
            }
        }
    }

    fn on_frame(&mut self, kind: u8, flags: u8, now: Instant, observed: &Observed) {
        match kind {
            // Traffic forgives earlier pings, as grpc-go's reset on every data or headers frame.
            DATA | HEADERS => self.strikes = 0,
            PING if flags & ACK == 0 => {
                if self
                    .last_ping
                    .is_some_and(|last| now.duration_since(last) < self.min_ping_interval)
                {
                    self.strikes += 1;
                    if self.strikes > MAX_PING_STRIKES {
                        observed.too_many_pings.store(true, Ordering::Release);
                    }
                }
                self.last_ping = Some(now);
            }
            _ => {}
        }
    }
}

/// The connection's stream with the parser on its read side.
pub struct FrameWatch<S> {
    inner: S,
    parser: Parser,
    observed: Arc<Observed>,
}

impl<S> FrameWatch<S> {
    pub fn new(inner: S, min_ping_interval: Duration) -> (Self, Arc<Observed>) {
        let observed = Arc::new(Observed::default());
        let watch = FrameWatch {
            inner,
            parser: Parser {
                min_ping_interval,
                preface_left: PREFACE_LEN,
                header: [0; FRAME_HEADER_LEN],
                header_len: 0,
                payload_left: 0,
                last_ping: None,
                strikes: 0,
            },
            observed: observed.clone(),
        };
        (watch, observed)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameWatch<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.parser.feed(&buf[..n], Instant::now(), &this.observed);
        }
        result
    }
}

super::writes_pass_through!(FrameWatch);

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    fn parser() -> (Parser, Observed) {
        let (watch, _) = FrameWatch::new((), Duration::from_secs(5));
        (watch.parser, Observed::default())
    }

    #[test]
    fn started_only_after_the_preface_and_a_frame_header() {
        let (mut p, seen) = parser();
        let t = Instant::now();
        p.feed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", t, &seen);
        assert!(!seen.started.load(Ordering::Acquire));
        let settings = frame(0x4, 0, &[0; 6]);
        // Split anywhere, byte by byte.
        for b in &settings {
            p.feed(std::slice::from_ref(b), t, &seen);
        }
        assert!(seen.started.load(Ordering::Acquire));
    }

    #[test]
    fn pings_faster_than_the_minimum_strike_out_after_two_strikes() {
        let (mut p, seen) = parser();
        let t = Instant::now();
        p.feed(&[0u8; PREFACE_LEN], t, &seen);
        let ping = frame(PING, 0, &[0; 8]);
        let ack = frame(PING, ACK, &[0; 8]);
        for i in 0..3 {
            p.feed(&ping, t + Duration::from_secs(i), &seen);
            p.feed(&ack, t + Duration::from_secs(i), &seen);
        }
        assert!(!seen.too_many_pings.load(Ordering::Acquire), "two strikes");
        p.feed(&ping, t + Duration::from_secs(3), &seen);
        assert!(seen.too_many_pings.load(Ordering::Acquire), "third strike");

        let (mut p, seen) = parser();
        p.feed(&[0u8; PREFACE_LEN], t, &seen);
        for i in 0..10 {
            p.feed(&ping, t + Duration::from_secs(5 * i), &seen);
        }
        assert!(
            !seen.too_many_pings.load(Ordering::Acquire),
            "pings at min-time"
        );

        let (mut p, seen) = parser();
        p.feed(&[0u8; PREFACE_LEN], t, &seen);
        for i in 0..10 {
            p.feed(
                &frame(HEADERS, 0x4, &[0; 3]),
                t + Duration::from_secs(i),
                &seen,
            );
            p.feed(&ping, t + Duration::from_secs(i), &seen);
        }
        assert!(
            !seen.too_many_pings.load(Ordering::Acquire),
            "traffic resets"
        );
    }
}
