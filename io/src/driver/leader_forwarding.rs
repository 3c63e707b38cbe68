//! Carrying out the core's forwarding of leader-only requests (`qraft_core::server` decides
//! which requests go to which member, when to ask again and what the client gets; see its
//! `forward` module): [`Forwarder::send`] asks the member named by an `Output::Forward`
//! through the peer transport and hands the outcome back to the loop, which gives it to
//! `Server::forward_answered`. The leader's side, [`ForwardedRequests`], hands other members'
//! forwarded requests to its loop (`Server::forwarded_request`) and sends back the answer.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use qraft_core::server::RequestId;
use qraft_proto::qraftpb::{
    ClientRequest, ClientResponse, PeerRequest, PeerResponse, peer_request, peer_response,
};

use super::handle::DriverHandle;
use super::storage_contract::DriverStorage;
use crate::runtime;
use crate::transport::{PeerRequestHandler, PeerTransport};

/// The outcome of one forwarding attempt, for `Server::forward_answered`.
pub(crate) struct ForwardAnswer {
    pub id: RequestId,
    pub attempt: u64,
    /// The leader's answer; `None` when it could not be reached or did not answer in time.
    pub answer: Option<ClientResponse>,
}

pub(crate) type ForwardAnswers = mpsc::UnboundedReceiver<ForwardAnswer>;

/// Sends forwarded requests through the peer transport, off the loop.
pub(crate) struct Forwarder {
    transport: Arc<dyn PeerTransport>,
    answers: mpsc::UnboundedSender<ForwardAnswer>,
}

impl Forwarder {
    pub fn new(transport: Arc<dyn PeerTransport>) -> (Self, ForwardAnswers) {
        let (answers, rx) = mpsc::unbounded();
        (Self { transport, answers }, rx)
    }

    /// Asks member `to` to serve `request`, waiting at most `timeout`; the outcome comes back
    /// on the loop's [`ForwardAnswers`].
    pub fn send(
        &self,
        id: RequestId,
        attempt: u64,
        to: u64,
        request: ClientRequest,
        timeout: Duration,
    ) {
        let transport = self.transport.clone();
        let answers = self.answers.clone();
        let question = PeerRequest {
            request: Some(peer_request::Request::Forwarded(request)),
        };
        // Detached: it ends with the answer or the timeout.
        drop(runtime::spawn(async move {
            let answer = match transport.ask(to, question, timeout).await {
                Ok(Some(PeerResponse {
                    response: Some(peer_response::Response::Forwarded(response)),
                })) => Some(response),
                Ok(_) => None,
                Err(err) => {
                    tracing::debug!(leader = format_args!("{to:x}"), %err, "forwarding to the leader failed");
                    None
                }
            };
            let _ = answers.unbounded_send(ForwardAnswer {
                id,
                attempt,
                answer,
            });
        }));
    }
}

/// The leader's side: other members' forwarded requests go through its loop
/// (`Server::forwarded_request`, which never forwards them again).
pub(crate) struct ForwardedRequests<S: DriverStorage> {
    pub handle: DriverHandle<S>,
}

impl<S: DriverStorage> PeerRequestHandler for ForwardedRequests<S> {
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
            let response = handle.forwarded(from, request).await;
            Some(PeerResponse {
                response: Some(peer_response::Response::Forwarded(response)),
            })
        }
        .boxed()
    }
}
