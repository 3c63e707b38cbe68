//! The peer transport over real QUIC and real mutual TLS on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Certs, certs, certs_same_ca, eventually, localhost};
use futures::FutureExt;
use futures::StreamExt;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use qraft_io::runtime;
use qraft_io::storage::{LmdbStorage, StorageConfig, Table};
use qraft_io::transport::{
    PeerAddr, PeerEvent, PeerRequestHandler, PeerTransport, PeerTransportConfig, QuicPeerTransport,
    TransportError, encode_frame,
};
use qraft_proto::Bytes;
use qraft_proto::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use qraft_proto::qraftpb::{
    ClientRequest, ClientResponse, MembersRequest, MembersResponse, PeerFrame, PeerHello,
    PeerRequest, PeerResponse, client_request, client_response, peer_frame, peer_request,
    peer_response,
};
use qraft_proto::raftpb::{Message, MessageType, Snapshot, SnapshotMetadata};

const CLUSTER: u64 = 0xc1;

/// A storage at `dir` holding `n` keys of `len` bytes, applied up to `applied`.
fn storage_with(dir: &std::path::Path, n: u64, len: usize, applied: u64) -> LmdbStorage {
    let storage = LmdbStorage::open(StorageConfig::new(dir)).unwrap();
    storage
        .write(|b| {
            for i in 0..n {
                b.put(Table::Key, &i.to_be_bytes(), &vec![i as u8; len])?;
            }
            b.put(Table::Meta, b"term", &3u64.to_be_bytes())?;
            b.set_applied_index(applied)
        })
        .unwrap();
    storage
}

struct Member {
    transport: Arc<QuicPeerTransport>,
    /// Everything received, in arrival order.
    received: Arc<Mutex<Vec<PeerEvent>>>,
    addr: PeerAddr,
    pump: runtime::Task<()>,
}

fn start(certs: &Certs, id: u64, cluster: u64, listen: std::net::SocketAddr) -> Member {
    try_start(certs, id, cluster, listen).unwrap()
}

fn try_start(
    certs: &Certs,
    id: u64,
    cluster: u64,
    listen: std::net::SocketAddr,
) -> Result<Member, qraft_io::transport::TransportError> {
    let mut config = PeerTransportConfig::new(
        listen,
        certs.identity.clone(),
        certs.roots.clone(),
        cluster,
        id,
    );
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    config.snapshot_chunk = 64 * 1024;
    let (transport, events) = QuicPeerTransport::start(config)?;
    let received = Arc::new(Mutex::new(Vec::new()));
    let pump = runtime::spawn(collect(events, received.clone()));
    let addr = PeerAddr {
        addr: transport.local_addr().unwrap(),
        server_name: "127.0.0.1".into(),
    };
    Ok(Member {
        transport,
        received,
        addr,
        pump,
    })
}

async fn collect(mut events: mpsc::Receiver<PeerEvent>, into: Arc<Mutex<Vec<PeerEvent>>>) {
    while let Some(ev) = events.next().await {
        into.lock().unwrap().push(ev);
    }
}

impl Member {
    fn messages(&self) -> Vec<Message> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                PeerEvent::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn count(&self, pred: impl Fn(&PeerEvent) -> bool) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .count()
    }

    async fn stop(self) {
        self.transport.shutdown().await;
        self.pump.cancel().await;
    }
}

fn heartbeat(from: u64, to: u64, commit: u64) -> Message {
    Message {
        r#type: MessageType::MsgHeartbeat as i32,
        from,
        to,
        term: 1,
        commit,
        ..Default::default()
    }
}

#[test]
fn mtls_peers_exchange_messages_in_order_and_snapshots_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs(&dir.path().join("a"));
    let cb = certs_same_ca(&dir.path().join("a"), &dir.path().join("b"));
    runtime::block_on(async {
        let a = start(&ca, 1, CLUSTER, localhost());
        let b = start(&cb, 2, CLUSTER, localhost());
        a.transport.add_peer(2, b.addr.clone());
        b.transport.add_peer(1, a.addr.clone());

        a.transport
            .send((1..=200).map(|i| heartbeat(1, 2, i)).collect());
        b.transport.send(vec![heartbeat(2, 1, 7)]);
        eventually(Duration::from_secs(10), "200 messages at b", || {
            b.messages().len() == 200
        })
        .await;
        let commits: Vec<u64> = b.messages().iter().map(|m| m.commit).collect();
        assert_eq!(commits, (1..=200).collect::<Vec<_>>(), "order kept");
        eventually(Duration::from_secs(10), "reply at a", || {
            a.messages().len() == 1
        })
        .await;
        assert_eq!(a.messages()[0].commit, 7);

        // A snapshot of ~300 KiB is streamed from a's storage in 64 KiB chunks into a fresh
        // environment at b; the message arrives (metadata only) once all of it is stored.
        let leader = storage_with(&dir.path().join("la"), 300, 1000, 50);
        let follower = storage_with(&dir.path().join("lb"), 3, 10, 3);
        a.transport.serve_snapshots(leader.clone());
        b.transport.serve_snapshots(follower.clone());
        let snap = Message {
            r#type: MessageType::MsgSnap as i32,
            from: 1,
            to: 2,
            term: 3,
            snapshot: Some(Snapshot {
                data: Bytes::new(),
                metadata: Some(SnapshotMetadata {
                    index: 42,
                    term: 3,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        a.transport.send(vec![snap]);
        let is_snap = |m: &Message| m.r#type == MessageType::MsgSnap as i32;
        eventually(Duration::from_secs(10), "snapshot at b", || {
            b.messages().iter().any(is_snap)
        })
        .await;
        let got = b.messages().into_iter().find(is_snap).unwrap();
        let got_snap = got.snapshot.unwrap();
        assert!(got_snap.data.is_empty(), "the data is not in the message");
        let meta = got_snap.metadata.unwrap();
        assert_eq!(meta.index, 50, "the metadata of the data streamed");
        eventually(Duration::from_secs(10), "snapshot status at a", || {
            a.count(|e| *e == PeerEvent::SnapshotStatus { to: 2, ok: true }) == 1
        })
        .await;
        follower.install_received_snapshot(&meta, None).unwrap();
        assert_eq!(follower.applied_index(), 50);
        let value = follower
            .read()
            .unwrap()
            .get(Table::Key, &299u64.to_be_bytes())
            .unwrap()
            .map(<[u8]>::to_vec);
        assert_eq!(value, Some(vec![43u8; 1000]));

        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn peer_with_a_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = certs(&dir.path().join("good"));
    let rogue = certs(&dir.path().join("rogue"));
    runtime::block_on(async {
        let b = start(&good, 2, CLUSTER, localhost());
        let c = start(&rogue, 3, CLUSTER, localhost());
        c.transport.add_peer(2, b.addr.clone());
        b.transport.add_peer(3, c.addr.clone());
        for i in 0..20 {
            c.transport.send(vec![heartbeat(3, 2, i)]);
            b.transport.send(vec![heartbeat(2, 3, i)]);
            runtime::sleep(Duration::from_millis(25)).await;
        }
        eventually(
            Duration::from_secs(10),
            "rogue reports b unreachable",
            || c.count(|e| *e == PeerEvent::Unreachable { to: 2 }) > 0,
        )
        .await;
        eventually(
            Duration::from_secs(10),
            "b reports rogue unreachable",
            || b.count(|e| *e == PeerEvent::Unreachable { to: 3 }) > 0,
        )
        .await;
        // A member that trusts b's CA (so it accepts b's certificate) but presents its own
        // certificate from another CA: b's client-certificate check must refuse it.
        let impostor_certs = Certs {
            paths: rogue.paths.clone(),
            identity: rogue.identity.clone(),
            client_identity: rogue.client_identity.clone(),
            roots: good.roots.clone(),
        };
        let d = start(&impostor_certs, 4, CLUSTER, localhost());
        d.transport.add_peer(2, b.addr.clone());
        for i in 0..20 {
            d.transport.send(vec![heartbeat(4, 2, i)]);
            runtime::sleep(Duration::from_millis(25)).await;
        }
        eventually(
            Duration::from_secs(10),
            "impostor reports b unreachable",
            || d.count(|e| *e == PeerEvent::Unreachable { to: 2 }) > 0,
        )
        .await;
        assert!(
            b.messages().is_empty(),
            "b accepted a message from another CA"
        );
        assert!(c.messages().is_empty(), "rogue accepted a message");
        b.stop().await;
        c.stop().await;
        d.stop().await;
    });
}

#[test]
fn peer_of_another_cluster_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs(&dir.path().join("a"));
    let cb = certs_same_ca(&dir.path().join("a"), &dir.path().join("b"));
    runtime::block_on(async {
        let a = start(&ca, 1, CLUSTER, localhost());
        let stranger = start(&cb, 2, CLUSTER + 1, localhost());
        stranger.transport.add_peer(1, a.addr.clone());
        for i in 0..20 {
            stranger.transport.send(vec![heartbeat(2, 1, i)]);
            runtime::sleep(Duration::from_millis(25)).await;
        }
        eventually(
            Duration::from_secs(10),
            "stranger sees the connection refused",
            || stranger.count(|e| *e == PeerEvent::Unreachable { to: 1 }) > 0,
        )
        .await;
        assert!(
            a.messages().is_empty(),
            "a accepted a message from another cluster"
        );
        a.stop().await;
        stranger.stop().await;
    });
}

#[test]
fn garbage_and_oversized_frames_reset_the_stream_and_the_member_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs(&dir.path().join("a"));
    let cb = certs_same_ca(&dir.path().join("a"), &dir.path().join("b"));
    runtime::block_on(async {
        let a = start(&ca, 1, CLUSTER, localhost());
        let b = start(&cb, 2, CLUSTER, localhost());
        // A raw client with a valid peer certificate, writing whatever it likes.
        let tls = qraft_io::tls::peer_client_config(
            &ca.identity,
            &ca.roots.clone().into(),
            &Default::default(),
        )
        .unwrap();
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut raw = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        raw.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let conn = raw
            .connect(b.addr.addr, "127.0.0.1")
            .unwrap()
            .await
            .unwrap();

        let hello = PeerFrame {
            frame: Some(peer_frame::Frame::Hello(PeerHello {
                cluster_id: CLUSTER,
                member_id: 1,
                server_version: String::new(),
            })),
        };
        let mut hello_bytes = Vec::new();
        encode_frame(&hello, &mut hello_bytes).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3], // absurd length prefix
            [&[0u8, 0, 0, 5][..], &[0xff; 5]].concat(), // body that does not decode
            [hello_bytes.clone(), vec![0xff, 0xff, 0xff, 0xff]].concat(), // oversized after hello
            [
                hello_bytes.clone(),
                vec![0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
            ]
            .concat(),
        ];
        for bytes in cases {
            let mut s = conn.open_uni().await.unwrap();
            s.write_all(&bytes).await.unwrap();
            // The member stops reading the bad stream rather than crashing. (The stream is
            // left open: a finished stream whose bytes were all acknowledged reports success.)
            let stopped = runtime::timeout(Duration::from_secs(5), s.stopped())
                .await
                .unwrap();
            assert!(
                matches!(stopped, Ok(Some(_))),
                "stream not reset: {stopped:?}"
            );
        }
        assert!(b.messages().is_empty());

        a.transport.add_peer(2, b.addr.clone());
        a.transport.send(vec![heartbeat(1, 2, 99)]);
        eventually(Duration::from_secs(10), "b still serves", || {
            b.messages().len() == 1
        })
        .await;
        raw.close(0u32.into(), b"");
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn sender_reconnects_after_the_peer_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs(&dir.path().join("a"));
    let cb = certs_same_ca(&dir.path().join("a"), &dir.path().join("b"));
    runtime::block_on(async {
        let a = start(&ca, 1, CLUSTER, localhost());
        let b = start(&cb, 2, CLUSTER, localhost());
        let b_addr = b.addr.clone();
        a.transport.add_peer(2, b_addr.clone());
        a.transport.send(vec![heartbeat(1, 2, 1)]);
        eventually(Duration::from_secs(10), "first message", || {
            b.messages().len() == 1
        })
        .await;

        b.stop().await;
        // The old socket is released once the endpoint's driver task has wound down.
        let mut b2 = try_start(&cb, 2, CLUSTER, b_addr.addr);
        for _ in 0..100 {
            if b2.is_ok() {
                break;
            }
            runtime::sleep(Duration::from_millis(20)).await;
            b2 = try_start(&cb, 2, CLUSTER, b_addr.addr);
        }
        let b2 = b2.unwrap();
        // Keep sending, as raft would with heartbeats, until the new b hears us.
        let mut commit = 2;
        let mut waited = Duration::ZERO;
        while b2.messages().is_empty() {
            assert!(waited < Duration::from_secs(15), "no reconnect");
            a.transport.send(vec![heartbeat(1, 2, commit)]);
            commit += 1;
            runtime::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
        }
        assert!(b2.messages()[0].commit >= 2);
        a.stop().await;
        b2.stop().await;
    });
}

/// The transport keeps a connection to every peer it knows, traffic or not, and reports each
/// change (the strict reconfiguration check counts the peers a member is connected to).
#[test]
fn links_to_peers_are_kept_up_and_reported_without_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs(&dir.path().join("a"));
    let cb = certs_same_ca(&dir.path().join("a"), &dir.path().join("b"));
    runtime::block_on(async {
        let a = start(&ca, 1, CLUSTER, localhost());
        let b = start(&cb, 2, CLUSTER, localhost());
        let b_addr = b.addr.clone();
        a.transport.add_peer(2, b_addr.clone());
        let ups = |m: &Member| m.count(|e| *e == PeerEvent::Link { peer: 2, up: true });
        let downs = |m: &Member| m.count(|e| *e == PeerEvent::Link { peer: 2, up: false });
        eventually(Duration::from_secs(10), "link up", || ups(&a) == 1).await;
        assert_eq!(downs(&a), 0);
        b.stop().await;
        eventually(Duration::from_secs(10), "link down", || downs(&a) == 1).await;
        let mut b2 = try_start(&cb, 2, CLUSTER, b_addr.addr);
        for _ in 0..100 {
            if b2.is_ok() {
                break;
            }
            runtime::sleep(Duration::from_millis(20)).await;
            b2 = try_start(&cb, 2, CLUSTER, b_addr.addr);
        }
        let b2 = b2.unwrap();
        eventually(Duration::from_secs(10), "link up again", || ups(&a) == 2).await;
        assert!(b2.messages().is_empty(), "no raft traffic was needed");
        a.stop().await;
        b2.stop().await;
    });
}

/// Answers forwarded keep-alives with the lease's id and the asker's member id as TTL, so the
/// test sees that the request and the asker's identity arrived.
struct EchoHandler;

impl PeerRequestHandler for EchoHandler {
    fn answer(
        &self,
        from: u64,
        request: peer_request::Request,
    ) -> BoxFuture<'static, Option<PeerResponse>> {
        let answer = match request {
            peer_request::Request::Forwarded(ClientRequest {
                request: Some(client_request::Request::LeaseKeepAlive(r)),
                ..
            }) => Some(PeerResponse {
                response: Some(peer_response::Response::Forwarded(ClientResponse {
                    response: Some(client_response::Response::LeaseKeepAlive(
                        LeaseKeepAliveResponse {
                            id: r.id,
                            ttl: from as i64,
                            ..Default::default()
                        },
                    )),
                })),
            }),
            _ => None,
        };
        futures::future::ready(answer).boxed()
    }
}

fn forwarded_keep_alive(lease: i64) -> PeerRequest {
    PeerRequest {
        request: Some(peer_request::Request::Forwarded(ClientRequest {
            request: Some(client_request::Request::LeaseKeepAlive(
                LeaseKeepAliveRequest { id: lease },
            )),
            ..Default::default()
        })),
    }
}

#[test]
fn peer_requests_are_answered_by_the_registered_handler_and_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs(&dir.path().join("a"));
    let cb = certs_same_ca(&dir.path().join("a"), &dir.path().join("b"));
    runtime::block_on(async {
        let a = start(&ca, 1, CLUSTER, localhost());
        let b = start(&cb, 2, CLUSTER, localhost());
        a.transport.add_peer(2, b.addr.clone());
        let wait = Duration::from_secs(10);

        // No handler yet: the stream ends without an answer.
        let answer = a.transport.ask(2, forwarded_keep_alive(7), wait).await;
        assert_eq!(answer.unwrap(), None);

        b.transport.serve_requests(Arc::new(EchoHandler));
        let answer = a.transport.ask(2, forwarded_keep_alive(7), wait).await;
        let expected = ClientResponse {
            response: Some(client_response::Response::LeaseKeepAlive(
                LeaseKeepAliveResponse {
                    id: 7,
                    ttl: 1,
                    ..Default::default()
                },
            )),
        };
        assert_eq!(
            answer.unwrap().and_then(|r| r.response),
            Some(peer_response::Response::Forwarded(expected))
        );

        // Members requests are answered from what the driver published.
        let members = MembersResponse {
            cluster_id: CLUSTER,
            members: Vec::new(),
        };
        b.transport.publish_members(members.clone(), Vec::new());
        let ask_members = PeerRequest {
            request: Some(peer_request::Request::Members(MembersRequest {})),
        };
        let answer = a.transport.ask(2, ask_members, wait).await;
        assert_eq!(
            answer.unwrap().and_then(|r| r.response),
            Some(peer_response::Response::Members(members.clone()))
        );

        let unknown = a.transport.ask(9, forwarded_keep_alive(7), wait).await;
        assert!(
            matches!(unknown, Err(TransportError::UnknownPeer(9))),
            "{unknown:?}"
        );

        // A removed member's requests are refused.
        b.transport.publish_members(members, vec![1]);
        let refused = a.transport.ask(2, forwarded_keep_alive(7), wait).await;
        assert!(refused.is_err(), "{refused:?}");

        a.stop().await;
        b.stop().await;
    });
}
