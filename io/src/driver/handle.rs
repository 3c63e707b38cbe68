//! [`DriverHandle`]: how client tasks talk to the loop. Cheap to clone; every call is a command
//! on a bounded queue (back-pressure) answered through a oneshot channel.

use futures::SinkExt;
use futures::channel::{mpsc, oneshot};
use qraft_core::watch::StreamId;
use qraft_proto::etcdserverpb::WatchRequest;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

use super::defrag::DefragResult;
use super::forward::{self, Forwarder};
use super::info::{NodeInfo, SharedInfo};
use super::watch_queue::{WatchResponses, WatchSink, watch_queue};
use crate::status::{Code, error_response};
use crate::storage::{LmdbStorage, StorageError};
use crate::transport::ConnectionRoom;

/// etcd's message when the member is going away.
pub const MSG_STOPPED: &str = "etcdserver: server stopped";

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
        request: WatchRequest,
    },
    WatchClose {
        stream: StreamId,
    },
    /// Leadership transfer (`move-leader`); answered once started.
    TransferLeader {
        to: u64,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// etcd's online defrag, run by the loop (see `defrag`); `done` is this channel, on which
    /// the copy's end comes back as `DefragDone`.
    Defragment {
        reply: oneshot::Sender<DefragResult>,
        done: mpsc::Sender<Command>,
    },
    DefragDone {
        result: DefragResult,
        reply: oneshot::Sender<DefragResult>,
    },
    Shutdown,
}

#[derive(Clone)]
pub struct DriverHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) info: SharedInfo,
    pub(crate) storage: LmdbStorage,
    /// How leader-only requests reach the leader; `None` in the handle that answers other
    /// members' forwarded requests, so a request is forwarded at most once.
    pub(crate) forwarder: Option<Forwarder>,
}

impl DriverHandle {
    /// Answers one client request (for writes, only after the entry is durable and applied).
    /// A request only the leader serves is sent on to the leader when this member is not it.
    pub async fn request(&self, request: ClientRequest) -> ClientResponse {
        match &self.forwarder {
            Some(forwarder) if forward::is_leader_only(&request) => {
                forward::serve(self, forwarder, request).await
            }
            _ => self.request_here(request).await,
        }
    }

    /// Sends one client request through this member's state machine and waits for its answer.
    pub(crate) async fn request_here(&self, request: ClientRequest) -> ClientResponse {
        let (reply, answer) = oneshot::channel();
        if self
            .send(Command::Request { request, reply })
            .await
            .is_err()
        {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }

    /// The health probes' read of this member, serializable or linearizable; auth does not
    /// gate it (see `Server::health_read`).
    pub async fn health_read(&self, serializable: bool) -> ClientResponse {
        let (reply, answer) = oneshot::channel();
        let command = Command::HealthRead {
            serializable,
            reply,
        };
        if self.send(command).await.is_err() {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }

    /// Defragments the member's file while it keeps serving (see `defrag`).
    pub async fn defragment(&self) -> DefragResult {
        let (reply, answer) = oneshot::channel();
        let command = Command::Defragment {
            reply,
            done: self.commands.clone(),
        };
        if self.send(command).await.is_err() {
            return Err(StorageError::Closed);
        }
        answer.await.unwrap_or(Err(StorageError::Closed))
    }

    /// A snapshot of what the loop last published about the member.
    pub fn info(&self) -> NodeInfo {
        self.info.get()
    }

    /// The member's storage, for read-only work outside the loop (status sizes, snapshots).
    pub fn storage(&self) -> &LmdbStorage {
        &self.storage
    }

    pub async fn transfer_leader(&self, to: u64) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::TransferLeader { to, reply })
            .await
            .map_err(|_| MSG_STOPPED.to_string())?;
        answer.await.map_err(|_| MSG_STOPPED.to_string())?
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
        self.send(Command::Watch {
            stream,
            caller,
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
    error_response(Code::Unavailable, MSG_STOPPED)
}
