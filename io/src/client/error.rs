//! The client library's error type.

use qraft_proto::qraftpb::{self, client_response};

use crate::error_responses::Code;
use crate::transport::{FrameError, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error (etcd's message text and gRPC code).
    #[error("{message} (code {code:?})")]
    Status {
        code: Code,
        message: String,
        /// The member believed to be leader, when the server knew (0 = unknown).
        leader_hint: u64,
    },
    #[error("no endpoint reachable: {0}")]
    Unavailable(String),
    #[error("request timed out")]
    Timeout,
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("unexpected response: expected {expected}, got {got}")]
    UnexpectedResponse { expected: &'static str, got: String },
    #[error("the server closed the stream")]
    StreamClosed,
    #[error("client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The gRPC code of a server error.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            ClientError::Timeout => Some(Code::DeadlineExceeded),
            ClientError::Unavailable(_) => Some(Code::Unavailable),
            _ => None,
        }
    }

    pub(super) fn unexpected(
        expected: &'static str,
        got: Option<client_response::Response>,
    ) -> Self {
        let got = match got {
            None => "an empty response".to_string(),
            Some(r) => format!("{r:?}").chars().take(80).collect(),
        };
        ClientError::UnexpectedResponse { expected, got }
    }
}

impl From<qraftpb::Error> for ClientError {
    fn from(e: qraftpb::Error) -> Self {
        ClientError::Status {
            code: Code::from_i32(e.code),
            message: e.message,
            leader_hint: e.leader_hint,
        }
    }
}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        ClientError::Transport(TransportError::Frame(e))
    }
}

impl From<quinn::ConnectionError> for ClientError {
    fn from(e: quinn::ConnectionError) -> Self {
        ClientError::Transport(TransportError::Connection(e))
    }
}

impl From<quinn::WriteError> for ClientError {
    fn from(e: quinn::WriteError) -> Self {
        ClientError::Transport(TransportError::Write(e))
    }
}
