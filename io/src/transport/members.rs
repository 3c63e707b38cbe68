//! The join handshake on the peer port: a member joining an existing cluster with an empty
//! data dir asks a running member for the cluster's ID and members (etcd's `GET /members`),
//! so it can find its own ID by its peer URLs and adopt the cluster's ID.
//!
//! It is a peer request ([`super::peer_request`]), so the asker is authenticated by mutual TLS
//! against the peer CA like any peer; its hello may carry member ID 0 (the asker does not know
//! its ID yet). The answer is a `MembersResponse`, or none while the answering member has not
//! published its member list yet.
//!
//! The same published list tells the receiving side which members were removed: their
//! connections are closed with [`codes::REMOVED`], which their sending side reports as
//! [`PeerEvent::Removed`] (etcd answers a removed member's messages with 410 Gone).

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use qraft_proto::qraftpb::{
    MembersRequest, MembersResponse, PeerHello, PeerRequest, peer_request, peer_response,
};

use super::peer_request::exchange;
use super::{PeerAddr, QuicSettings, TransportError, codes};
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

/// Asks the member listening at `url` for the cluster's ID and members, over a short-lived
/// endpoint of its own (the joining member has no member ID to run the transport with yet).
pub async fn fetch_members(
    identity: &Identity,
    peer_trust: &tls::PeerTrust,
    url: &str,
    timeout: Duration,
) -> Result<MembersResponse, TransportError> {
    let addr = PeerAddr::from_url(url).await?;
    let local: SocketAddr = if addr.addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    // Only the member list is asked for; the transport started afterwards applies the
    // revocation list and name checks to every peer.
    let client_tls = tls::peer_client_config(identity, peer_trust, &tls::CertChecks::default())?;
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
    let request = PeerRequest {
        request: Some(peer_request::Request::Members(MembersRequest {})),
    };
    let answer = exchange(&conn, PeerHello::default(), request, MEMBERS_FRAME_LIMIT).await;
    conn.close(codes::SHUTDOWN, b"done");
    match answer?.and_then(|r| r.response) {
        Some(peer_response::Response::Members(members)) => Ok(members),
        Some(_) => Err(TransportError::PeerRequest("unexpected answer".into())),
        None => Err(TransportError::PeerRequest(
            "the member has no configuration to share yet".into(),
        )),
    }
}
