//! Malformed frames, oversized requests, wrong ALPN and garbage bytes on both the client and
//! the peer port of a member of a 3-member cluster of real `qraft` processes: the member
//! answers with an error or closes the stream, never crashes, and still serves afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use qraft_io::client::{Client, ClientError};
use qraft_io::error_responses::Code;
use qraft_io::runtime;
use qraft_io::tls::{ALPN_CLIENT, ALPN_PEER, Identity, roots_from_pem_file};
use qraft_io::transport::{codes, encode_frame};
use qraft_proto::etcdserverpb::{PutRequest, RangeRequest};
use qraft_proto::qraftpb::{
    ClientRequest, ClientResponse, PeerFrame, PeerHello, SnapshotChunk, client_request,
    client_response, peer_frame,
};
use qraft_proto::raftpb::Message;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::{logs, status, try_client, wait_converged};
use qraft_tests::cluster_ops::{member_log, wait_until};
use qraft_tests::quic_raw::{self, StreamOutcome, bidi, decode_frame, udp_garbage, uni};

/// `--max-request-bytes` of the members: small, so the limit is cheap to cross.
const MAX_REQUEST: usize = 256 * 1024;
const WAIT: Duration = Duration::from_secs(5);
/// The member under attack.
const TARGET: usize = 1;

fn frame<M: prost::Message>(m: &M) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_frame(m, &mut buf).expect("encodable");
    buf
}

fn error_of(outcome: &StreamOutcome) -> Option<(i32, String)> {
    let StreamOutcome::Answered(bytes) = outcome else {
        return None;
    };
    match decode_frame::<ClientResponse>(bytes)?.response? {
        client_response::Response::Error(e) => Some((e.code, e.message)),
        _ => None,
    }
}

/// An error answer or a closed/reset stream: anything but a crash or silence.
fn refused(outcome: &StreamOutcome) -> bool {
    error_of(outcome).is_some()
        || matches!(
            outcome,
            StreamOutcome::Reset(_) | StreamOutcome::Stopped(_) | StreamOutcome::Answered(_)
        )
}

fn client_port(c: &Cluster) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], c.nodes[TARGET].client_port))
}

fn peer_port(c: &Cluster) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], c.nodes[TARGET].peer_port))
}

fn ca(c: &Cluster) -> rustls::RootCertStore {
    roots_from_pem_file(&c.ca_dir.join("ca.crt")).expect("cluster CA")
}

/// The member is alive and takes part in the cluster: a put through it succeeds and its own
/// applied state shows it.
fn assert_serving(c: &mut Cluster, key: &str) {
    assert!(c.nodes[TARGET].is_running(), "m{TARGET} died\n{}", logs(c));
    // Retried: on a loaded machine one dial or put may time out; a member that stopped
    // serving stays refused for the whole wait.
    wait_until(
        &format!("put {key} through m{TARGET}"),
        Duration::from_secs(20),
        || {
            let client = target_client(c);
            let put = runtime::block_on(client.put_kv(key, "ok")).map_err(|e| e.to_string());
            client.close();
            put.map(drop)
        },
    );
    let dump = wait_converged(c, Duration::from_secs(20));
    assert!(dump.kvs.contains_key(key.as_bytes()), "{key} missing");
}

/// A client of the target member alone (the dial retried on a loaded machine).
fn target_client(c: &Cluster) -> Client {
    wait_until(&format!("connect to m{TARGET}"), WAIT * 4, || {
        try_client(c, TARGET).ok_or_else(|| "connect failed".to_string())
    })
}

fn client_abuse(c: &Cluster) {
    let tls = qraft_io::tls::client_dial_config(&ca(c), None).expect("client TLS");
    let endpoint = quic_raw::endpoint(tls);
    runtime::block_on(async {
        let conn = quic_raw::connect(&endpoint, client_port(c))
            .await
            .expect("a plain TLS client connects");

        // A length prefix far beyond the frame limit: etcd's error, the body is never read.
        let out = bidi(&conn, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3], true, WAIT).await;
        assert_eq!(
            error_of(&out),
            Some((
                Code::InvalidArgument as i32,
                "etcdserver: request is too large".into()
            )),
            "{out:?}"
        );
        // A well-framed body that is not a request.
        let mut junk = vec![0, 0, 0, 16];
        junk.extend([0xff; 16]);
        let out = bidi(&conn, &junk, true, WAIT).await;
        let (code, message) = error_of(&out).unwrap_or_else(|| panic!("{out:?}"));
        assert_eq!(code, Code::InvalidArgument as i32);
        assert!(message.contains("malformed request"), "{message}");
        // Truncated frames: a short header, a short body.
        for bytes in [
            &[0u8, 0][..],
            &[0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10][..],
        ] {
            let out = bidi(&conn, bytes, true, WAIT).await;
            assert!(matches!(out, StreamOutcome::Reset(_)), "{bytes:?}: {out:?}");
        }
        // An empty stream is simply finished.
        let out = bidi(&conn, &[], true, WAIT).await;
        assert_eq!(out, StreamOutcome::Answered(Vec::new()));
        // Random garbage of many sizes.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..20 {
            let len = rng.random_range(1..4096);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let out = bidi(&conn, &bytes, true, WAIT).await;
            assert!(refused(&out), "{out:?}");
        }
        // A request over --max-request-bytes (but within the frame allowance).
        let big = ClientRequest {
            token: String::new(),
            cert_common_name: String::new(),
            token_claims: None,
            request: Some(client_request::Request::Put(PutRequest {
                key: b"big".to_vec().into(),
                value: vec![b'x'; MAX_REQUEST + 1024].into(),
                ..Default::default()
            })),
        };
        let out = bidi(&conn, &frame(&big), true, WAIT).await;
        assert_eq!(
            error_of(&out).map(|e| e.1),
            Some("etcdserver: request is too large".into()),
            "{out:?}"
        );
        // A watch stream whose second frame is garbage: the member ends the stream.
        let watch = ClientRequest {
            token: String::new(),
            cert_common_name: String::new(),
            token_claims: None,
            request: Some(client_request::Request::Watch(Default::default())),
        };
        let mut bytes = frame(&watch);
        bytes.extend([0, 0, 0, 3, 0xff, 0xff, 0xff]);
        let out = bidi(&conn, &bytes, false, WAIT).await;
        assert!(
            !matches!(out, StreamOutcome::ConnectionClosed(_)),
            "{out:?}"
        );
        // Half-written requests left hanging on many streams, and a unidirectional stream
        // the client protocol does not use; then the connection goes away.
        for _ in 0..200 {
            if let Ok((mut send, _recv)) = conn.open_bi().await {
                let _ = send.write_all(&[0, 0, 1]).await;
            }
        }
        let _ = uni(&conn, b"not a request", Duration::from_millis(200)).await;
        conn.close(0u32.into(), b"bye");
    });
    endpoint.close(0u32.into(), b"bye");

    // The request limit through the client library: etcd's error and code.
    let err = wait_until("the oversized put is answered", WAIT * 4, || {
        let client = target_client(c);
        let put = runtime::block_on(client.put_kv("big", vec![b'x'; MAX_REQUEST + 1]));
        client.close();
        match put {
            Ok(_) => panic!("a request over --max-request-bytes was served"),
            Err(e @ ClientError::Status { .. }) => Ok(e),
            // A dial or request timeout on a loaded machine: ask again.
            Err(other) => Err(other.to_string()),
        }
    });
    match &err {
        ClientError::Status { code, message, .. } => {
            assert_eq!(*code, Code::InvalidArgument);
            assert_eq!(message, "etcdserver: request is too large");
        }
        other => panic!("unexpected error {other}"),
    }
    wait_until("a request under the limit is served", WAIT * 4, || {
        let client = target_client(c);
        let put = runtime::block_on(client.put_kv("fits", vec![b'x'; MAX_REQUEST - 1024]));
        client.close();
        put.map(drop).map_err(|e| e.to_string())
    });
}

fn wrong_alpn_and_certificates(c: &Cluster) {
    let identity =
        Identity::from_pem_files(&c.ca_dir.join("server.crt"), &c.ca_dir.join("server.key"))
            .expect("peer identity");
    runtime::block_on(async {
        // The peer protocol's ALPN on the client port, an unknown ALPN, and the client
        // protocol on the peer port: every handshake fails.
        let mut tls = qraft_io::tls::client_dial_config(&ca(c), Some(&identity)).expect("tls");
        tls.alpn_protocols = vec![ALPN_PEER.to_vec()];
        let ep = quic_raw::endpoint(tls);
        let res = quic_raw::connect(&ep, client_port(c)).await;
        assert!(res.is_err(), "peer ALPN accepted on the client port");
        let mut tls = qraft_io::tls::client_dial_config(&ca(c), None).expect("tls");
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let ep = quic_raw::endpoint(tls);
        assert!(quic_raw::connect(&ep, client_port(c)).await.is_err());
        let mut tls =
            qraft_io::tls::peer_client_config(&identity, &ca(c).into(), &Default::default())
                .expect("tls");
        tls.alpn_protocols = vec![ALPN_CLIENT.to_vec()];
        let ep = quic_raw::endpoint(tls);
        let res = quic_raw::connect(&ep, peer_port(c)).await;
        assert!(res.is_err(), "client ALPN accepted on the peer port");
        // The peer port without a client certificate.
        let tls = qraft_io::tls::client_dial_config(&ca(c), None).expect("tls");
        let mut tls = tls;
        tls.alpn_protocols = vec![ALPN_PEER.to_vec()];
        let ep = quic_raw::endpoint(tls);
        let res = quic_raw::connect(&ep, peer_port(c)).await;
        assert!(
            res.is_err(),
            "peer port accepted a connection without a certificate"
        );
    });
}

fn peer_abuse(c: &Cluster, cluster_id: u64) {
    let identity =
        Identity::from_pem_files(&c.ca_dir.join("server.crt"), &c.ca_dir.join("server.key"))
            .expect("peer identity");
    let tls = qraft_io::tls::peer_client_config(&identity, &ca(c).into(), &Default::default())
        .expect("peer TLS");
    let endpoint = quic_raw::endpoint(tls);
    let hello = |cluster_id: u64, member_id: u64| {
        frame(&PeerFrame {
            frame: Some(peer_frame::Frame::Hello(PeerHello {
                cluster_id,
                member_id,
                server_version: "0.0.0".into(),
            })),
        })
    };
    let stranger = 0xdead_beef;
    runtime::block_on(async {
        let conn = quic_raw::connect(&endpoint, peer_port(c))
            .await
            .expect("a peer with a certificate from the cluster CA connects");
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("huge length prefix", vec![0xff, 0xff, 0xff, 0xff, 0]),
            ("garbage body", vec![0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]),
            ("truncated header", vec![0, 0]),
            ("truncated body", vec![0, 0, 0, 50, 1, 2, 3]),
            (
                "no hello first",
                frame(&PeerFrame {
                    frame: Some(peer_frame::Frame::Message(Message::default())),
                }),
            ),
            ("member id 0", hello(cluster_id, 0)),
            ("empty frame after hello", {
                let mut b = hello(cluster_id, stranger);
                b.extend(frame(&PeerFrame { frame: None }));
                b
            }),
            ("garbage after hello", {
                let mut b = hello(cluster_id, stranger);
                b.extend([0, 0, 0, 2, 0xff, 0xff]);
                b
            }),
            ("second hello", {
                let mut b = hello(cluster_id, stranger);
                b.extend(hello(cluster_id, stranger));
                b
            }),
            ("snapshot chunk out of order", {
                let mut b = hello(cluster_id, stranger);
                b.extend(frame(&PeerFrame {
                    frame: Some(peer_frame::Frame::SnapshotChunk(SnapshotChunk {
                        offset: 10,
                        data: vec![1, 2, 3].into(),
                        ..Default::default()
                    })),
                }));
                b
            }),
            ("first snapshot chunk without its message", {
                let mut b = hello(cluster_id, stranger);
                b.extend(frame(&PeerFrame {
                    frame: Some(peer_frame::Frame::SnapshotChunk(SnapshotChunk {
                        offset: 0,
                        data: vec![1, 2, 3].into(),
                        ..Default::default()
                    })),
                }));
                b
            }),
        ];
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        for _ in 0..10 {
            let len = rng.random_range(1..2048);
            cases.push(("random bytes", (0..len).map(|_| rng.random()).collect()));
        }
        for (what, bytes) in &cases {
            let out = uni(&conn, bytes, WAIT).await;
            assert!(
                matches!(out, StreamOutcome::Stopped(_) | StreamOutcome::Answered(_)),
                "{what}: {out:?}"
            );
        }
        // A message claiming another sender than the hello is dropped, not delivered.
        let mut b = hello(cluster_id, stranger);
        b.extend(frame(&PeerFrame {
            frame: Some(peer_frame::Frame::Message(Message {
                from: stranger + 1,
                ..Default::default()
            })),
        }));
        let out = uni(&conn, &b, WAIT).await;
        assert!(
            !matches!(out, StreamOutcome::ConnectionClosed(_)),
            "{out:?}"
        );
        // Bidirectional streams carry member-to-member requests (a hello and a request):
        // anything else gets no answer, the stream is ended.
        for junk in [b"junk".to_vec(), {
            let mut b = hello(cluster_id, 0);
            b.extend([0, 0, 0, 2, 0xff, 0xff]);
            b
        }] {
            let out = bidi(&conn, &junk, true, WAIT).await;
            assert!(
                matches!(&out, StreamOutcome::Answered(b) if b.is_empty())
                    || matches!(out, StreamOutcome::Reset(_) | StreamOutcome::Stopped(_)),
                "{out:?}"
            );
        }
        // A hello naming another cluster closes the connection. The stream's bytes may be
        // acknowledged before the member reads them, so wait for the close itself.
        let out = uni(&conn, &hello(cluster_id ^ 1, stranger), WAIT).await;
        assert!(
            matches!(
                out,
                StreamOutcome::Answered(_) | StreamOutcome::ConnectionClosed(_)
            ),
            "wrong cluster: {out:?}"
        );
        let closed = runtime::timeout(WAIT, conn.closed())
            .await
            .unwrap_or_else(|_| panic!("wrong cluster: the connection stayed open ({out:?})"));
        match closed {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(close.error_code, codes::WRONG_CLUSTER, "{close:?}");
            }
            other => panic!("wrong cluster: closed with {other}"),
        }
    });
    endpoint.close(0u32.into(), b"bye");
}

#[test]
fn garbage_on_both_ports_never_crashes_a_member() {
    let mut c = Cluster::spawn_with(3, ClusterOptions::default(), |node| {
        node.extra_args = vec!["--max-request-bytes".into(), MAX_REQUEST.to_string()];
    });
    c.wait_for_writes(Duration::from_secs(30));
    let cluster_id = status(&c, TARGET)
        .and_then(|s| s.header)
        .map(|h| h.cluster_id)
        .expect("status of the target");

    client_abuse(&c);
    assert_serving(&mut c, "after-client-abuse");

    wrong_alpn_and_certificates(&c);
    peer_abuse(&c, cluster_id);
    assert_serving(&mut c, "after-peer-abuse");

    for port in [c.nodes[TARGET].client_port, c.nodes[TARGET].peer_port] {
        udp_garbage(
            SocketAddr::from(([127, 0, 0, 1], port)),
            500,
            u64::from(port),
        );
    }
    assert_serving(&mut c, "after-udp-garbage");

    // The member's own log shows it refused the abuse rather than missing it.
    let log = member_log(&c, TARGET);
    assert!(!log.contains("panicked"), "{log}");
    for refusal in [
        "bad peer frame; stream reset",
        "peer protocol violation; stream reset",
        "peer message with a foreign sender dropped",
        "peer belongs to another cluster; connection closed",
        "peer handshake failed",
        "peer request failed",
        "client handshake failed",
    ] {
        assert!(log.contains(refusal), "m{TARGET} never logged {refusal:?}");
    }
    let resp = wait_until(
        "a linearizable read through the abused member",
        WAIT * 4,
        || {
            runtime::block_on(target_client(&c).range(RangeRequest {
                key: b"after-udp-garbage".to_vec().into(),
                ..Default::default()
            }))
            .map_err(|e| e.to_string())
        },
    );
    assert_eq!(resp.kvs.len(), 1);
}
