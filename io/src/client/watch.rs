//! A watch stream that survives the loss of its member.
//!
//! The client remembers, for every watcher the server confirmed, the request that created it
//! and the next revision it has not delivered yet. When the stream breaks (the connection is
//! lost, the member shuts down, or the stream ends while watchers are active), [`Watch::next`]
//! reopens it on the next endpoint and re-creates every watcher with the same id and
//! `start_revision` = that next revision, as etcd's clientv3 does — so the caller sees every
//! event exactly once and in revision order across leader changes and member restarts.
//!
//! Limitation: a response split with `fragment` is resumed after its last complete revision
//! only when the final fragment arrived; a break between fragments re-delivers that revision.

use std::collections::{BTreeMap, HashSet, VecDeque};

use qraft_proto::etcdserverpb::{
    WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
    watch_request,
};
use qraft_proto::qraftpb::ClientRequest;
use qraft_proto::qraftpb::client_request::Request;
use qraft_proto::qraftpb::client_response::Response;

use super::core::refused_by_learner;
use super::streams::Call;
use super::{Client, ClientError};
use crate::error_responses::Code;
use crate::runtime;

/// The server's id for "no watcher" (progress of the whole stream, refused creates).
const INVALID_WATCH_ID: i64 = -1;

/// A watch stream: several watchers can be created and cancelled on it; events of all of them
/// arrive through [`Watch::next`]. Broken streams are resumed transparently (module docs).
pub struct Watch {
    client: Client,
    token: String,
    call: Option<Call>,
    /// Confirmed watchers by id.
    active: BTreeMap<i64, Watcher>,
    /// Create requests sent and not yet confirmed, in the order the server answers them.
    pending: VecDeque<WatchCreateRequest>,
    /// Watchers re-created after a break whose `created` notice is not shown again.
    resuming: HashSet<i64>,
    /// Learners that refused this stream since its last answer: a learner serves no watch, so
    /// the stream moves on to the next endpoint, once per endpoint (etcd's clientv3 moves on
    /// too), and reports the refusal when every endpoint refused.
    learner_refusals: usize,
    /// Times the stream broke and was reopened (diagnostics: a resume is invisible otherwise).
    resumes: u64,
}

struct Watcher {
    create: WatchCreateRequest,
    /// The first revision not yet delivered to the caller.
    next_rev: i64,
}

impl Client {
    /// Opens a watch stream with its first watcher.
    pub async fn watch(&self, create: WatchCreateRequest) -> Result<Watch, ClientError> {
        let mut watch = Watch {
            client: self.clone(),
            token: self.token(),
            call: None,
            active: BTreeMap::new(),
            pending: VecDeque::from([create.clone()]),
            resuming: HashSet::new(),
            learner_refusals: 0,
            resumes: 0,
        };
        watch.call = Some(Call::open(self, create_request(create)).await?);
        Ok(watch)
    }
}

impl Watch {
    /// Adds a watcher to this stream.
    pub async fn create(&mut self, create: WatchCreateRequest) -> Result<(), ClientError> {
        self.pending.push_back(create.clone());
        self.send(watch_request::RequestUnion::CreateRequest(create))
            .await
    }

    /// Cancels watcher `watch_id`.
    pub async fn cancel(&mut self, watch_id: i64) -> Result<(), ClientError> {
        self.active.remove(&watch_id);
        self.send(watch_request::RequestUnion::CancelRequest(
            WatchCancelRequest { watch_id },
        ))
        .await
    }

    /// Asks for a progress notification.
    pub async fn request_progress(&mut self) -> Result<(), ClientError> {
        self.send(watch_request::RequestUnion::ProgressRequest(
            WatchProgressRequest {},
        ))
        .await
    }

    /// The next watch response (created/canceled notices, events, progress); `None` when the
    /// stream ended with no watcher left. A broken stream is reopened first; an error is
    /// returned only when that fails within the request timeout (calling `next` again retries)
    /// or when the server refused the stream for good.
    ///
    /// Cancel-safe: a call dropped before it returns (a timeout, a `select`) loses no
    /// response; the next call goes on where it stopped.
    pub async fn next(&mut self) -> Option<Result<WatchResponse, ClientError>> {
        loop {
            let Some(call) = self.call.as_mut() else {
                if let Err(e) = self.resume().await {
                    return Some(Err(e));
                }
                continue;
            };
            match call.next().await {
                Some(Ok(Response::Watch(w))) => {
                    self.learner_refusals = 0;
                    if let Some(w) = self.track(w) {
                        return Some(Ok(w));
                    }
                }
                Some(Ok(other)) => return Some(Err(ClientError::unexpected("Watch", Some(other)))),
                Some(Err(e)) if is_break(&e) => self.call = None,
                Some(Err(e)) if refused_by_learner(&e) => {
                    self.learner_refusals += 1;
                    if self.learner_refusals >= self.client.endpoint_count() {
                        return Some(Err(e));
                    }
                    self.call = None;
                }
                Some(Err(e)) => return Some(Err(e)),
                None if self.active.is_empty() && self.pending.is_empty() => return None,
                None => self.call = None,
            }
            self.resumes += 1;
            tracing::debug!(
                watchers = self.active.len(),
                "watch stream broke; resuming on the next endpoint"
            );
        }
    }

    /// How many times the stream broke and was reopened so far.
    pub fn resumes(&self) -> u64 {
        self.resumes
    }

    /// Closes our side; the server cancels the stream's watchers.
    pub fn close(mut self) {
        if let Some(call) = self.call.as_mut() {
            let _ = call.send.finish();
        }
    }

    /// Sends on the live stream; on a broken one the request waits for the resume (creates and
    /// cancels are part of the state it replays; a progress request is simply dropped).
    async fn send(&mut self, union: watch_request::RequestUnion) -> Result<(), ClientError> {
        let req = ClientRequest {
            token: self.token.clone(),
            cert_common_name: String::new(),
            token_claims: None,
            request: Some(Request::Watch(WatchRequest {
                request_union: Some(union),
            })),
        };
        let Some(call) = self.call.as_mut() else {
            return Ok(());
        };
        match call.send(&req).await {
            Err(e) if is_break(&e) => {
                self.call = None;
                Ok(())
            }
            other => other,
        }
    }

    /// Updates the resume state from one response; `None` hides a re-creation notice.
    fn track(&mut self, w: WatchResponse) -> Option<WatchResponse> {
        let revision = w.header.as_ref().map_or(0, |h| h.revision);
        if w.created {
            if self.resuming.remove(&w.watch_id) {
                if w.canceled {
                    self.active.remove(&w.watch_id);
                    return Some(w);
                }
                return None;
            }
            let create = self.pending.pop_front().unwrap_or_default();
            if !w.canceled && w.watch_id != INVALID_WATCH_ID {
                let next_rev = if create.start_revision > 0 {
                    create.start_revision
                } else {
                    revision + 1
                };
                self.active.insert(w.watch_id, Watcher { create, next_rev });
            }
            return Some(w);
        }
        if w.canceled {
            self.active.remove(&w.watch_id);
            return Some(w);
        }
        if let Some(last) = w.events.last().and_then(|e| e.kv.as_ref()) {
            if !w.fragment
                && let Some(watcher) = self.active.get_mut(&w.watch_id)
            {
                watcher.next_rev = watcher.next_rev.max(last.mod_revision + 1);
            }
        } else {
            // A progress notice: everything up to `revision` was delivered to the watcher
            // (or, with id -1, to every watcher of the stream).
            for (id, watcher) in &mut self.active {
                if w.watch_id == INVALID_WATCH_ID || w.watch_id == *id {
                    watcher.next_rev = watcher.next_rev.max(revision + 1);
                }
            }
        }
        Some(w)
    }

    /// Reopens the stream on the next endpoint and re-creates every watcher from where it
    /// stopped, retrying with backoff within the client's request timeout.
    async fn resume(&mut self) -> Result<(), ClientError> {
        let timeout = self.client.inner.config.request_timeout;
        let deadline = std::time::Instant::now() + timeout;
        let mut backoff = self.client.inner.config.retry_backoff;
        loop {
            self.client.switch_endpoint(None).await;
            match runtime::timeout(timeout, self.reopen()).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) if !is_break(&e) => return Err(e),
                Ok(Err(e)) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) if std::time::Instant::now() >= deadline => {
                    return Err(ClientError::Timeout);
                }
                _ => {}
            }
            runtime::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
        }
    }

    async fn reopen(&mut self) -> Result<(), ClientError> {
        let mut creates: Vec<(WatchCreateRequest, bool)> = self
            .active
            .iter()
            .map(|(id, w)| {
                let mut create = w.create.clone();
                create.watch_id = *id;
                create.start_revision = w.next_rev;
                (create, true)
            })
            .collect();
        creates.extend(self.pending.iter().map(|c| (c.clone(), false)));
        let Some(((first, _), rest)) = creates.split_first() else {
            return Ok(());
        };
        let mut call = Call::open(&self.client, create_request(first.clone())).await?;
        for (create, _) in rest {
            let req = ClientRequest {
                token: self.token.clone(),
                cert_common_name: String::new(),
                token_claims: None,
                request: Some(create_request(create.clone())),
            };
            call.send(&req).await?;
        }
        self.resuming = creates
            .iter()
            .filter(|(_, resumed)| *resumed)
            .map(|(c, _)| c.watch_id)
            .collect();
        self.call = Some(call);
        Ok(())
    }
}

fn create_request(create: WatchCreateRequest) -> Request {
    Request::Watch(WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
    })
}

/// Failures after which the same watchers can be re-created elsewhere: the connection or
/// stream broke, or the member is unavailable (stopping, no leader).
fn is_break(error: &ClientError) -> bool {
    match error {
        ClientError::Status { code, .. } => *code == Code::Unavailable,
        ClientError::Transport(_)
        | ClientError::StreamClosed
        | ClientError::Timeout
        | ClientError::Unavailable(_) => true,
        ClientError::UnexpectedResponse { .. } | ClientError::Config(_) => false,
    }
}
