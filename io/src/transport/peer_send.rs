//! The sending half of the peer transport: one writer task per peer, plus a task per snapshot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use prometheus_client::metrics::histogram::Histogram;
use qraft_proto::qraftpb::{PeerFrame, peer_frame};
use qraft_proto::raftpb::{Message, MessageType};

use super::peer::{PeerAddr, PeerEvent, Shared, lock};
use super::{Backoff, TransportError, codes, encode_frame};
use crate::runtime;

/// Owns the connection to one peer; writers and snapshot senders share it.
pub(super) struct Dialer {
    shared: Arc<Shared>,
    pub id: u64,
    addr: Mutex<PeerAddr>,
    conn: futures::lock::Mutex<Option<quinn::Connection>>,
    /// The peer left this member's configuration: nothing dials it again.
    retired: AtomicBool,
}

impl Dialer {
    pub fn new(shared: Arc<Shared>, id: u64, addr: PeerAddr) -> Self {
        Self {
            shared,
            id,
            addr: Mutex::new(addr),
            conn: futures::lock::Mutex::new(None),
            retired: AtomicBool::new(false),
        }
    }

    pub fn set_addr(&self, addr: PeerAddr) {
        let changed = {
            let mut current = lock(&self.addr);
            let changed = *current != addr;
            *current = addr;
            changed
        };
        if changed {
            self.close();
        }
    }

    /// Closes the current connection; the next send dials again.
    pub fn close(&self) {
        if let Some(mut guard) = self.conn.try_lock()
            && let Some(conn) = guard.take()
        {
            conn.close(codes::SHUTDOWN, b"peer removed or moved");
        }
    }

    /// The peer was removed: closes its connection for good.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.close();
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    /// The live connection to the peer, dialing one if there is none.
    pub async fn connection(&self) -> Result<quinn::Connection, TransportError> {
        let mut guard = self.conn.lock().await;
        if self.is_retired() {
            return Err(TransportError::UnknownPeer(self.id));
        }
        if let Some(conn) = guard.as_ref() {
            match conn.close_reason() {
                None => return Ok(conn.clone()),
                Some(reason) if is_removed(&reason) => return Err(TransportError::Removed),
                Some(_) => *guard = None,
            }
        }
        let addr = lock(&self.addr).clone();
        let connecting = self.shared.endpoint.connect(addr.addr, &addr.server_name)?;
        let conn = runtime::timeout(self.shared.config.dial_timeout, connecting)
            .await
            .map_err(|_| TransportError::Timeout)??;
        tracing::debug!(peer = self.id, addr = %addr.addr, "connected to peer");
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// The round-trip time QUIC measures on the live connection, if there is one (and no dial
    /// is in progress).
    fn round_trip_time(&self) -> Option<Duration> {
        let guard = self.conn.try_lock()?;
        let conn = guard.as_ref()?;
        conn.close_reason().is_none().then(|| conn.rtt())
    }

    pub async fn open_stream(&self) -> Result<quinn::SendStream, TransportError> {
        let conn = self.connection().await?;
        Ok(conn.open_uni().await?)
    }

    /// A bidirectional stream on the live connection (dialing if needed): a snapshot and its
    /// receiver's answer.
    pub async fn open_bi_stream(
        &self,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), TransportError> {
        let conn = self.connection().await?;
        Ok(conn.open_bi().await?)
    }
}

/// Writes queued messages to one peer until the queue is dropped. On any failure the stream
/// is abandoned, the messages in flight are reported unreachable, and the next batch redials
/// after an exponential backoff.
pub(super) async fn run_link(
    shared: Arc<Shared>,
    dialer: Arc<Dialer>,
    mut queue: mpsc::Receiver<Message>,
) {
    let to = dialer.id;
    let mut backoff = Backoff::new(
        shared.config.backoff_min,
        shared.config.backoff_max,
        shared.member_id ^ to.rotate_left(32),
    );
    let mut stream: Option<quinn::SendStream> = None;
    let mut buf = Vec::with_capacity(shared.config.batch_bytes);
    let sent = shared.config.metrics.network.sent_to(to);
    while let Some(first) = queue.next().await {
        buf.clear();
        if stream.is_none() {
            match dialer.open_stream().await {
                Ok(s) => {
                    stream = Some(s);
                    push_frame(&mut buf, peer_frame::Frame::Hello(shared.hello()));
                }
                Err(TransportError::Removed) => {
                    tracing::warn!(peer = to, "the peer refused this member as removed");
                    shared.report(PeerEvent::Removed { by: to });
                    runtime::sleep(backoff.next_delay()).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(peer = to, error = %e, "peer unreachable");
                    shared.report(PeerEvent::Unreachable { to });
                    runtime::sleep(backoff.next_delay()).await;
                    continue;
                }
            }
        }
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            if msg.r#type == MessageType::MsgSnap as i32 {
                runtime::spawn(super::peer_snapshot::send_snapshot(
                    shared.clone(),
                    dialer.clone(),
                    msg,
                ));
            } else {
                push_frame(&mut buf, peer_frame::Frame::Message(msg));
            }
            if buf.len() < shared.config.batch_bytes {
                next = queue.try_recv().ok();
            }
        }
        if buf.is_empty() {
            continue;
        }
        let Some(s) = stream.as_mut() else { continue };
        match s.write_all(&buf).await {
            Ok(()) => {
                sent.inc_by(buf.len() as u64);
                backoff.reset();
            }
            Err(e) => {
                tracing::debug!(peer = to, error = %e, "peer stream failed");
                stream = None;
                shared.report(PeerEvent::Unreachable { to });
                runtime::sleep(backoff.next_delay()).await;
            }
        }
    }
    if let Some(mut s) = stream {
        let _ = s.finish();
    }
}

/// Observes the connection's round-trip time to the peer every `every` (etcd probes its
/// peers every few seconds for the same histogram), until the dialer is gone.
pub(super) async fn sample_round_trips(
    dialer: Weak<Dialer>,
    histogram: Histogram,
    every: Duration,
) {
    loop {
        runtime::sleep(every).await;
        let Some(dialer) = dialer.upgrade() else {
            return;
        };
        if let Some(rtt) = dialer.round_trip_time() {
            histogram.observe(rtt.as_secs_f64());
        }
    }
}

/// The peer closed the connection because this member was removed from the cluster.
fn is_removed(reason: &quinn::ConnectionError) -> bool {
    matches!(reason, quinn::ConnectionError::ApplicationClosed(close) if close.error_code == codes::REMOVED)
}

pub(super) fn push_frame(buf: &mut Vec<u8>, frame: peer_frame::Frame) {
    let frame = PeerFrame { frame: Some(frame) };
    if let Err(e) = encode_frame(&frame, buf) {
        tracing::warn!(error = %e, "peer frame not encodable; dropped");
    }
}
