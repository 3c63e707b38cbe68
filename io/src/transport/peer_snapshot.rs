//! Raft snapshots between members, streamed on a QUIC stream of their own.
//!
//! Raft's `MsgSnap` carries only metadata. When the leader's loop sends one, the transport
//! opens a new bidirectional stream to the peer and writes a hello, then `SnapshotChunk`s: the
//! first carries the message, with the metadata of the read transaction the data comes from
//! ([`LmdbStorage::export_snapshot`], a point-in-time view; it may be newer than what raft
//! chose, which raft takes as any newer acknowledgement), the others the snapshot stream (see
//! `storage::snapshot`) in `snapshot_chunk` pieces, the last one empty and marked `last`. Each
//! chunk is read from LMDB on a blocking thread and written before the next is read, so QUIC's
//! flow control paces the reading: memory is a chunk or two, whatever the snapshot's size.
//!
//! The receiving member writes the chunks, as they arrive, through a bounded channel to a
//! blocking thread that restores them into a fresh environment
//! ([`LmdbStorage::receive_snapshot`]); once the stream's end and checksum are checked there,
//! the message goes to the driver, whose raft decides whether to install it
//! (`LmdbStorage::install_received_snapshot`). A bad or cut stream is dropped with nothing
//! installed; the stream is then stopped, so the sender reports the snapshot as failed and raft
//! sends it again. The loop thread never touches the data: heartbeats, votes and client
//! traffic go on during a transfer.
//!
//! **Delivery is acknowledged by the receiver, not by QUIC.** The sender reports the snapshot
//! as delivered (raft's `ReportSnapshot`) only when the receiver answers `SnapshotReceived` on
//! the stream's other half, which it does after handing the message to its driver. QUIC's own
//! acknowledgement of the last byte comes earlier, while the receiver still finishes writing:
//! a leader that took it as delivery probed the follower at once, the probe reached the
//! follower's raft before the snapshot did, was rejected from the old log, and the leader sent
//! the whole snapshot a second time. Messages from one peer reach the driver in order, so a
//! probe sent after the answer is stepped after the snapshot.

use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use futures::channel::mpsc;
use qraft_proto::Bytes;
use qraft_proto::qraftpb::{
    PeerFrame, PeerResponse, SnapshotChunk, SnapshotReceived, peer_frame, peer_response,
};
use qraft_proto::raftpb::Message;

use super::peer::{PeerEvent, Shared, lock};
use super::peer_send::{Dialer, push_frame};
use super::{TransportError, codes, encode_frame, read_frame};
use crate::runtime;
use crate::storage::{ChunksReader, LmdbStorage, SnapshotExporter};

/// Chunks in flight between the stream reader and the thread writing them to disk.
const RECEIVE_QUEUE: usize = 2;

/// How long the sender waits, after its last chunk, for the receiver to finish storing the
/// snapshot and hand it to raft: the final commit, checks and rename of a large snapshot on a
/// slow disk, and a busy driver. Past it the snapshot counts as failed and raft sends again.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Streams one snapshot to `msg.to` and reports how it ended (etcd's `ReportSnapshot`).
pub(super) async fn send_snapshot(shared: Arc<Shared>, dialer: Arc<Dialer>, msg: Message) {
    let to = msg.to;
    let ok = match stream_snapshot(&shared, &dialer, msg).await {
        Ok(bytes) => {
            tracing::info!(peer = format_args!("{to:x}"), bytes, "sent a snapshot");
            true
        }
        Err(e) => {
            tracing::warn!(peer = format_args!("{to:x}"), error = %e, "sending snapshot failed");
            false
        }
    };
    let mut events = shared.events.clone();
    let _ = events.send(PeerEvent::SnapshotStatus { to, ok }).await;
}

fn storage_of(shared: &Shared) -> Result<LmdbStorage, TransportError> {
    lock(&shared.snapshots)
        .clone()
        .ok_or_else(|| TransportError::Snapshot("no storage to stream snapshots from".into()))
}

/// The next chunk of `exporter`, read on a blocking thread.
async fn next_chunk(
    mut exporter: Box<SnapshotExporter>,
    size: usize,
) -> Result<(Box<SnapshotExporter>, Option<Vec<u8>>), TransportError> {
    runtime::spawn_blocking(move || {
        let chunk = SnapshotExporter::next_chunk(&mut exporter, size);
        chunk.map(|chunk| (exporter, chunk))
    })
    .await
    .map_err(|e| TransportError::Snapshot(e.to_string()))
}

async fn stream_snapshot(
    shared: &Shared,
    dialer: &Dialer,
    mut msg: Message,
) -> Result<u64, TransportError> {
    let storage = storage_of(shared)?;
    let exporter = runtime::spawn_blocking(move || storage.export_snapshot())
        .await
        .map_err(|e| TransportError::Snapshot(e.to_string()))?;
    let metadata = exporter
        .metadata()
        .map_err(|e| TransportError::Snapshot(e.to_string()))?;
    let snapshot = msg.snapshot.get_or_insert_with(Default::default);
    snapshot.metadata = Some(metadata);
    snapshot.data = Default::default();
    let (mut stream, mut answer) = dialer.open_bi_stream().await?;
    let sent = shared.config.metrics.network.sent_to(dialer.id);
    let chunk_size = shared.config.snapshot_chunk.max(1);
    let mut buf = Vec::new();
    push_frame(&mut buf, peer_frame::Frame::Hello(shared.hello()));
    let mut header = Some(msg);
    let mut exporter = Box::new(exporter);
    let mut offset = 0u64;
    loop {
        let (next, chunk) = next_chunk(exporter, chunk_size).await?;
        exporter = next;
        let last = chunk.is_none();
        let data = chunk.unwrap_or_default();
        let len = data.len() as u64;
        let frame = SnapshotChunk {
            message: header.take(),
            offset,
            data: data.into(),
            last,
        };
        push_frame(&mut buf, peer_frame::Frame::SnapshotChunk(frame));
        stream.write_all(&buf).await?;
        sent.inc_by(buf.len() as u64);
        buf.clear();
        offset += len;
        if last {
            break;
        }
    }
    drop(exporter);
    stream.finish()?;
    let answer = runtime::timeout(
        ANSWER_TIMEOUT,
        read_frame::<PeerFrame, _>(&mut answer, shared.config.max_frame),
    )
    .await
    .map_err(|_| TransportError::Timeout)?;
    match answer.map(|frame| frame.and_then(|f| f.frame)) {
        Ok(Some(peer_frame::Frame::Response(PeerResponse {
            response: Some(peer_response::Response::Snapshot(_)),
        }))) => Ok(offset),
        Ok(_) => Err(TransportError::Snapshot(
            "the receiver ended the stream without taking the snapshot".into(),
        )),
        Err(e) => Err(TransportError::Stopped(e.to_string())),
    }
}

/// Why a snapshot stream was not delivered.
enum Refused {
    Protocol(&'static str),
    Bad(String),
    DriverGone,
}

/// Receives the snapshot whose first chunk is `first` from `recv` (the rest of the stream),
/// writing it to disk as it arrives, and hands its message to the driver once all of it is
/// stored and checked; returns the snapshot's index. `from` is the sender named in the
/// stream's hello.
async fn receive_snapshot(
    shared: &Shared,
    recv: &mut quinn::RecvStream,
    from: u64,
    first: SnapshotChunk,
) -> Result<u64, Refused> {
    let limit = shared.config.max_frame;
    if first.offset != 0 {
        return Err(Refused::Protocol("snapshot stream without its first chunk"));
    }
    let message = first.message.clone().ok_or(Refused::Protocol(
        "first snapshot chunk without its message",
    ))?;
    if message.from != from {
        return Err(Refused::Protocol("snapshot from a foreign sender"));
    }
    let metadata = message
        .snapshot
        .as_ref()
        .and_then(|s| s.metadata.clone())
        .ok_or(Refused::Protocol("snapshot without metadata"))?;
    let storage = storage_of(shared).map_err(|e| Refused::Bad(e.to_string()))?;
    let (mut chunks, rx) = mpsc::channel::<Result<Bytes, String>>(RECEIVE_QUEUE);
    let writer = runtime::spawn(runtime::spawn_blocking(move || {
        let reader = ChunksReader::new(futures::executor::block_on_stream(rx));
        storage.receive_snapshot(&metadata, reader)
    }));
    let received = shared.config.metrics.network.received_from(from);
    let mut expected = 0u64;
    let mut chunk = Some(first);
    let mut read_error = None;
    while let Some(current) = chunk.take() {
        if current.offset != expected {
            read_error = Some(Refused::Protocol("snapshot chunk out of order"));
            break;
        }
        expected += current.data.len() as u64;
        let last = current.last;
        if !current.data.is_empty() && chunks.send(Ok(current.data)).await.is_err() {
            // The writer stopped early: its own error says why.
            break;
        }
        if last {
            break;
        }
        chunk = match super::read_sized_frame::<PeerFrame, _>(recv, limit).await {
            Ok(Some((
                PeerFrame {
                    frame: Some(peer_frame::Frame::SnapshotChunk(next)),
                },
                bytes,
            ))) => {
                received.inc_by(bytes as u64);
                Some(next)
            }
            Ok(Some(_)) => {
                read_error = Some(Refused::Protocol("other frame inside a snapshot stream"));
                None
            }
            Ok(None) => {
                read_error = Some(Refused::Bad("snapshot stream cut short".into()));
                None
            }
            Err(e) => {
                read_error = Some(Refused::Bad(e.to_string()));
                None
            }
        };
    }
    if let Some(err) = &read_error {
        let why = match err {
            Refused::Protocol(what) => what.to_string(),
            Refused::Bad(what) => what.clone(),
            Refused::DriverGone => String::new(),
        };
        let _ = chunks.send(Err(why)).await;
    }
    drop(chunks);
    let stored = writer.join().await;
    if let Some(err) = read_error {
        return Err(err);
    }
    let records = stored.map_err(|e| Refused::Bad(e.to_string()))?;
    let index = message
        .snapshot
        .as_ref()
        .and_then(|s| s.metadata.as_ref())
        .map_or(0, |m| m.index);
    tracing::info!(
        from = format_args!("{from:x}"),
        index,
        bytes = expected,
        records,
        "received a snapshot"
    );
    let mut events = shared.events.clone();
    events
        .send(PeerEvent::Message(message))
        .await
        .map_err(|_| Refused::DriverGone)?;
    Ok(index)
}

/// Serves a snapshot stream opened by member `from` (its hello checked): receives it, then
/// answers that it was handed to raft — or stops the stream, so the sender reports a failure.
pub(super) async fn answer_snapshot(
    shared: &Shared,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    from: u64,
    first: SnapshotChunk,
) -> Result<(), TransportError> {
    match receive_snapshot(shared, &mut recv, from, first).await {
        Ok(index) => {
            let mut buf = Vec::new();
            let answer = PeerResponse {
                response: Some(peer_response::Response::Snapshot(SnapshotReceived {
                    index,
                })),
            };
            encode_frame(
                &PeerFrame {
                    frame: Some(peer_frame::Frame::Response(answer)),
                },
                &mut buf,
            )?;
            send.write_all(&buf).await?;
            send.finish()?;
            let _ = runtime::timeout(ANSWER_TIMEOUT, send.stopped()).await;
            Ok(())
        }
        Err(refused) => {
            let code = match &refused {
                Refused::Protocol(what) => {
                    tracing::warn!(
                        from = format_args!("{from:x}"),
                        what,
                        "bad snapshot stream; dropped"
                    );
                    codes::PROTOCOL
                }
                Refused::Bad(what) => {
                    tracing::warn!(
                        from = format_args!("{from:x}"),
                        what,
                        "snapshot not received; dropped"
                    );
                    codes::BAD_FRAME
                }
                Refused::DriverGone => codes::SHUTDOWN,
            };
            let _ = recv.stop(code);
            let _ = send.reset(code);
            Ok(())
        }
    }
}
