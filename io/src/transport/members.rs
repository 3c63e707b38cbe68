//! The join handshake on the peer port: a member joining an existing cluster with an empty
//! data dir asks a running member for the cluster's ID and members (etcd's `GET /members`),
//! so it can find its own ID by its peer URLs and adopt the cluster's ID.
//!
//! It uses a bidirectional stream on the ordinary peer connection, so the asker is
//! authenticated by mutual TLS against the peer CA like any peer: `PeerHello` (member ID 0
//! allowed: the asker does not know its ID yet), `MembersRequest`; the answer is one
//! `MembersResponse` frame, or a stream finished without one while the answering member has
//! not published its member list yet.
//!
//! The same published list tells the receiving side which members were removed: their
//! connections are closed with [`codes::REMOVED`], which their sending side reports as
//! [`PeerEvent::Removed`] (etcd answers a removed member's messages with 410 Gone).

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use qraft_proto::qraftpb::{MembersRequest, MembersResponse, PeerFrame, PeerHello, peer_frame};
use rustls::RootCertStore;

use super::peer::{Shared, lock};
use super::{PeerAddr, QuicSettings, TransportError, codes, encode_frame, read_frame};
use crate::runtime;
use crate::tls::{self, Identity};

/// Largest members answer accepted (a member record is a few hundred bytes).
const MEMBERS_FRAME_LIMIT: usize = 4 * 1024 * 1024;

/// What the driver last published about the configuration.
#[derive(Debug, Default)]
pub(super) struct Directory {
    pub members: Option<MembersResponse>,
    pub removed: HashSet<u64>,
}

/// Answers members requests on `conn`'s bidirectional streams until the connection ends.
pub(super) async fn serve_members_streams(shared: Arc<Shared>, conn: quinn::Connection) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let shared = shared.clone();
        let remote = conn.remote_address();
        runtime::spawn(async move {
            if let Err(e) = answer(&shared, send, recv).await {
                tracing::warn!(%remote, error = %e, "members request failed");
            }
        });
    }
}

async fn answer(
    shared: &Shared,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), TransportError> {
    let limit = shared.config.max_frame;
    let hello = read_frame::<PeerFrame, _>(&mut recv, limit).await?;
    let request = read_frame::<PeerFrame, _>(&mut recv, limit).await?;
    let (Some(peer_frame::Frame::Hello(_)), Some(peer_frame::Frame::MembersRequest(_))) =
        (hello.and_then(|f| f.frame), request.and_then(|f| f.frame))
    else {
        let _ = recv.stop(codes::PROTOCOL);
        return Err(TransportError::Members(
            "a bidirectional peer stream must carry a hello and a members request".into(),
        ));
    };
    let members = lock(&shared.directory).members.clone();
    if let Some(members) = members {
        let mut buf = Vec::new();
        encode_frame(
            &PeerFrame {
                frame: Some(peer_frame::Frame::MembersResponse(members)),
            },
            &mut buf,
        )?;
        send.write_all(&buf).await?;
    }
    send.finish()?;
    // Keep the stream open until the asker has read the answer.
    let _ = runtime::timeout(Duration::from_secs(5), send.stopped()).await;
    Ok(())
}

/// Asks the member listening at `url` for the cluster's ID and members, over a short-lived
/// endpoint of its own (the joining member has no member ID to run the transport with yet).
pub async fn fetch_members(
    identity: &Identity,
    peer_ca: &RootCertStore,
    url: &str,
    timeout: Duration,
) -> Result<MembersResponse, TransportError> {
    let addr = PeerAddr::from_url(url).await?;
    let local: SocketAddr = if addr.addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let client_tls = tls::peer_client_config(identity, peer_ca)?;
    let endpoint = super::bind(
        local,
        None,
        Some(super::client_config(client_tls, &QuicSettings::default())?),
    )?;
    let result = runtime::timeout(timeout, ask(&endpoint, &addr))
        .await
        .unwrap_or(Err(TransportError::Timeout));
    endpoint.close(codes::SHUTDOWN, b"done");
    let _ = runtime::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    result
}

async fn ask(
    endpoint: &quinn::Endpoint,
    addr: &PeerAddr,
) -> Result<MembersResponse, TransportError> {
    let conn = endpoint.connect(addr.addr, &addr.server_name)?.await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let mut buf = Vec::new();
    for frame in [
        peer_frame::Frame::Hello(PeerHello::default()),
        peer_frame::Frame::MembersRequest(MembersRequest {}),
    ] {
        encode_frame(&PeerFrame { frame: Some(frame) }, &mut buf)?;
    }
    send.write_all(&buf).await?;
    send.finish()?;
    let answer = read_frame::<PeerFrame, _>(&mut recv, MEMBERS_FRAME_LIMIT).await;
    conn.close(codes::SHUTDOWN, b"done");
    match answer?.and_then(|f| f.frame) {
        Some(peer_frame::Frame::MembersResponse(members)) => Ok(members),
        Some(_) => Err(TransportError::Members("unexpected answer frame".into())),
        None => Err(TransportError::Members(
            "the member has no configuration to share yet".into(),
        )),
    }
}
