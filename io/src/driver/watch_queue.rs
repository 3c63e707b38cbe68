//! The bounded queue between the loop's watch hub and the task writing one watch stream to its
//! client. The loop asks [`WatchSink::room`] how many bytes the stream can still take (the
//! smaller of the stream's and its connection's room) and takes no more than that from the
//! hub; the hub decides what happens to watchers whose stream has no room (they stop
//! receiving live events and catch up from the store's history later). The writer's
//! [`WatchResponses`] gives the room back as it takes batches, and nudges the loop when a
//! stream the loop had to hold back has drained, so catching up goes at the client's pace
//! instead of the tick's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::StreamExt;
use futures::channel::mpsc;
use prost::Message;
use qraft_proto::etcdserverpb::WatchResponse;

use super::handle::Command;
use crate::transport::ConnectionRoom;

/// Bytes of responses one stream may have waiting for its writer.
pub const STREAM_ROOM_BYTES: usize = 1024 * 1024;

type Batch = (Vec<WatchResponse>, usize);

#[derive(Debug, Default)]
struct Shared {
    queued: AtomicUsize,
    /// Set by the loop when it left responses in the hub for lack of room.
    held_back: AtomicBool,
}

/// The loop's end.
pub(crate) struct WatchSink {
    tx: mpsc::UnboundedSender<Batch>,
    shared: Arc<Shared>,
    connection: ConnectionRoom,
}

/// The writer's end: batches of responses in order.
pub struct WatchResponses {
    rx: mpsc::UnboundedReceiver<Batch>,
    shared: Arc<Shared>,
    connection: ConnectionRoom,
    nudge: mpsc::Sender<Command>,
}

pub(crate) fn watch_queue(
    connection: ConnectionRoom,
    nudge: mpsc::Sender<Command>,
) -> (WatchSink, WatchResponses) {
    let (tx, rx) = mpsc::unbounded();
    let shared = Arc::new(Shared::default());
    (
        WatchSink {
            tx,
            shared: shared.clone(),
            connection: connection.clone(),
        },
        WatchResponses {
            rx,
            shared,
            connection,
            nudge,
        },
    )
}

impl WatchSink {
    /// Bytes the stream can take now.
    pub fn room(&self) -> usize {
        let stream = STREAM_ROOM_BYTES.saturating_sub(self.shared.queued.load(Ordering::Relaxed));
        stream.min(self.connection.room())
    }

    /// The loop left responses for this stream in the hub: nudge it once the stream drains.
    pub fn held_back(&self) {
        self.shared.held_back.store(true, Ordering::Relaxed);
    }

    /// Queues a batch; `Err` when the writer is gone.
    pub fn send(&self, batch: Vec<WatchResponse>) -> Result<(), ()> {
        let bytes = batch.iter().map(|r| r.encoded_len()).sum();
        self.shared.queued.fetch_add(bytes, Ordering::Relaxed);
        self.connection.add(bytes);
        if self.tx.unbounded_send((batch, bytes)).is_err() {
            self.release(bytes);
            return Err(());
        }
        Ok(())
    }

    fn release(&self, bytes: usize) {
        release(&self.shared, &self.connection, bytes);
    }
}

fn release(shared: &Shared, connection: &ConnectionRoom, bytes: usize) {
    let _ = shared
        .queued
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
            Some(q.saturating_sub(bytes))
        });
    connection.remove(bytes);
}

impl WatchResponses {
    /// The next batch, giving its room back; `None` once the loop dropped the stream.
    pub async fn next(&mut self) -> Option<Vec<WatchResponse>> {
        let (batch, bytes) = self.rx.next().await?;
        release(&self.shared, &self.connection, bytes);
        let drained = self.shared.queued.load(Ordering::Relaxed) <= STREAM_ROOM_BYTES / 2;
        if drained && self.shared.held_back.swap(false, Ordering::Relaxed) {
            // A full command queue means the loop has a turn coming anyway.
            let _ = self.nudge.try_send(Command::WatchRoom);
        }
        Some(batch)
    }
}

impl Drop for WatchResponses {
    /// Whatever is still queued leaves with the stream: its bytes go back to the connection.
    fn drop(&mut self) {
        self.rx.close();
        while let Ok((_, bytes)) = self.rx.try_recv() {
            release(&self.shared, &self.connection, bytes);
        }
    }
}
