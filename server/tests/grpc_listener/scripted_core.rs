//! A small scripted core behind the gRPC listener for its tests: a key-value map with
//! revisions, leases, one member, watches fed by puts, and etcd's errors for compacted
//! revisions and unknown leases. It exists only to check the translation layer; the real core
//! is exercised by the etcdctl compatibility test in `tests/`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use prost::bytes::Bytes;
use qraft_proto::etcdserverpb::{self as pb, watch_request};
use qraft_proto::mvccpb;
use qraft_proto::qraftpb::{
    ClientRequest, ClientResponse, Error, client_request::Request as Rq,
    client_response::Response as Rs,
};
use qraft_server::grpc::{CallContext, Code, CoreHandle, ResponseStream};

pub const COMPACTED: &str = "etcdserver: mvcc: required revision has been compacted";
pub const LEASE_NOT_FOUND: &str = "etcdserver: requested lease not found";

#[derive(Default)]
struct State {
    revision: i64,
    compacted: i64,
    kv: BTreeMap<Bytes, mvccpb::KeyValue>,
    leases: BTreeMap<i64, i64>,
    watchers: Vec<mpsc::UnboundedSender<mvccpb::KeyValue>>,
}

/// The scripted state, shared with the tasks that serve streams.
#[derive(Default)]
pub struct Inner {
    state: Mutex<State>,
    /// The token of every request, in arrival order.
    pub tokens: Mutex<Vec<String>>,
}

#[derive(Clone, Default)]
pub struct ScriptedCore {
    pub inner: Arc<Inner>,
}

fn header(revision: i64) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader {
        cluster_id: 7,
        member_id: 1,
        revision,
        raft_term: 2,
    })
}

fn error(code: Code, message: &str) -> Rs {
    Rs::Error(Error {
        code: code as i32,
        message: message.into(),
        leader_hint: 0,
    })
}

fn respond(response: Rs) -> ClientResponse {
    ClientResponse {
        response: Some(response),
    }
}

impl Inner {
    fn answer(&self, request: ClientRequest) -> Rs {
        self.tokens
            .lock()
            .expect("tokens lock")
            .push(request.token.clone());
        let Some(request) = request.request else {
            return error(Code::InvalidArgument, "empty request");
        };
        let mut state = self.state.lock().expect("state lock");
        match request {
            Rq::Put(put) => {
                state.revision += 1;
                let revision = state.revision;
                let version = state.kv.get(&put.key).map_or(0, |kv| kv.version) + 1;
                let kv = mvccpb::KeyValue {
                    key: put.key.clone(),
                    create_revision: revision,
                    mod_revision: revision,
                    version,
                    value: put.value,
                    lease: put.lease,
                };
                state.kv.insert(put.key, kv.clone());
                state
                    .watchers
                    .retain(|w| w.unbounded_send(kv.clone()).is_ok());
                Rs::Put(pb::PutResponse {
                    header: header(revision),
                    prev_kv: None,
                })
            }
            Rq::Range(range) => {
                if range.revision > 0 && range.revision < state.compacted {
                    return error(Code::OutOfRange, COMPACTED);
                }
                let kvs: Vec<_> = state.kv.get(&range.key).cloned().into_iter().collect();
                Rs::Range(pb::RangeResponse {
                    header: header(state.revision),
                    count: kvs.len() as i64,
                    kvs,
                    more: false,
                })
            }
            Rq::DeleteRange(delete) => {
                let deleted = i64::from(state.kv.remove(&delete.key).is_some());
                state.revision += deleted;
                Rs::DeleteRange(pb::DeleteRangeResponse {
                    header: header(state.revision),
                    deleted,
                    prev_kvs: vec![],
                })
            }
            Rq::Compaction(compaction) => {
                state.compacted = compaction.revision;
                Rs::Compaction(pb::CompactionResponse {
                    header: header(state.revision),
                })
            }
            Rq::LeaseGrant(grant) => {
                let id = if grant.id == 0 { 42 } else { grant.id };
                state.leases.insert(id, grant.ttl);
                Rs::LeaseGrant(pb::LeaseGrantResponse {
                    header: header(state.revision),
                    id,
                    ttl: grant.ttl,
                    error: String::new(),
                })
            }
            Rq::LeaseRevoke(revoke) => match state.leases.remove(&revoke.id) {
                Some(_) => Rs::LeaseRevoke(pb::LeaseRevokeResponse {
                    header: header(state.revision),
                }),
                None => error(Code::NotFound, LEASE_NOT_FOUND),
            },
            Rq::LeaseKeepAlive(keep_alive) => {
                let ttl = state.leases.get(&keep_alive.id).copied().unwrap_or(0);
                Rs::LeaseKeepAlive(pb::LeaseKeepAliveResponse {
                    header: header(state.revision),
                    id: keep_alive.id,
                    ttl,
                })
            }
            Rq::MemberList(_) => Rs::MemberList(pb::MemberListResponse {
                header: header(state.revision),
                members: vec![pb::Member {
                    id: 1,
                    name: "one".into(),
                    ..Default::default()
                }],
            }),
            Rq::Status(_) => Rs::Status(pb::StatusResponse {
                header: header(state.revision),
                version: "0.1.0".into(),
                leader: 1,
                ..Default::default()
            }),
            Rq::Authenticate(auth) => Rs::Authenticate(pb::AuthenticateResponse {
                header: header(state.revision),
                token: format!("token-of-{}", auth.name),
            }),
            Rq::Snapshot(_) => Rs::Snapshot(pb::SnapshotResponse {
                header: header(state.revision),
                remaining_bytes: 0,
                blob: Bytes::from_static(b"snapshot"),
                version: String::new(),
            }),
            _ => error(Code::Unimplemented, "scripted core: not scripted"),
        }
    }

    fn revision(&self) -> i64 {
        self.state.lock().expect("state lock").revision
    }

    fn subscribe(&self) -> mpsc::UnboundedReceiver<mvccpb::KeyValue> {
        let (events_tx, events) = mpsc::unbounded();
        self.state
            .lock()
            .expect("state lock")
            .watchers
            .push(events_tx);
        events
    }
}

impl CoreHandle for ScriptedCore {
    fn call(
        &self,
        _ctx: CallContext,
        request: ClientRequest,
    ) -> BoxFuture<'static, ClientResponse> {
        let response = respond(self.inner.answer(request));
        Box::pin(async move { response })
    }

    fn open_stream(
        &self,
        _ctx: CallContext,
        requests: BoxStream<'static, ClientRequest>,
    ) -> ResponseStream {
        let (out, responses) = mpsc::unbounded::<ClientResponse>();
        let events = self.inner.subscribe();
        async_std::task::spawn(serve_stream(self.inner.clone(), requests, events, out));
        responses.boxed()
    }
}

enum Input {
    Request(ClientRequest),
    HalfClosed,
    Event(mvccpb::KeyValue),
}

/// Watches (create/cancel/progress with ids), keep-alives and snapshots on one stream.
async fn serve_stream(
    inner: Arc<Inner>,
    requests: BoxStream<'static, ClientRequest>,
    events: mpsc::UnboundedReceiver<mvccpb::KeyValue>,
    out: mpsc::UnboundedSender<ClientResponse>,
) {
    let requests = requests
        .map(Input::Request)
        .chain(futures::stream::iter([Input::HalfClosed]));
    let mut inputs = futures::stream::select(requests, events.map(Input::Event));
    let mut watches: Vec<(i64, Bytes)> = Vec::new();
    let mut next_id = 0;
    let send = |response: Rs| out.unbounded_send(respond(response)).is_ok();
    while let Some(input) = inputs.next().await {
        let alive = match input {
            Input::Request(ClientRequest {
                request: Some(Rq::Watch(watch)),
                ..
            }) => match watch.request_union {
                Some(watch_request::RequestUnion::CreateRequest(create)) => {
                    let id = if create.watch_id != 0 {
                        create.watch_id
                    } else {
                        next_id += 1;
                        next_id - 1
                    };
                    watches.push((id, create.key));
                    send(Rs::Watch(pb::WatchResponse {
                        header: header(inner.revision()),
                        watch_id: id,
                        created: true,
                        ..Default::default()
                    }))
                }
                Some(watch_request::RequestUnion::CancelRequest(cancel)) => {
                    let before = watches.len();
                    watches.retain(|(id, _)| *id != cancel.watch_id);
                    before == watches.len()
                        || send(Rs::Watch(pb::WatchResponse {
                            header: header(inner.revision()),
                            watch_id: cancel.watch_id,
                            canceled: true,
                            ..Default::default()
                        }))
                }
                Some(watch_request::RequestUnion::ProgressRequest(_)) => {
                    send(Rs::Watch(pb::WatchResponse {
                        header: header(inner.revision()),
                        watch_id: -1,
                        ..Default::default()
                    }))
                }
                None => true,
            },
            Input::Request(
                request @ ClientRequest {
                    request: Some(Rq::Snapshot(_)),
                    ..
                },
            ) => {
                send(inner.answer(request));
                false
            }
            Input::Request(request) => send(inner.answer(request)),
            Input::HalfClosed => true,
            Input::Event(kv) => watches
                .iter()
                .filter(|(_, key)| *key == kv.key)
                .all(|(id, _)| {
                    send(Rs::Watch(pb::WatchResponse {
                        header: header(kv.mod_revision),
                        watch_id: *id,
                        events: vec![mvccpb::Event {
                            r#type: mvccpb::event::EventType::Put as i32,
                            kv: Some(kv.clone()),
                            prev_kv: None,
                        }],
                        ..Default::default()
                    }))
                }),
        };
        if !alive {
            return;
        }
    }
}
