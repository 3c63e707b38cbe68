//! The receiving half of the peer transport: accept connections, read streams, check hellos,
//! receive snapshots (`peer_snapshot`), and hand messages to the driver.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::SinkExt;
use qraft_proto::qraftpb::{PeerFrame, PeerHello, peer_frame};

use super::peer::{PeerEvent, Shared};
use super::{FrameError, codes, read_sized_frame};
use crate::runtime;

pub(super) async fn accept_loop(shared: Arc<Shared>) {
    while let Some(incoming) = shared.endpoint.accept().await {
        let shared = shared.clone();
        runtime::spawn(async move {
            match incoming.await {
                Ok(conn) => serve_connection(shared, conn).await,
                // Failed handshakes (wrong CA, no certificate, wrong ALPN) end here.
                Err(e) => tracing::warn!(error = %e, "peer handshake failed"),
            }
        });
    }
}

async fn serve_connection(shared: Arc<Shared>, conn: quinn::Connection) {
    runtime::spawn(super::peer_request::serve_request_streams(
        shared.clone(),
        conn.clone(),
    ));
    loop {
        match conn.accept_uni().await {
            Ok(recv) => {
                runtime::spawn(serve_stream(shared.clone(), conn.clone(), recv));
            }
            Err(e) => {
                tracing::debug!(remote = %conn.remote_address(), error = %e, "peer connection ended");
                return;
            }
        }
    }
}

/// Why a stream was abandoned.
enum StreamEnd {
    Clean,
    Frame(FrameError),
    Protocol(&'static str),
    WrongCluster { ours: u64, theirs: u64 },
    Removed(u64),
    DriverGone,
}

async fn serve_stream(shared: Arc<Shared>, conn: quinn::Connection, mut recv: quinn::RecvStream) {
    match read_stream(&shared, &mut recv).await {
        StreamEnd::Clean | StreamEnd::DriverGone => {}
        StreamEnd::Frame(e) => {
            tracing::warn!(remote = %conn.remote_address(), error = %e, "bad peer frame; stream reset");
            let _ = recv.stop(codes::BAD_FRAME);
        }
        StreamEnd::Protocol(what) => {
            tracing::warn!(remote = %conn.remote_address(), what, "peer protocol violation; stream reset");
            let _ = recv.stop(codes::PROTOCOL);
        }
        StreamEnd::WrongCluster { ours, theirs } => {
            tracing::warn!(
                remote = %conn.remote_address(),
                ours = format_args!("{ours:x}"),
                theirs = format_args!("{theirs:x}"),
                "peer belongs to another cluster; connection closed"
            );
            conn.close(codes::WRONG_CLUSTER, b"cluster ID mismatch");
        }
        StreamEnd::Removed(member) => {
            tracing::info!(
                remote = %conn.remote_address(),
                member = format_args!("{member:x}"),
                "a removed member tried to connect; connection closed"
            );
            conn.close(codes::REMOVED, b"member removed from the cluster");
        }
    }
}

async fn read_stream(shared: &Shared, recv: &mut quinn::RecvStream) -> StreamEnd {
    let limit = shared.config.max_frame;
    let (hello, hello_bytes) = match read_sized_frame::<PeerFrame, _>(recv, limit).await {
        Ok(Some((
            PeerFrame {
                frame: Some(peer_frame::Frame::Hello(hello)),
            },
            bytes,
        ))) => (hello, bytes),
        Ok(None) => return StreamEnd::Clean,
        Ok(Some(_)) => return StreamEnd::Protocol("stream did not start with a hello"),
        Err(e) => return StreamEnd::Frame(e),
    };
    if let Some(end) = check_hello(shared, &hello) {
        return end;
    }
    let received = shared.config.metrics.network.received_from(hello.member_id);
    received.inc_by(hello_bytes as u64);
    let mut events = shared.events.clone();
    loop {
        let frame = match read_sized_frame::<PeerFrame, _>(recv, limit).await {
            Ok(Some((PeerFrame { frame: Some(f) }, bytes))) => {
                received.inc_by(bytes as u64);
                f
            }
            Ok(Some((PeerFrame { frame: None }, _))) => return StreamEnd::Protocol("empty frame"),
            Ok(None) => return StreamEnd::Clean,
            Err(e) => return StreamEnd::Frame(e),
        };
        let message = match frame {
            peer_frame::Frame::Hello(_) => return StreamEnd::Protocol("second hello"),
            peer_frame::Frame::Request(_) | peer_frame::Frame::Response(_) => {
                return StreamEnd::Protocol("peer request frame on a message stream");
            }
            peer_frame::Frame::Message(m) => m,
            peer_frame::Frame::SnapshotChunk(_) => {
                // A snapshot has a bidirectional stream to itself (see `peer_snapshot`).
                return StreamEnd::Protocol("snapshot chunk on a message stream");
            }
        };
        // A member removed while its stream was open is refused at its next frame, so it learns
        // of its removal (the close code) even if it never applies the change itself.
        if is_removed(shared, hello.member_id) {
            return StreamEnd::Removed(hello.member_id);
        }
        if message.from != hello.member_id {
            tracing::warn!(
                from = message.from,
                hello = hello.member_id,
                "peer message with a foreign sender dropped"
            );
            continue;
        }
        if events.send(PeerEvent::Message(message)).await.is_err() {
            return StreamEnd::DriverGone;
        }
    }
}

fn check_hello(shared: &Shared, hello: &PeerHello) -> Option<StreamEnd> {
    let ours = shared.cluster_id.load(Ordering::Relaxed);
    if ours != 0 && hello.cluster_id != 0 && ours != hello.cluster_id {
        return Some(StreamEnd::WrongCluster {
            ours,
            theirs: hello.cluster_id,
        });
    }
    if hello.member_id == 0 || hello.member_id == shared.member_id {
        return Some(StreamEnd::Protocol("hello with an invalid member id"));
    }
    if is_removed(shared, hello.member_id) {
        return Some(StreamEnd::Removed(hello.member_id));
    }
    None
}

fn is_removed(shared: &Shared, member_id: u64) -> bool {
    super::peer::lock(&shared.directory)
        .removed
        .contains(&member_id)
}
