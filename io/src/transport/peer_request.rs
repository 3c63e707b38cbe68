//! Member-to-member requests on the peer port: one bidirectional stream per request, on the
//! ordinary mutually authenticated peer connection.
//!
//! The asker writes a `PeerHello` and one `PeerRequest`, then finishes its side; the answering
//! member writes one `PeerResponse` and finishes (or finishes without one when it cannot
//! answer yet, e.g. a members request before its member list is published). The transport
//! answers members requests itself from the published directory; every other kind goes to the
//! [`PeerRequestHandler`] the driver registered (a follower's forwarded lease calls). Adding a
//! question between members means a new case in `PeerRequest`/`PeerResponse` and an arm in the
//! handler, not a new stream protocol.
//!
//! A snapshot from the leader also travels on a bidirectional stream: a hello, then
//! `SnapshotChunk`s instead of a request, answered with `SnapshotReceived` once stored and
//! handed to raft (`peer_snapshot`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::BoxFuture;
use qraft_proto::qraftpb::{
    PeerFrame, PeerHello, PeerRequest, PeerResponse, peer_frame, peer_request, peer_response,
};

use super::peer::{Shared, lock};
use super::{TransportError, codes, encode_frame, read_frame};
use crate::runtime;

/// Answers the peer requests the transport does not answer itself. Registered by the driver
/// with [`super::PeerTransport::serve_requests`]; until then such requests get no answer.
pub trait PeerRequestHandler: Send + Sync + 'static {
    /// Answers `request` from member `from` (authenticated by mutual TLS and its hello).
    fn answer(
        &self,
        from: u64,
        request: peer_request::Request,
    ) -> BoxFuture<'static, Option<PeerResponse>>;
}

/// How long an answering member keeps a finished stream around for the asker to read it.
const LINGER: Duration = Duration::from_secs(5);

/// Answers requests on `conn`'s bidirectional streams until the connection ends.
pub(super) async fn serve_request_streams(shared: Arc<Shared>, conn: quinn::Connection) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let shared = shared.clone();
        let conn = conn.clone();
        runtime::spawn(async move {
            if let Err(e) = answer(&shared, &conn, send, recv).await {
                tracing::warn!(remote = %conn.remote_address(), error = %e, "peer request failed");
            }
        });
    }
}

async fn answer(
    shared: &Shared,
    conn: &quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), TransportError> {
    let limit = shared.config.max_frame;
    let hello = read_frame::<PeerFrame, _>(&mut recv, limit).await?;
    let first = read_frame::<PeerFrame, _>(&mut recv, limit).await?;
    let (hello, request) = match (hello.and_then(|f| f.frame), first.and_then(|f| f.frame)) {
        (Some(peer_frame::Frame::Hello(hello)), Some(peer_frame::Frame::Request(request))) => {
            (hello, request)
        }
        (Some(peer_frame::Frame::Hello(hello)), Some(peer_frame::Frame::SnapshotChunk(chunk))) => {
            if let Err(refusal) = check_asker(shared, &hello, None) {
                return Err(refuse(conn, &mut recv, &hello, refusal));
            }
            return super::peer_snapshot::answer_snapshot(
                shared,
                send,
                recv,
                hello.member_id,
                chunk,
            )
            .await;
        }
        _ => {
            let _ = recv.stop(codes::PROTOCOL);
            return Err(TransportError::PeerRequest(
                "a bidirectional peer stream must carry a hello and a request or a snapshot".into(),
            ));
        }
    };
    let Some(request) = request.request else {
        let _ = recv.stop(codes::PROTOCOL);
        return Err(TransportError::PeerRequest("empty peer request".into()));
    };
    if let Err(refusal) = check_asker(shared, &hello, Some(&request)) {
        return Err(refuse(conn, &mut recv, &hello, refusal));
    }
    let response = match request {
        peer_request::Request::Members(_) => {
            lock(&shared.directory)
                .members
                .clone()
                .map(|members| PeerResponse {
                    response: Some(peer_response::Response::Members(members)),
                })
        }
        other => {
            let handler = lock(&shared.request_handler).clone();
            match handler {
                Some(handler) => handler.answer(hello.member_id, other).await,
                None => None,
            }
        }
    };
    if let Some(response) = response {
        let mut buf = Vec::new();
        encode_frame(
            &PeerFrame {
                frame: Some(peer_frame::Frame::Response(response)),
            },
            &mut buf,
        )?;
        send.write_all(&buf).await?;
    }
    send.finish()?;
    let _ = runtime::timeout(LINGER, send.stopped()).await;
    Ok(())
}

#[derive(Debug)]
enum Refusal {
    WrongCluster,
    Removed,
    /// Only a joining member (asking for the members) may speak without its member ID.
    Anonymous,
}

/// Ends a refused stream (or the whole connection, for a foreign or removed member) and says
/// why.
fn refuse(
    conn: &quinn::Connection,
    recv: &mut quinn::RecvStream,
    hello: &PeerHello,
    refusal: Refusal,
) -> TransportError {
    match refusal {
        Refusal::WrongCluster => conn.close(codes::WRONG_CLUSTER, b"cluster ID mismatch"),
        Refusal::Removed => conn.close(codes::REMOVED, b"member removed from the cluster"),
        Refusal::Anonymous => {
            let _ = recv.stop(codes::PROTOCOL);
        }
    }
    TransportError::PeerRequest(format!(
        "request from member {:x} refused: {refusal:?}",
        hello.member_id
    ))
}

/// Whether the member in `hello` may ask `request` (`None`: send a snapshot).
fn check_asker(
    shared: &Shared,
    hello: &PeerHello,
    request: Option<&peer_request::Request>,
) -> Result<(), Refusal> {
    let ours = shared.cluster_id.load(Ordering::Relaxed);
    if ours != 0 && hello.cluster_id != 0 && ours != hello.cluster_id {
        return Err(Refusal::WrongCluster);
    }
    if hello.member_id == 0 {
        return match request {
            Some(peer_request::Request::Members(_)) => Ok(()),
            _ => Err(Refusal::Anonymous),
        };
    }
    if lock(&shared.directory).removed.contains(&hello.member_id) {
        return Err(Refusal::Removed);
    }
    Ok(())
}

/// Asks the member at the other end of `conn` one request and reads its answer (`None` when
/// it finished the stream without one). The caller bounds the time.
pub(super) async fn exchange(
    conn: &quinn::Connection,
    hello: PeerHello,
    request: PeerRequest,
    limit: usize,
) -> Result<Option<PeerResponse>, TransportError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut buf = Vec::new();
    for frame in [
        peer_frame::Frame::Hello(hello),
        peer_frame::Frame::Request(request),
    ] {
        encode_frame(&PeerFrame { frame: Some(frame) }, &mut buf)?;
    }
    send.write_all(&buf).await?;
    send.finish()?;
    match read_frame::<PeerFrame, _>(&mut recv, limit)
        .await?
        .and_then(|f| f.frame)
    {
        Some(peer_frame::Frame::Response(response)) => Ok(Some(response)),
        Some(_) => Err(TransportError::PeerRequest(
            "unexpected answer frame".into(),
        )),
        None => Ok(None),
    }
}
