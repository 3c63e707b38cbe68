//! Connections, endpoint selection, leader redirection and the retry loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use qraft_proto::qraftpb::{ClientRequest, ClientResponse, client_request, client_response};

use super::{ClientConfig, ClientError};
use crate::runtime;
use crate::transport::{TransportError, bind, client_config, encode_frame, read_frame};
use qraft_core::error::Error;

/// A handle to the cluster; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    endpoint: quinn::Endpoint,
    pub(super) config: ClientConfig,
    /// Endpoint URLs: the configured ones plus leaders' URLs learned from member lists.
    urls: Mutex<Vec<String>>,
    /// Index into `urls` to try first.
    preferred: Mutex<usize>,
    active: futures::lock::Mutex<Option<(usize, quinn::Connection)>>,
    token: Mutex<Option<String>>,
}

/// How an attempt failed, which decides whether it may be repeated.
pub(super) enum Failure {
    /// The request never reached a server in full: always safe to retry.
    NotSent(ClientError),
    /// The request may have been processed.
    MaybeSent(ClientError),
}

impl Client {
    /// Creates the client and dials the first reachable endpoint, so a bad address or CA shows
    /// up here rather than on the first call.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        if config.endpoints.is_empty() {
            return Err(ClientError::Config("no endpoints given".into()));
        }
        let tls = crate::tls::client_dial_config(&config.ca, config.identity.as_ref())
            .map_err(TransportError::from)?;
        let quic = client_config(tls, &config.quic)?;
        let endpoint = match bind(SocketAddr::from(([0u16; 8], 0)), None, Some(quic.clone())) {
            Ok(ep) => ep,
            Err(_) => bind(SocketAddr::from(([0, 0, 0, 0], 0)), None, Some(quic))?,
        };
        let client = Self {
            inner: Arc::new(Inner {
                endpoint,
                urls: Mutex::new(config.endpoints.clone()),
                config,
                preferred: Mutex::new(0),
                active: futures::lock::Mutex::new(None),
                token: Mutex::new(None),
            }),
        };
        client.connection().await?;
        Ok(client)
    }

    /// Uses `token` (from `authenticate`) on every following request.
    pub fn set_token(&self, token: Option<String>) {
        *lock(&self.inner.token) = token;
    }

    /// Closes all connections.
    pub fn close(&self) {
        self.inner
            .endpoint
            .close(crate::transport::codes::SHUTDOWN, b"client closed");
    }

    /// The live connection, dialing the preferred endpoint first and then the others.
    pub(super) async fn connection(&self) -> Result<quinn::Connection, ClientError> {
        let mut active = self.inner.active.lock().await;
        if let Some((_, conn)) = active.as_ref()
            && conn.close_reason().is_none()
        {
            return Ok(conn.clone());
        }
        *active = None;
        let urls = lock(&self.inner.urls).clone();
        let start = *lock(&self.inner.preferred) % urls.len().max(1);
        let mut errors = Vec::new();
        for i in (0..urls.len()).map(|k| (start + k) % urls.len()) {
            match self.dial(&urls[i]).await {
                Ok(conn) => {
                    *active = Some((i, conn.clone()));
                    *lock(&self.inner.preferred) = i;
                    return Ok(conn);
                }
                Err(e) => errors.push(format!("{}: {e}", urls[i])),
            }
        }
        Err(ClientError::Unavailable(errors.join("; ")))
    }

    async fn dial(&self, url: &str) -> Result<quinn::Connection, ClientError> {
        let (addr, server_name) = crate::transport::resolve_url(url).await?;
        let connecting = self
            .inner
            .endpoint
            .connect(addr, &server_name)
            .map_err(TransportError::from)?;
        runtime::timeout(self.inner.config.dial_timeout, connecting)
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(ClientError::from)
    }

    /// Drops the current connection and moves to the next endpoint (or to `url`).
    pub(super) async fn switch_endpoint(&self, url: Option<&str>) {
        let mut active = self.inner.active.lock().await;
        let current = active.take().map(|(i, _)| i).unwrap_or(0);
        let mut urls = lock(&self.inner.urls);
        let next = match url {
            Some(url) => match urls.iter().position(|u| u == url) {
                Some(i) => i,
                None => {
                    urls.push(url.to_string());
                    urls.len() - 1
                }
            },
            None => (current + 1) % urls.len().max(1),
        };
        *lock(&self.inner.preferred) = next;
    }

    /// How many endpoints this client knows (configured and learned).
    pub(super) fn endpoint_count(&self) -> usize {
        lock(&self.inner.urls).len()
    }

    pub(super) fn token(&self) -> String {
        lock(&self.inner.token).clone().unwrap_or_default()
    }

    pub(super) fn with_token(&self, request: client_request::Request) -> ClientRequest {
        ClientRequest {
            token: self.token(),
            cert_common_name: String::new(),
            token_claims: None,
            request: Some(request),
        }
    }

    /// Sends a unary request with the retry rules described in the module docs, within the
    /// request timeout.
    pub(super) async fn call(
        &self,
        request: client_request::Request,
        idempotent: bool,
    ) -> Result<ClientResponse, ClientError> {
        let req = self.with_token(request);
        match runtime::timeout(
            self.inner.config.request_timeout,
            self.call_retrying(req, idempotent),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => {
                // QUIC over UDP learns of a killed member only at the idle timeout; until then
                // its connection looks alive and swallows requests. A request that got no
                // answer in time is the best evidence we have: later calls dial the next
                // endpoint (calls in flight keep their own handle on the old connection).
                self.switch_endpoint(None).await;
                Err(ClientError::Timeout)
            }
        }
    }

    async fn call_retrying(
        &self,
        req: ClientRequest,
        idempotent: bool,
    ) -> Result<ClientResponse, ClientError> {
        let mut attempt = 0u32;
        // Learners that refused this call, and the first refusal: etcd's clientv3 moves on to
        // the next endpoint on `rpc not supported for learner`; qraft tries each endpoint once
        // and reports the first refusal when all of them refused.
        let mut learner_refusals = 0usize;
        let mut first_refusal = None;
        loop {
            let may_retry = attempt < self.inner.config.max_retries;
            attempt += 1;
            let error = match self.attempt(&req).await {
                Ok(ClientResponse {
                    response: Some(client_response::Response::Error(e)),
                }) => ClientError::from(e),
                Ok(resp) => return Ok(resp),
                Err(Failure::NotSent(e)) => {
                    if !may_retry {
                        return Err(e);
                    }
                    self.switch_endpoint(None).await;
                    self.pause(attempt).await;
                    continue;
                }
                Err(Failure::MaybeSent(e)) => {
                    if !(idempotent && may_retry) {
                        return Err(e);
                    }
                    self.switch_endpoint(None).await;
                    self.pause(attempt).await;
                    continue;
                }
            };
            if refused_by_learner(&error) {
                learner_refusals += 1;
                let first = first_refusal.take().unwrap_or(error);
                if learner_refusals >= self.endpoint_count() {
                    return Err(first);
                }
                first_refusal = Some(first);
                // A learner's refusal is not a failed attempt: the next endpoint is tried at
                // once, and the retry budget stays for the errors it is meant for.
                attempt -= 1;
                self.switch_endpoint(None).await;
                continue;
            }
            if !may_retry || !self.follow_leader(&error).await {
                return Err(error);
            }
            self.pause(attempt).await;
        }
    }

    pub(super) async fn pause(&self, attempt: u32) {
        let factor = 1u32 << attempt.min(6);
        runtime::sleep(self.inner.config.retry_backoff * factor / 2).await;
    }

    /// One try on the current connection.
    pub(super) async fn attempt(&self, req: &ClientRequest) -> Result<ClientResponse, Failure> {
        let (mut send, mut recv, stopped) =
            self.open_request(req).await.map_err(Failure::NotSent)?;
        let _ = send.finish();
        let limit = self.inner.config.max_response_bytes;
        match read_frame::<ClientResponse, _>(&mut recv, limit).await {
            Ok(Some(resp)) => Ok(resp),
            // A server stops a request stream it never read in full: it was not processed.
            Ok(None) if stopped => Err(Failure::NotSent(ClientError::StreamClosed)),
            Err(e) if stopped => Err(Failure::NotSent(e.into())),
            Ok(None) => Err(Failure::MaybeSent(ClientError::StreamClosed)),
            Err(e) => Err(Failure::MaybeSent(e.into())),
        }
    }

    /// Opens a stream on the current connection and writes `req` as its first frame. The
    /// flag tells that the server stopped reading before the whole request was written (it
    /// refused it, e.g. as too large; its answer is still readable).
    pub(super) async fn open_request(
        &self,
        req: &ClientRequest,
    ) -> Result<(quinn::SendStream, quinn::RecvStream, bool), ClientError> {
        let conn = self.connection().await?;
        let (mut send, recv) = conn.open_bi().await?;
        let mut buf = Vec::new();
        encode_frame(req, &mut buf)?;
        match send.write_all(&buf).await {
            Ok(()) => Ok((send, recv, false)),
            Err(quinn::WriteError::Stopped(_)) => Ok((send, recv, true)),
            Err(e) => Err(e.into()),
        }
    }

    /// After `error` from a member that refused to act for not being the leader, moves this
    /// client to the leader it named (or the next endpoint); returns whether the request may
    /// be repeated there.
    /// A learner's refusal moves the client to the next endpoint the same way.
    pub(super) async fn follow_leader(&self, error: &ClientError) -> bool {
        if !refused_before_proposal(error) && !refused_by_learner(error) {
            return false;
        }
        let leader_url = match error {
            ClientError::Status { leader_hint, .. } if *leader_hint != 0 => {
                self.leader_url(*leader_hint).await
            }
            _ => None,
        };
        self.switch_endpoint(leader_url.as_deref()).await;
        true
    }

    /// The client URL of member `id`: from a member list, or else (a member may not know the
    /// others' client URLs, but each knows who it is) the endpoint that says it is `id`.
    async fn leader_url(&self, id: u64) -> Option<String> {
        if let Some(url) = self.url_from_member_list(id).await {
            return Some(url);
        }
        let urls = lock(&self.inner.urls).clone();
        for url in urls {
            if self.member_id_at(&url).await == Some(id) {
                return Some(url);
            }
        }
        None
    }

    async fn url_from_member_list(&self, id: u64) -> Option<String> {
        let req = self.with_token(client_request::Request::MemberList(Default::default()));
        let resp = self.attempt(&req).await.ok()?;
        let Some(client_response::Response::MemberList(list)) = resp.response else {
            return None;
        };
        let urls: HashMap<u64, Vec<String>> = list
            .members
            .into_iter()
            .map(|m| (m.id, m.client_ur_ls))
            .collect();
        urls.get(&id)?.first().cloned()
    }

    /// The member ID behind `url`, from its `Status` on a connection of its own.
    async fn member_id_at(&self, url: &str) -> Option<u64> {
        let conn = self.dial(url).await.ok()?;
        let req = self.with_token(client_request::Request::Status(Default::default()));
        let mut buf = Vec::new();
        encode_frame(&req, &mut buf).ok()?;
        let limit = self.inner.config.max_response_bytes;
        let exchange = async {
            let (mut send, mut recv) = conn.open_bi().await.ok()?;
            send.write_all(&buf).await.ok()?;
            let _ = send.finish();
            read_frame::<ClientResponse, _>(&mut recv, limit)
                .await
                .ok()?
        };
        let resp = runtime::timeout(self.inner.config.dial_timeout, exchange)
            .await
            .ok()
            .flatten();
        conn.close(0u32.into(), b"");
        match resp?.response {
            Some(client_response::Response::Status(status)) => status.header.map(|h| h.member_id),
            _ => None,
        }
    }
}

/// A learner refused the call (it serves only `Status`, serializable ranges and snapshots);
/// it never proposed the request, and a voting member may serve it.
pub(super) fn refused_by_learner(error: &ClientError) -> bool {
    is_core_error(error, &Error::NotSupportedForLearner)
}

fn is_core_error(error: &ClientError, expected: &Error) -> bool {
    matches!(error, ClientError::Status { code, message, .. }
        if expected.code() == *code && expected.to_string() == *message)
}

/// Errors that prove the server did not propose the request, so repeating it is safe.
fn refused_before_proposal(error: &ClientError) -> bool {
    [Error::NotLeader, Error::NoLeader, Error::TooManyRequests]
        .iter()
        .any(|e| is_core_error(error, e))
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
