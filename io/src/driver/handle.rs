//! [`DriverHandle`]: how client tasks talk to the loop. Cheap to clone; every call is a command
//! on a bounded queue (back-pressure) answered through a oneshot channel.

use std::sync::Arc;
use std::time::SystemTime;

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};
use qraft_core::error::Error;
use qraft_core::watch::StreamId;
use qraft_proto::etcdserverpb::WatchRequest;
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse, TokenClaims};

use super::info::{NodeInfo, SharedInfo};
use super::storage_contract::DriverStorage;
use super::watch_queue::{WatchResponses, WatchSink, watch_queue};
use crate::error_responses::{Code, core_error_response, error_response};
use crate::jwt::SignedTokens;
use crate::storage::LmdbStorage;
use crate::transport::ConnectionRoom;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("state machine: {0}")]
    Core(#[from] qraft_core::error::Error),
    #[error("transport: {0}")]
    Transport(#[from] crate::transport::TransportError),
    #[error("the member has stopped")]
    Stopped,
    /// The bcrypt worker threads could not be started.
    #[error("cannot start the password workers: {0}")]
    Workers(#[from] std::io::Error),
    /// The operating system gave no randomness to seed the secret generator with.
    #[error("cannot seed the token and salt generator from the operating system: {0}")]
    Randomness(String),
    /// The member applied its own removal, or a peer refused it as removed.
    #[error("the member has been permanently removed from the cluster")]
    Removed,
}

// Requests dominate the queue; boxing them would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    Request {
        request: ClientRequest,
        reply: oneshot::Sender<ClientResponse>,
    },
    /// The first request of a stream the shell serves, shown to the core first
    /// (`Server::admit`).
    Admit {
        request: ClientRequest,
        reply: oneshot::Sender<ClientResponse>,
    },
    /// A leader-only request another member forwarded (`Server::forwarded_request`).
    Forwarded {
        from: u64,
        request: ClientRequest,
        reply: oneshot::Sender<ClientResponse>,
    },
    /// The health probes' read (`Server::health_read`): not gated by auth.
    HealthRead {
        serializable: bool,
        reply: oneshot::Sender<ClientResponse>,
    },
    WatchOpen {
        responses: WatchSink,
        reply: oneshot::Sender<StreamId>,
    },
    /// A watch stream the loop held back has room again (nothing to do but take a turn).
    WatchRoom,
    Watch {
        stream: StreamId,
        /// The token the client sent with this request and the common name of the
        /// connection's client certificate (empty for none).
        caller: (String, String),
        /// With signed tokens, what the token holds (`DriverHandle::claims`).
        claims: Option<TokenClaims>,
        request: WatchRequest,
    },
    WatchClose {
        stream: StreamId,
    },
    Shutdown,
}

/// `S`: the member's storage (LMDB unless an embedder brings its own `DriverStorage`).
#[derive(Clone)]
pub struct DriverHandle<S: DriverStorage = LmdbStorage> {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) info: SharedInfo,
    pub(crate) storage: S,
    /// `--auth-token jwt,...`: tokens are checked and signed here, on the client's task,
    /// never on the loop (see `crate::jwt`).
    pub(crate) signed_tokens: Option<Arc<SignedTokens>>,
}

impl<S: DriverStorage> DriverHandle<S> {
    /// Answers one client request through this member's state machine (for writes, only after
    /// the entry is durable and applied; a request only the leader serves, after the leader
    /// answered it, when the core forwarded it).
    pub async fn request(&self, mut request: ClientRequest) -> ClientResponse {
        request.token_claims = self.claims(&request.token);
        let signing_in = match &request.request {
            Some(In::Authenticate(r)) if self.signed_tokens.is_some() => Some(r.name.clone()),
            _ => None,
        };
        let answer = self.ask(|reply| Command::Request { request, reply }).await;
        match signing_in {
            Some(name) => self.sign(&name, answer),
            None => answer,
        }
    }

    /// What a signed token holds, checked here (off the loop) for the core to use; `None`
    /// without a token or with simple tokens. Replaces whatever a client sent as claims.
    fn claims(&self, token: &str) -> Option<TokenClaims> {
        let tokens = self.signed_tokens.as_ref().filter(|_| !token.is_empty())?;
        Some(match tokens.verify(token, SystemTime::now()) {
            Some(claims) => TokenClaims {
                valid: true,
                username: claims.username,
                revision: claims.revision,
            },
            None => TokenClaims::default(),
        })
    }

    /// With signed tokens the core answers Authenticate with the auth revision the token is
    /// issued at (`AuthStore::authenticate`): the token is signed here.
    fn sign(&self, name: &str, mut answer: ClientResponse) -> ClientResponse {
        let (Some(tokens), Some(Out::Authenticate(response))) =
            (&self.signed_tokens, &mut answer.response)
        else {
            return answer;
        };
        let Ok(revision) = response.token.parse::<u64>() else {
            return error_response(Code::Internal, "qraft: no auth revision to sign");
        };
        match tokens.sign(name, revision, SystemTime::now()) {
            Ok(token) => {
                response.token = token;
                answer
            }
            // etcd answers errors it has no code for as Unknown.
            Err(err) => error_response(Code::Unknown, err.to_string()),
        }
    }

    /// The core's verdict on the first request of a stream the shell serves (`Server::admit`):
    /// `Some` is its refusal, to answer the call with; `None` lets the call go on.
    pub async fn admit(&self, request: &ClientRequest) -> Option<ClientResponse> {
        let mut request = request.clone();
        request.token_claims = self.claims(&request.token);
        let answer = self.ask(|reply| Command::Admit { request, reply }).await;
        matches!(answer.response, Some(Out::Error(_)) | None).then_some(answer)
    }

    /// A leader-only request member `from` forwarded to this one.
    pub(crate) async fn forwarded(&self, from: u64, request: ClientRequest) -> ClientResponse {
        self.ask(|reply| Command::Forwarded {
            from,
            request,
            reply,
        })
        .await
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<ClientResponse>) -> Command,
    ) -> ClientResponse {
        let (reply, answer) = oneshot::channel();
        if self.send(command(reply)).await.is_err() {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }

    /// The health probes' read of this member, serializable or linearizable; auth does not
    /// gate it (see `Server::health_read`).
    pub async fn health_read(&self, serializable: bool) -> ClientResponse {
        self.ask(|reply| Command::HealthRead {
            serializable,
            reply,
        })
        .await
    }

    /// A snapshot of what the loop last published about the member.
    pub fn info(&self) -> NodeInfo {
        self.info.get()
    }

    /// The member's storage, for read-only work outside the loop (status sizes, snapshots).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Opens a watch stream for a client connection; its responses arrive on the returned
    /// receiver in order, no more than the stream's and the connection's room ahead of the
    /// writer (see [`super::watch_queue`]).
    pub async fn open_watch(
        &self,
        connection: ConnectionRoom,
    ) -> Result<(StreamId, WatchResponses), DriverError> {
        let (responses, rx) = watch_queue(connection, self.commands.clone());
        let (reply, answer) = oneshot::channel();
        self.send(Command::WatchOpen { responses, reply })
            .await
            .map_err(|_| DriverError::Stopped)?;
        let stream = answer.await.map_err(|_| DriverError::Stopped)?;
        Ok((stream, rx))
    }

    /// One watch request of `stream`, made by `caller` (the client's token and its
    /// certificate's common name, checked by the loop).
    pub async fn watch(
        &self,
        stream: StreamId,
        caller: (String, String),
        request: WatchRequest,
    ) -> bool {
        let claims = self.claims(&caller.0);
        self.send(Command::Watch {
            stream,
            caller,
            claims,
            request,
        })
        .await
        .is_ok()
    }

    pub fn close_watch(&self, stream: StreamId) {
        let _ = self
            .commands
            .clone()
            .try_send(Command::WatchClose { stream });
    }

    /// Asks the loop to stop after the current turn.
    pub async fn shutdown(&self) {
        let _ = self.send(Command::Shutdown).await;
    }

    async fn send(&self, command: Command) -> Result<(), mpsc::SendError> {
        self.commands.clone().send(command).await
    }
}

pub(crate) fn stopped() -> ClientResponse {
    core_error_response(&Error::Stopped)
}
