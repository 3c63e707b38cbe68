//! A second runtime for qraft-core: three members in one process on tokio, with nothing but
//! the core's public API (this file names only `qraft_core` and `qraft_proto`, never qraft-io;
//! it lives in the test crate so that core itself keeps no async runtime, even among its
//! dev-dependencies). It is the worked example of `docs/embedding.md` and a test: CI fails if
//! this cluster stops serving.
//!
//! - Each member is one tokio task owning a `Server` and a `WatchHub`. It sleeps until an
//!   input arrives or until `Server::poll_timeout()`, feeds the inputs, then carries out what
//!   the core asks (`process`, `deliver`).
//! - Members talk through a "switch" task over tokio mpsc channels: it routes raft messages
//!   and the client requests the core forwards to the leader (`Output::Forward`, lease
//!   keep-alives) by member ID and, like any transport, reports what it could not deliver.
//! - Storage is in memory: the raft log is a `MemStorage` inside the server (persisting a
//!   `RaftWork` means writing it there), the key space a `MemBackend`. A crash stops the task
//!   and keeps `Server::into_storage()`: the log, hard state and snapshot the shell persisted
//!   and the backend's committed transactions, nothing in flight. A restart opens a new
//!   `Server` over them, as after a real crash.
//! - The test puts, gets and watches through one member, renews a lease through a follower,
//!   crashes a follower, writes past the
//!   leader's log compaction while it is down, restarts it and waits for it to catch up (by
//!   snapshot) and serve.

use std::collections::BTreeMap;
use std::time::Duration;

use qraft_core::backend::{Backend, MemBackend};
use qraft_core::raft::{MemStorage, Storage};
use qraft_core::server::{
    OpenedState, Output, PasswordDone, RaftWork, RequestId, Server, ServerConfig,
};
use qraft_core::watch::{StreamId, WatchHub};
use qraft_proto::etcdserverpb::watch_request::RequestUnion;
use qraft_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, PutRequest, RangeRequest, WatchCreateRequest,
    WatchRequest, WatchResponse,
};
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse, MemberRecord, RaftAttributes};
use qraft_proto::raftpb::{ConfState, Message, MessageType};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

mod tokio_member;

use tokio_member::Shell;

type Member = Server<MemStorage, MemBackend>;
type Fatal = Box<dyn std::error::Error + Send + Sync>;

/// What a crash leaves of a member: its raft log (with hard state and snapshot) and backend.
struct Disk {
    storage: MemStorage,
    backend: MemBackend,
}

/// Everything a member's task reacts to, in one inbox.
enum Input {
    /// A raft message from a peer.
    Raft(Message),
    /// The switch could not deliver to this peer (it is down).
    Unreachable(u64),
    /// A snapshot this member sent was delivered or not.
    SnapshotSent {
        to: u64,
        delivered: bool,
    },
    /// A client request; the answer goes to `reply`.
    Client(ClientRequest, oneshot::Sender<ClientResponse>),
    /// A client opens a watch stream; its responses go to `responses`.
    WatchOpen(
        mpsc::UnboundedSender<WatchResponse>,
        oneshot::Sender<StreamId>,
    ),
    Watch(StreamId, WatchRequest),
    /// bcrypt work finished on a blocking thread (`Output::PasswordWork`).
    PasswordDone(PasswordDone),
    /// The state reopened on a blocking thread after a snapshot install (`Output::OpenState`).
    StateOpened(Box<OpenedState>),
    /// A client request member `from` forwarded (its request `id`, attempt `attempt`).
    Forwarded {
        from: u64,
        id: RequestId,
        attempt: u64,
        request: ClientRequest,
    },
    /// The outcome of this member's forwarding attempt (`None`: the member asked is down).
    ForwardAnswer {
        id: RequestId,
        attempt: u64,
        answer: Option<ClientResponse>,
    },
    Status(oneshot::Sender<Status>),
    Crash,
}

/// A member's view, for the test to wait on.
#[derive(Debug, Clone, Copy)]
struct Status {
    leader: u64,
    revision: i64,
    snapshots_installed: u64,
}

/// What the switch carries: raft messages, and members (re)joining with a new inbox.
// Nearly every item is a message: boxing them would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
enum Wire {
    Send(Message),
    Attach(u64, mpsc::UnboundedSender<Input>),
    /// A forwarded client request, from member `from` to member `to`.
    Forward {
        from: u64,
        to: u64,
        id: RequestId,
        attempt: u64,
        request: ClientRequest,
    },
    /// The answer to a forwarded request, back to the member that forwarded it.
    Answer {
        to: u64,
        id: RequestId,
        attempt: u64,
        response: ClientResponse,
    },
}

/// The network: routes each message to its member's inbox. A crashed member's inbox is
/// closed, so sends to it fail and the sender hears `Unreachable`, which makes its raft stop
/// pipelining to that peer. Every snapshot sent is reported, delivered or not: until then the
/// leader sends that follower nothing else.
async fn switch(mut wire: mpsc::UnboundedReceiver<Wire>) {
    let mut inboxes: BTreeMap<u64, mpsc::UnboundedSender<Input>> = BTreeMap::new();
    while let Some(item) = wire.recv().await {
        let message = match item {
            Wire::Attach(id, inbox) => {
                inboxes.insert(id, inbox);
                continue;
            }
            Wire::Send(message) => message,
            Wire::Forward {
                from,
                to,
                id,
                attempt,
                request,
            } => {
                let forwarded = Input::Forwarded {
                    from,
                    id,
                    attempt,
                    request,
                };
                let delivered = inboxes
                    .get(&to)
                    .is_some_and(|inbox| inbox.send(forwarded).is_ok());
                if !delivered && let Some(sender) = inboxes.get(&from) {
                    let answer = None;
                    let _ = sender.send(Input::ForwardAnswer {
                        id,
                        attempt,
                        answer,
                    });
                }
                continue;
            }
            Wire::Answer {
                to,
                id,
                attempt,
                response,
            } => {
                if let Some(inbox) = inboxes.get(&to) {
                    let answer = Some(response);
                    let _ = inbox.send(Input::ForwardAnswer {
                        id,
                        attempt,
                        answer,
                    });
                }
                continue;
            }
        };
        let (from, to) = (message.from, message.to);
        let snapshot = message.r#type() == MessageType::MsgSnap;
        let delivered = inboxes
            .get(&to)
            .is_some_and(|inbox| inbox.send(Input::Raft(message)).is_ok());
        if let Some(sender) = inboxes.get(&from) {
            if snapshot {
                let _ = sender.send(Input::SnapshotSent { to, delivered });
            }
            if !delivered {
                let _ = sender.send(Input::Unreachable(to));
            }
        }
    }
}

const MEMBERS: [u64; 3] = [1, 2, 3];

fn config(id: u64) -> ServerConfig {
    let mut config = ServerConfig::new(id, 0xc1);
    // Fast time, so the test takes about a second: 20 ms ticks, 200 ms election timeout.
    config.tick_ms = 20;
    config.request_timeout_ms = 2_000;
    // Snapshot every 8 entries, keep 2 behind it: a member down for a few writes has to be
    // caught up by snapshot.
    config.snapshot_count = 8;
    config.snapshot_catch_up_entries = 2;
    config
}

/// A new member's disk: the initial configuration in its raft log; the members are recorded
/// in the backend by `bootstrap_members` once the server is open.
fn blank_disk() -> Disk {
    let conf_state = ConfState {
        voters: MEMBERS.to_vec(),
        ..Default::default()
    };
    Disk {
        storage: MemStorage::new_with_conf_state(conf_state),
        backend: MemBackend::new(),
    }
}

struct Running {
    inbox: mpsc::UnboundedSender<Input>,
    task: JoinHandle<Result<Disk, Fatal>>,
}

struct Cluster {
    epoch: Instant,
    wire: mpsc::UnboundedSender<Wire>,
    members: BTreeMap<u64, Running>,
}

impl Cluster {
    fn start() -> Self {
        let (wire, wire_in) = mpsc::unbounded_channel();
        tokio::spawn(switch(wire_in));
        let mut cluster = Cluster {
            epoch: Instant::now(),
            wire,
            members: BTreeMap::new(),
        };
        for id in MEMBERS {
            cluster.open(id, blank_disk());
        }
        cluster
    }

    /// Opens member `id` over `disk` (new or left by a crash) on a task of its own.
    fn open(&mut self, id: u64, disk: Disk) {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        // Secrets (auth tokens, password salts) come from the embedder's CSPRNG. This file is
        // the embedder, so it may seed one from the OS; the core never does.
        #[allow(clippy::disallowed_methods)]
        let secrets = Box::new(StdRng::from_os_rng());
        let mut server = Server::new(config(id), disk.storage, disk.backend, now_ms, secrets)
            .expect("member opens");
        let records = MEMBERS.iter().map(|&other| MemberRecord {
            id: other,
            raft_attrs: Some(RaftAttributes {
                peer_urls: vec![format!("mem://n{other}")],
                is_learner: false,
            }),
            ..Default::default()
        });
        // A no-op on a restart: the backend already knows the members.
        server
            .bootstrap_members(records.collect())
            .expect("members recorded");
        let (inbox, inbox_out) = mpsc::unbounded_channel();
        let _ = self.wire.send(Wire::Attach(id, inbox.clone()));
        let shell = Shell {
            hub: WatchHub::new(server.watch_config()),
            server,
            inbox: inbox.clone(),
            wire: self.wire.clone(),
            epoch: self.epoch,
            next_request: 1,
            waiting: BTreeMap::new(),
            forwarded: BTreeMap::new(),
            watch_streams: BTreeMap::new(),
            snapshots_installed: 0,
        };
        let task = tokio::spawn(shell.run(inbox_out));
        self.members.insert(id, Running { inbox, task });
    }

    /// Stops member `id` as a crash would, and returns what it leaves.
    async fn crash(&mut self, id: u64) -> Disk {
        let running = self.members.remove(&id).expect("member is up");
        let _ = running.inbox.send(Input::Crash);
        running
            .task
            .await
            .expect("member task ran")
            .expect("member had no fatal error")
    }

    fn client(&self, id: u64) -> Client {
        Client(self.members[&id].inbox.clone())
    }
}

/// A client of one member, speaking the core's request and response types directly.
#[derive(Clone)]
struct Client(mpsc::UnboundedSender<Input>);

impl Client {
    async fn call(&self, request: In) -> Out {
        let (reply, answer) = oneshot::channel();
        let request = ClientRequest {
            request: Some(request),
            ..Default::default()
        };
        self.0
            .send(Input::Client(request, reply))
            .expect("member is up");
        let response = answer.await.expect("member answers");
        response.response.expect("a response or an error")
    }

    /// Retries while the cluster has no leader (at the start). Only then: a put that timed
    /// out may still be applied, and retrying it would write twice.
    async fn put(&self, key: &str, value: &str) -> i64 {
        let no_leader = qraft_core::error::Error::NoLeader.to_string();
        for _ in 0..100 {
            let put = PutRequest {
                key: key.as_bytes().to_vec().into(),
                value: value.as_bytes().to_vec().into(),
                ..Default::default()
            };
            match self.call(In::Put(put)).await {
                Out::Put(r) => return r.header.expect("header").revision,
                Out::Error(err) if err.message == no_leader => {
                    eprintln!("put {key}: no leader yet")
                }
                other => panic!("put {key}: {other:?}"),
            }
            sleep(Duration::from_millis(50)).await;
        }
        panic!("put {key} never succeeded");
    }

    async fn get(&self, key: &str, serializable: bool) -> Option<String> {
        let range = RangeRequest {
            key: key.as_bytes().to_vec().into(),
            serializable,
            ..Default::default()
        };
        match self.call(In::Range(range)).await {
            Out::Range(r) => r
                .kvs
                .first()
                .map(|kv| String::from_utf8_lossy(&kv.value).into_owned()),
            other => panic!("get {key}: {other:?}"),
        }
    }

    async fn watch(&self, prefix: &str) -> mpsc::UnboundedReceiver<WatchResponse> {
        let (responses, receiver) = mpsc::unbounded_channel();
        let (reply, stream) = oneshot::channel();
        let _ = self.0.send(Input::WatchOpen(responses, reply));
        let stream = stream.await.expect("stream opened");
        let mut range_end = prefix.as_bytes().to_vec();
        if let Some(last) = range_end.last_mut() {
            *last += 1;
        }
        let create = WatchCreateRequest {
            key: prefix.as_bytes().to_vec().into(),
            range_end: range_end.into(),
            ..Default::default()
        };
        let request = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create)),
        };
        let _ = self.0.send(Input::Watch(stream, request));
        receiver
    }

    async fn status(&self) -> Status {
        let (reply, status) = oneshot::channel();
        let _ = self.0.send(Input::Status(reply));
        status.await.expect("member answers")
    }
}

/// The watch stream's (key, value) events, until `count` arrived. Every response names the
/// cluster, the serving member and a raft term, as etcd's watch headers do.
async fn watched(
    stream: &mut mpsc::UnboundedReceiver<WatchResponse>,
    member: u64,
    count: usize,
) -> Vec<String> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let response = stream.recv().await.expect("watch stream open");
        assert!(
            !response.canceled,
            "watch canceled: {}",
            response.cancel_reason
        );
        let header = response.header.unwrap_or_default();
        assert_eq!((header.cluster_id, header.member_id), (0xc1, member));
        assert!(header.raft_term > 0, "{header:?}");
        for event in response.events {
            let kv = event.kv.expect("event kv");
            seen.push(format!(
                "{}={}",
                String::from_utf8_lossy(&kv.key),
                String::from_utf8_lossy(&kv.value)
            ));
        }
    }
    seen
}

#[tokio::test]
async fn three_members_serve_put_get_watch_and_survive_a_restart() {
    timeout(Duration::from_secs(30), scenario())
        .await
        .expect("the cluster served within 30 s");
}

async fn scenario() {
    let mut cluster = Cluster::start();
    let client = cluster.client(1);

    // Put, get and watch through member 1.
    let mut watch = client.watch("key/").await;
    client.put("key/a", "1").await;
    assert_eq!(client.get("key/a", false).await.as_deref(), Some("1"));

    // A follower other than member 1 crashes; the other two keep serving, well past a log
    // compaction. (Crashing the leader would make member 1's next put time out, and a timed-out
    // put cannot be retried blindly.)
    let leader = client.status().await.leader;

    // A lease renewed through a follower: only the leader tracks lease deadlines, so the
    // follower's core forwards the renewal (`Output::Forward`) and hands back its answer.
    let follower = cluster.client(if leader == 1 { 2 } else { 1 });
    let grant = LeaseGrantRequest {
        ttl: 60,
        ..Default::default()
    };
    let Out::LeaseGrant(granted) = follower.call(In::LeaseGrant(grant)).await else {
        panic!("lease grant through a follower failed");
    };
    let renew = LeaseKeepAliveRequest { id: granted.id };
    match follower.call(In::LeaseKeepAlive(renew)).await {
        Out::LeaseKeepAlive(r) => assert_eq!((r.id, r.ttl), (granted.id, 60)),
        other => panic!("keep-alive through a follower: {other:?}"),
    }

    let down = if leader == 3 { 2 } else { 3 };
    let disk = cluster.crash(down).await;
    let mut last_revision = 0;
    for i in 0..20 {
        last_revision = client.put(&format!("key/b{i:02}"), &i.to_string()).await;
    }
    assert_eq!(client.get("key/b19", false).await.as_deref(), Some("19"));

    // It restarts from what it had persisted and catches up.
    cluster.open(down, disk);
    let restarted = cluster.client(down);
    let caught_up = loop {
        let status = restarted.status().await;
        if status.revision >= last_revision && status.leader != 0 {
            break status;
        }
        sleep(Duration::from_millis(20)).await;
    };
    eprintln!("n{down} caught up: {caught_up:?}");
    assert!(
        caught_up.snapshots_installed > 0,
        "n{down} should have needed the leader's snapshot: {caught_up:?}"
    );
    // It serves: a linearizable read through it sees the last write, and a write through it
    // is seen by the others.
    assert_eq!(restarted.get("key/b19", false).await.as_deref(), Some("19"));
    restarted.put("key/c", "after restart").await;
    assert_eq!(
        client.get("key/c", false).await.as_deref(),
        Some("after restart")
    );

    // The watch on member 1 saw every write, in order, exactly once.
    let mut expected = vec!["key/a=1".to_string()];
    expected.extend((0..20).map(|i| format!("key/b{i:02}={i}")));
    expected.push("key/c=after restart".to_string());
    assert_eq!(watched(&mut watch, 1, expected.len()).await, expected);

    // All three members hold the same key space.
    let mut applied = Vec::new();
    for id in MEMBERS {
        let member = cluster.client(id);
        assert_eq!(
            member.get("key/c", false).await.as_deref(),
            Some("after restart")
        );
        applied.push(member.status().await.revision);
    }
    assert!(applied.iter().all(|&r| r == applied[0]), "{applied:?}");
}
