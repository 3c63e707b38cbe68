//! Client requests only the leader may serve, answered by any member: a follower sends them
//! to the leader as a peer request and hands its answer back, as etcd's followers forward
//! lease renewals and time-to-live queries over the peer port (`/leases`,
//! `/leases/internal`).
//!
//! Only the leader tracks lease deadlines, so `LeaseKeepAlive` and `LeaseTimeToLive` are
//! leader-only; everything else the core serves on any member (writes are proposed through
//! raft, which carries them to the leader). Both client listeners (QUIC and gRPC) reach this
//! through [`DriverHandle::request`], so there is one forwarding path.
//!
//! Within the deadline (etcd's request timeout: 5 s + 2 election timeouts) the follower
//! retries whenever the leader it asked stops being the leader, answers that it is not, or
//! cannot be reached; an attempt is abandoned as soon as this member sees another leader
//! (a killed leader never answers). When the deadline passes it answers with what stood in
//! the way: `no leader`, `leader changed` or `request timed out`. Renewals and time-to-live
//! queries are idempotent, so asking twice is harmless.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use qraft_core::error::Error;
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{
    ClientRequest, ClientResponse, PeerRequest, PeerResponse, peer_request, peer_response,
};

use super::config::DriverConfig;
use super::handle::{DriverHandle, MSG_STOPPED, stopped};
use crate::runtime;
use crate::status::{Code, core_error_response, error_response};
use crate::transport::{PeerRequestHandler, PeerTransport};

/// Pause between attempts, so an unreachable leader is not asked in a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How often an attempt checks whether this member has seen another leader meanwhile.
const LEADER_POLL: Duration = Duration::from_millis(20);

/// Whether only the leader can answer `request`.
pub fn is_leader_only(request: &ClientRequest) -> bool {
    matches!(
        request.request,
        Some(In::LeaseKeepAlive(_) | In::LeaseTimeToLive(_))
    )
}

/// How a member reaches the leader: the peer transport and the time limits.
#[derive(Clone)]
pub(crate) struct Forwarder {
    pub transport: Arc<dyn PeerTransport>,
    /// The whole time a client request may spend looking for a leader that answers.
    pub deadline: Duration,
    /// The longest one attempt may wait for the leader's answer.
    pub attempt: Duration,
}

impl Forwarder {
    pub fn new(transport: Arc<dyn PeerTransport>, config: &DriverConfig) -> Self {
        Self {
            transport,
            deadline: config.forward_timeout,
            attempt: 2 * Duration::from_millis(config.server.election_timeout_ms()),
        }
    }
}

/// Why an attempt did not produce the final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    NoLeader,
    LeaderChanged,
    TimedOut,
}

impl Miss {
    fn error(self) -> Error {
        match self {
            Miss::NoLeader => Error::NoLeader,
            Miss::LeaderChanged => Error::LeaderChanged,
            Miss::TimedOut => Error::Timeout,
        }
    }
}

/// Answers a leader-only request on any member: here when this member leads, else by the
/// leader through the peer transport, retrying across leader changes until the deadline.
pub(crate) async fn serve(
    handle: &DriverHandle,
    forwarder: &Forwarder,
    request: ClientRequest,
) -> ClientResponse {
    let deadline = Instant::now() + forwarder.deadline;
    loop {
        let info = handle.info();
        if info.stopped {
            return stopped();
        }
        let attempt = if info.leader == 0 {
            Err(Miss::NoLeader)
        } else if info.leader == info.member_id {
            Ok(handle.request_here(request.clone()).await)
        } else {
            let left = deadline.saturating_duration_since(Instant::now());
            ask_leader(handle, forwarder, info.leader, &request, left).await
        };
        let miss = match attempt.and_then(final_answer) {
            Ok(response) => return response,
            Err(why) => why,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return core_error_response(&miss.error());
        }
        runtime::sleep(left.min(RETRY_PAUSE)).await;
    }
}

/// Asks `leader`; gives up early when this member sees another leader meanwhile.
async fn ask_leader(
    handle: &DriverHandle,
    forwarder: &Forwarder,
    leader: u64,
    request: &ClientRequest,
    left: Duration,
) -> Result<ClientResponse, Miss> {
    let question = PeerRequest {
        request: Some(peer_request::Request::Forwarded(request.clone())),
    };
    let asked = forwarder
        .transport
        .ask(leader, question, left.min(forwarder.attempt));
    let replaced = leader_replaced(handle, leader);
    futures::pin_mut!(replaced);
    match futures::future::select(asked, replaced).await {
        futures::future::Either::Left((answer, _)) => match answer {
            Ok(Some(PeerResponse {
                response: Some(peer_response::Response::Forwarded(response)),
            })) => Ok(response),
            Ok(_) => Err(Miss::TimedOut),
            // Unreachable or silent: etcd retries such a leader and calls the end a timeout.
            Err(err) => {
                tracing::debug!(leader = format_args!("{leader:x}"), %err, "forwarding to the leader failed");
                Err(Miss::TimedOut)
            }
        },
        futures::future::Either::Right(_) => Err(Miss::LeaderChanged),
    }
}

/// Resolves once this member no longer takes `leader` for the leader.
async fn leader_replaced(handle: &DriverHandle, leader: u64) {
    while handle.info().leader == leader && !handle.info().stopped {
        runtime::sleep(LEADER_POLL).await;
    }
}

/// The answer, unless it says that the asked member could not act as the leader: then the
/// request is tried again (the leader may have changed, or be on its way out).
fn final_answer(response: ClientResponse) -> Result<ClientResponse, Miss> {
    let Some(Out::Error(error)) = &response.response else {
        return Ok(response);
    };
    let message = error.message.as_str();
    if message == Error::NoLeader.to_string() {
        Err(Miss::NoLeader)
    } else if message == Error::NotLeader.to_string()
        || message == Error::LeaderChanged.to_string()
        || message == MSG_STOPPED
    {
        Err(Miss::LeaderChanged)
    } else if message == Error::Timeout.to_string() {
        Err(Miss::TimedOut)
    } else {
        Ok(response)
    }
}

/// The leader's side: answers other members' forwarded requests through its own loop, never
/// forwarding them again (the handle it holds has no forwarder), so a request that reached a
/// member which lost the leadership comes back "not leader" for the asker to retry.
pub(crate) struct ForwardedRequests {
    pub handle: DriverHandle,
}

impl PeerRequestHandler for ForwardedRequests {
    fn answer(
        &self,
        from: u64,
        request: peer_request::Request,
    ) -> BoxFuture<'static, Option<PeerResponse>> {
        let handle = self.handle.clone();
        async move {
            let peer_request::Request::Forwarded(request) = request else {
                return None;
            };
            let response = if is_leader_only(&request) {
                handle.request_here(request).await
            } else {
                tracing::warn!(
                    from = format_args!("{from:x}"),
                    "a member forwarded a request that any member serves"
                );
                error_response(
                    Code::InvalidArgument,
                    "qraft: only leader-only requests are forwarded between members",
                )
            };
            Some(PeerResponse {
                response: Some(peer_response::Response::Forwarded(response)),
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use qraft_proto::etcdserverpb::LeaseKeepAliveResponse;

    use super::*;

    fn error(err: &Error) -> ClientResponse {
        core_error_response(err)
    }

    #[test]
    fn refusals_to_act_as_leader_are_retried_and_everything_else_is_final() {
        let renewed = ClientResponse {
            response: Some(Out::LeaseKeepAlive(LeaseKeepAliveResponse {
                id: 7,
                ttl: 10,
                ..Default::default()
            })),
        };
        assert_eq!(final_answer(renewed.clone()), Ok(renewed));
        let not_found = error(&Error::LeaseNotFound);
        assert_eq!(final_answer(not_found.clone()), Ok(not_found));
        assert_eq!(final_answer(error(&Error::NoLeader)), Err(Miss::NoLeader));
        for changed in [Error::NotLeader, Error::LeaderChanged] {
            assert_eq!(final_answer(error(&changed)), Err(Miss::LeaderChanged));
        }
        assert_eq!(final_answer(stopped()), Err(Miss::LeaderChanged));
        assert_eq!(final_answer(error(&Error::Timeout)), Err(Miss::TimedOut));
    }

    #[test]
    fn misses_end_in_etcds_errors_with_unavailable() {
        for (miss, message) in [
            (Miss::NoLeader, "etcdserver: no leader"),
            (Miss::LeaderChanged, "etcdserver: leader changed"),
            (Miss::TimedOut, "etcdserver: request timed out"),
        ] {
            let err = miss.error();
            assert_eq!(
                (err.code(), err.to_string().as_str()),
                (Code::Unavailable, message)
            );
        }
    }

    #[test]
    fn only_lease_renewals_and_time_to_live_are_leader_only() {
        let with = |request| ClientRequest {
            request: Some(request),
            ..Default::default()
        };
        assert!(is_leader_only(&with(
            In::LeaseKeepAlive(Default::default())
        )));
        assert!(is_leader_only(&with(In::LeaseTimeToLive(
            Default::default()
        ))));
        assert!(!is_leader_only(&with(In::LeaseLeases(Default::default()))));
        assert!(!is_leader_only(&with(In::Range(Default::default()))));
        assert!(!is_leader_only(&ClientRequest::default()));
    }
}
