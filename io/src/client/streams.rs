//! Long-lived calls: lease keep-alive and snapshot download (watch: `watch.rs`), each on its
//! own stream.

use qraft_proto::etcdserverpb::{
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, SnapshotRequest, SnapshotResponse,
};
use qraft_proto::qraftpb::client_request::Request;
use qraft_proto::qraftpb::client_response::Response;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

use super::{Client, ClientError};
use crate::transport::{FrameReader, encode_frame};

/// A request/response stream on one QUIC bidirectional stream.
pub(super) struct Call {
    pub(super) send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// Keeps a partly read response across `next` calls, so `next` is cancel-safe.
    reader: FrameReader,
    limit: usize,
}

impl Call {
    pub(super) async fn open(client: &Client, request: Request) -> Result<Self, ClientError> {
        let req = client.with_token(request);
        let (send, recv, _) = client.open_request(&req).await?;
        Ok(Self {
            send,
            recv,
            reader: FrameReader::default(),
            limit: client.inner.config.max_response_bytes,
        })
    }

    pub(super) async fn send(&mut self, req: &ClientRequest) -> Result<(), ClientError> {
        let mut buf = Vec::new();
        encode_frame(req, &mut buf)?;
        self.send.write_all(&buf).await?;
        Ok(())
    }

    /// The next response; a server error becomes `Err`, a clean end `None`. Cancel-safe: a
    /// call dropped before it completes (a timeout) loses nothing of the stream.
    pub(super) async fn next(&mut self) -> Option<Result<Response, ClientError>> {
        match self
            .reader
            .next::<ClientResponse, _>(&mut self.recv, self.limit)
            .await
        {
            Ok(Some(ClientResponse {
                response: Some(Response::Error(e)),
            })) => Some(Err(e.into())),
            Ok(Some(ClientResponse { response: Some(r) })) => Some(Ok(r)),
            Ok(Some(ClientResponse { response: None })) => {
                Some(Err(ClientError::unexpected("a response", None)))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

impl Client {
    /// A keep-alive stream for `lease_id`; the stream opens on the first
    /// [`LeaseKeepAlive::keep_alive`].
    pub fn lease_keep_alive(&self, lease_id: i64) -> LeaseKeepAlive {
        LeaseKeepAlive {
            client: self.clone(),
            lease_id,
            call: None,
        }
    }

    /// Starts downloading a snapshot of the member's storage.
    pub async fn snapshot(&self) -> Result<SnapshotStream, ClientError> {
        Ok(SnapshotStream {
            call: Call::open(self, Request::Snapshot(SnapshotRequest {})).await?,
        })
    }
}

/// Keeps one lease alive over a long-lived stream, reopening it if it broke.
pub struct LeaseKeepAlive {
    client: Client,
    lease_id: i64,
    call: Option<Call>,
}

impl LeaseKeepAlive {
    /// Sends one keep-alive and waits for its answer (TTL 0 = the lease is gone). Only the
    /// leader renews leases; a follower forwards the keep-alive to it and answers itself. A
    /// member that still answers "not leader" or "no leader" makes the stream move to another
    /// endpoint (the named leader when known) and ask again (a keep-alive is idempotent).
    pub async fn keep_alive(&mut self) -> Result<LeaseKeepAliveResponse, ClientError> {
        let timeout = self.client.inner.config.request_timeout;
        match crate::runtime::timeout(timeout, self.exchange_on_leader()).await {
            Ok(result) => result,
            Err(_) => {
                self.call = None;
                Err(ClientError::Timeout)
            }
        }
    }

    async fn exchange_on_leader(&mut self) -> Result<LeaseKeepAliveResponse, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.exchange().await {
                Err(error)
                    if attempt <= self.client.inner.config.max_retries
                        && self.client.follow_leader(&error).await =>
                {
                    self.client.pause(attempt).await;
                }
                result => return result,
            }
        }
    }

    async fn exchange(&mut self) -> Result<LeaseKeepAliveResponse, ClientError> {
        let request = Request::LeaseKeepAlive(LeaseKeepAliveRequest { id: self.lease_id });
        let call = match self.call.as_mut() {
            Some(call) => {
                let req = self.client.with_token(request);
                if let Err(e) = call.send(&req).await {
                    self.call = None;
                    return Err(e);
                }
                call
            }
            None => self.call.insert(Call::open(&self.client, request).await?),
        };
        let result = match call.next().await {
            Some(Ok(Response::LeaseKeepAlive(r))) => Ok(r),
            Some(Ok(other)) => Err(ClientError::unexpected("LeaseKeepAlive", Some(other))),
            Some(Err(e)) => Err(e),
            None => Err(ClientError::StreamClosed),
        };
        if result.is_err() {
            self.call = None;
        }
        result
    }
}

/// Snapshot chunks as the server sends them.
pub struct SnapshotStream {
    call: Call,
}

impl SnapshotStream {
    /// The next chunk; `None` after the last one.
    pub async fn next(&mut self) -> Option<Result<SnapshotResponse, ClientError>> {
        Some(match self.call.next().await? {
            Ok(Response::Snapshot(s)) => Ok(s),
            Ok(other) => Err(ClientError::unexpected("Snapshot", Some(other))),
            Err(e) => Err(e),
        })
    }
}
