//! The client listener and client library over real QUIC and TLS on 127.0.0.1, against small
//! scripted handlers (this tests the transport, not the server).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Certs, certs, localhost};
use qraft_core::error::Error;
use qraft_io::client::{Client, ClientConfig, ClientError};
use qraft_io::error_responses::{Code, error_response, error_response_with_hint};
use qraft_io::runtime;
use qraft_io::transport::{
    ClientContext, ClientListener, ClientListenerConfig, RequestHandler, RequestStream,
    ResponseSink, encode_frame, read_frame,
};
use qraft_proto::etcdserverpb::*;
use qraft_proto::mvccpb::{Event, KeyValue};
use qraft_proto::qraftpb::client_request::Request;
use qraft_proto::qraftpb::client_response::Response;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

/// Answers puts with a revision counter and ranges by echoing the key and the token.
/// A "follower" answers every write with "not leader" and a hint naming member 1; member
/// lists map member 1 to `leader_url`.
#[derive(Default)]
struct Scripted {
    revision: AtomicU64,
    puts: AtomicU64,
    follower: bool,
    leader_url: String,
    put_delay: Option<Duration>,
}

fn ok(response: Response) -> ClientResponse {
    ClientResponse {
        response: Some(response),
    }
}

impl RequestHandler for Scripted {
    async fn handle(&self, ctx: ClientContext, req: ClientRequest) -> ClientResponse {
        match req.request {
            Some(Request::Put(_)) if self.follower => {
                error_response_with_hint(Code::FailedPrecondition, Error::NotLeader.to_string(), 1)
            }
            Some(Request::Put(_)) => {
                self.puts.fetch_add(1, Ordering::SeqCst);
                if let Some(delay) = self.put_delay {
                    runtime::sleep(delay).await;
                }
                let revision = self.revision.fetch_add(1, Ordering::SeqCst) as i64 + 2;
                ok(Response::Put(PutResponse {
                    header: Some(ResponseHeader {
                        revision,
                        ..Default::default()
                    }),
                    prev_kv: None,
                }))
            }
            Some(Request::Range(r)) => ok(Response::Range(RangeResponse {
                kvs: vec![KeyValue {
                    key: r.key,
                    // Who is asking: the token, else the client certificate's common name.
                    value: match req.token.is_empty() {
                        false => req.token.into_bytes().into(),
                        true => ctx.common_name().unwrap_or_default().into_bytes().into(),
                    },
                    ..Default::default()
                }],
                count: 1,
                ..Default::default()
            })),
            Some(Request::MemberList(_)) => ok(Response::MemberList(MemberListResponse {
                members: vec![Member {
                    id: 1,
                    name: "leader".into(),
                    client_ur_ls: vec![self.leader_url.clone()],
                    ..Default::default()
                }],
                ..Default::default()
            })),
            Some(Request::Authenticate(a)) => ok(Response::Authenticate(AuthenticateResponse {
                header: None,
                token: format!("token-of-{}", a.name),
            })),
            _ => error_response(Code::Unimplemented, "not scripted"),
        }
    }

    async fn stream(
        &self,
        _ctx: ClientContext,
        first: ClientRequest,
        mut requests: RequestStream,
        mut responses: ResponseSink,
    ) {
        let mut next = Some(first);
        let mut watch_id = 0;
        while let Some(req) = next.take() {
            let replies = match req.request {
                Some(Request::LeaseKeepAlive(k)) => {
                    vec![ok(Response::LeaseKeepAlive(LeaseKeepAliveResponse {
                        header: None,
                        id: k.id,
                        ttl: 10,
                    }))]
                }
                Some(Request::Watch(w)) => watch_replies(w, &mut watch_id),
                _ => vec![error_response(Code::Unimplemented, "not scripted")],
            };
            if responses.send_all(&replies).await.is_err() {
                return;
            }
            next = match requests.next().await {
                Some(Ok(req)) => Some(req),
                _ => None,
            };
        }
        responses.finish();
    }
}

/// A created notice and three put events per create; a canceled notice per cancel.
fn watch_replies(w: WatchRequest, next_id: &mut i64) -> Vec<ClientResponse> {
    match w.request_union {
        Some(watch_request::RequestUnion::CreateRequest(c)) => {
            let id = *next_id;
            *next_id += 1;
            let mut out = vec![ok(Response::Watch(WatchResponse {
                watch_id: id,
                created: true,
                ..Default::default()
            }))];
            for rev in 1..=3 {
                out.push(ok(Response::Watch(WatchResponse {
                    watch_id: id,
                    events: vec![Event {
                        r#type: 0,
                        kv: Some(KeyValue {
                            key: c.key.clone(),
                            mod_revision: rev,
                            ..Default::default()
                        }),
                        prev_kv: None,
                    }],
                    ..Default::default()
                })));
            }
            out
        }
        Some(watch_request::RequestUnion::CancelRequest(c)) => {
            vec![ok(Response::Watch(WatchResponse {
                watch_id: c.watch_id,
                canceled: true,
                ..Default::default()
            }))]
        }
        _ => vec![],
    }
}

fn listen(
    certs: &Certs,
    client_cert_auth: bool,
    handler: Arc<Scripted>,
) -> (ClientListener, String) {
    let ca = client_cert_auth.then(|| certs.roots.clone());
    let config = ClientListenerConfig::new(localhost(), certs.identity.clone(), ca);
    let listener = ClientListener::start(config, handler).unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    (listener, url)
}

fn client_config(certs: &Certs, urls: Vec<String>, with_cert: bool) -> ClientConfig {
    let mut config = ClientConfig::new(urls, certs.roots.clone());
    if with_cert {
        config.identity = Some(certs.client_identity.clone());
    }
    config.request_timeout = Duration::from_secs(3);
    config
}

#[test]
fn unary_calls_watch_and_keep_alive_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    runtime::block_on(async {
        let handler = Arc::new(Scripted::default());
        let (listener, url) = listen(&certs, false, handler.clone());
        let client = Client::connect(client_config(&certs, vec![url], false))
            .await
            .unwrap();

        assert_eq!(
            client
                .put_kv("a", "1")
                .await
                .unwrap()
                .header
                .unwrap()
                .revision,
            2
        );
        assert_eq!(
            client
                .put_kv("b", "2")
                .await
                .unwrap()
                .header
                .unwrap()
                .revision,
            3
        );
        let auth = client.authenticate("alice", "pw").await.unwrap();
        assert_eq!(auth.token, "token-of-alice");
        let got = client.get("k").await.unwrap();
        assert_eq!(got.kvs[0].key.as_ref(), b"k");
        assert_eq!(got.kvs[0].value.as_ref(), b"token-of-alice", "token sent");

        let err = client.status(StatusRequest {}).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Status { code: Code::Unimplemented, message, .. } if message == "not scripted"),
            "{err:?}"
        );

        let mut watch = client
            .watch(WatchCreateRequest {
                key: b"w".to_vec().into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let created = watch.next().await.unwrap().unwrap();
        assert!(created.created);
        for rev in 1..=3 {
            let ev = watch.next().await.unwrap().unwrap();
            assert_eq!(ev.events[0].kv.as_ref().unwrap().mod_revision, rev);
        }
        watch
            .create(WatchCreateRequest {
                key: b"x".to_vec().into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(watch.next().await.unwrap().unwrap().watch_id, 1);
        for _ in 0..3 {
            let ev = watch.next().await.unwrap().unwrap();
            assert_eq!(ev.events[0].kv.as_ref().unwrap().key.as_ref(), b"x");
        }
        watch.cancel(0).await.unwrap();
        let canceled = watch.next().await.unwrap().unwrap();
        assert!(canceled.canceled && canceled.watch_id == 0);
        watch.close();

        let mut keeper = client.lease_keep_alive(77);
        for _ in 0..3 {
            let resp = keeper.keep_alive().await.unwrap();
            assert_eq!((resp.id, resp.ttl), (77, 10));
        }
        client.close();
        listener.shutdown().await;
    });
}

#[test]
fn client_certificate_is_required_only_with_client_cert_auth() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    let other = common::certs(&dir.path().join("other"));
    runtime::block_on(async {
        let (strict, strict_url) = listen(&certs, true, Arc::new(Scripted::default()));
        let (open, open_url) = listen(&certs, false, Arc::new(Scripted::default()));

        // Without a certificate: refused by the strict listener (the TLS 1.3 client may
        // believe the handshake done; the server's refusal ends the first call).
        let mut config = client_config(&certs, vec![strict_url.clone()], false);
        config.max_retries = 0;
        let refused = match Client::connect(config).await {
            Err(e) => e,
            Ok(c) => c.put_kv("k", "v").await.unwrap_err(),
        };
        assert!(
            !matches!(refused, ClientError::Status { .. }),
            "{refused:?}"
        );

        // A certificate from another CA is refused as well.
        let mut config = client_config(&certs, vec![strict_url.clone()], false);
        config.identity = Some(other.client_identity.clone());
        config.max_retries = 0;
        let refused = match Client::connect(config).await {
            Err(e) => e,
            Ok(c) => c.put_kv("k", "v").await.unwrap_err(),
        };
        assert!(
            !matches!(refused, ClientError::Status { .. }),
            "{refused:?}"
        );

        let with_cert = Client::connect(client_config(&certs, vec![strict_url], true))
            .await
            .unwrap();
        with_cert.put_kv("k", "v").await.unwrap();
        let without = Client::connect(client_config(&certs, vec![open_url], false))
            .await
            .unwrap();
        without.put_kv("k", "v").await.unwrap();
        strict.shutdown().await;
        open.shutdown().await;
    });
}

#[test]
fn oversized_and_garbage_requests_get_errors_and_the_listener_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    runtime::block_on(async {
        let handler = Arc::new(Scripted::default());
        let (listener, url) = listen(&certs, false, handler.clone());
        let client = Client::connect(client_config(&certs, vec![url.clone()], false))
            .await
            .unwrap();

        // Just over etcd's 1.5 MiB limit (read, then refused), and far over the frame limit
        // (refused from the length prefix alone).
        for size in [1_600_000usize, 3_000_000] {
            let err = client.put_kv("big", vec![7u8; size]).await.unwrap_err();
            assert!(
                matches!(&err, ClientError::Status { code: Code::InvalidArgument, message, .. }
                    if message == "etcdserver: request is too large"),
                "{size}: {err:?}"
            );
        }
        assert_eq!(
            handler.puts.load(Ordering::SeqCst),
            0,
            "oversized put reached the handler"
        );

        // Garbage on a raw stream: a malformed-request error, then the stream ends.
        let tls = qraft_io::tls::client_dial_config(&certs.roots, None).unwrap();
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut raw = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        raw.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
        let addr = listener.local_addr().unwrap();
        let conn = raw.connect(addr, "127.0.0.1").unwrap().await.unwrap();
        for garbage in [
            vec![0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            vec![0xff; 4],
        ] {
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            send.write_all(&garbage).await.unwrap();
            let _ = send.finish();
            let resp: ClientResponse = read_frame(&mut recv, 1 << 20).await.unwrap().unwrap();
            match resp.response {
                Some(Response::Error(e)) => assert_eq!(e.code, Code::InvalidArgument as i32),
                other => panic!("expected an error, got {other:?}"),
            }
        }
        // A truncated frame (length says 100, 3 bytes follow, stream ends): no response.
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
        let _ = send.finish();
        let end = runtime::timeout(
            Duration::from_secs(5),
            read_frame::<ClientResponse, _>(&mut recv, 1 << 20),
        )
        .await
        .unwrap();
        assert!(!matches!(end, Ok(Some(_))), "{end:?}");
        // A well-formed request on the same raw connection still works.
        let mut buf = Vec::new();
        let req = ClientRequest {
            token: String::new(),
            cert_common_name: String::new(),
            token_claims: None,
            request: Some(Request::Range(RangeRequest::default())),
        };
        encode_frame(&req, &mut buf).unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&buf).await.unwrap();
        let _ = send.finish();
        let resp: ClientResponse = read_frame(&mut recv, 1 << 20).await.unwrap().unwrap();
        assert!(matches!(resp.response, Some(Response::Range(_))));
        raw.close(0u32.into(), b"");

        assert_eq!(
            client
                .put_kv("small", "v")
                .await
                .unwrap()
                .header
                .unwrap()
                .revision,
            2
        );
        listener.shutdown().await;
    });
}

#[test]
fn client_finds_the_leader_and_skips_dead_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    runtime::block_on(async {
        let leader = Arc::new(Scripted::default());
        let (leader_listener, leader_url) = listen(&certs, false, leader.clone());
        let follower = Arc::new(Scripted {
            follower: true,
            leader_url: leader_url.clone(),
            ..Default::default()
        });
        let (follower_listener, follower_url) = listen(&certs, false, follower.clone());
        // A port nobody listens on first, then the follower; the leader is not configured.
        let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("https://127.0.0.1:{}", dead.local_addr().unwrap().port());
        drop(dead);
        let mut config = client_config(&certs, vec![dead_url, follower_url], false);
        config.dial_timeout = Duration::from_millis(300);
        let client = Client::connect(config).await.unwrap();
        let resp = client.put_kv("k", "v").await.unwrap();
        assert_eq!(resp.header.unwrap().revision, 2);
        assert_eq!(leader.puts.load(Ordering::SeqCst), 1);
        assert_eq!(follower.puts.load(Ordering::SeqCst), 0);
        leader_listener.shutdown().await;
        follower_listener.shutdown().await;
    });
}

#[test]
fn a_write_whose_response_is_lost_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    runtime::block_on(async {
        let slow = Arc::new(Scripted {
            put_delay: Some(Duration::from_millis(600)),
            ..Default::default()
        });
        let (listener, url) = listen(&certs, false, slow.clone());
        let mut config = client_config(&certs, vec![url], false);
        config.request_timeout = Duration::from_millis(200);
        let client = Client::connect(config).await.unwrap();
        let err = client.put_kv("k", "v").await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout), "{err:?}");
        runtime::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            slow.puts.load(Ordering::SeqCst),
            1,
            "write sent more than once"
        );
        listener.shutdown().await;
    });
}

#[test]
fn many_concurrent_streams_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    runtime::block_on(async {
        let handler = Arc::new(Scripted::default());
        let (listener, url) = listen(&certs, false, handler.clone());
        let client = Client::connect(client_config(&certs, vec![url], false))
            .await
            .unwrap();
        let calls = (0..2000).map(|i| {
            let client = client.clone();
            async move { client.put_kv(format!("k{i}"), "v").await }
        });
        let results = futures::future::join_all(calls).await;
        let mut revisions: Vec<i64> = results
            .into_iter()
            .map(|r| r.unwrap().header.unwrap().revision)
            .collect();
        revisions.sort_unstable();
        assert_eq!(revisions, (2..2002).collect::<Vec<_>>());
        // Concurrent long-lived streams alongside.
        let watches = (0..50).map(|i| {
            let client = client.clone();
            async move {
                let mut w = client
                    .watch(WatchCreateRequest {
                        key: format!("w{i}").into_bytes().into(),
                        ..Default::default()
                    })
                    .await?;
                let mut n = 0;
                while n < 4 {
                    w.next().await.ok_or(ClientError::StreamClosed)??;
                    n += 1;
                }
                Ok::<_, ClientError>(n)
            }
        });
        for r in futures::future::join_all(watches).await {
            assert_eq!(r.unwrap(), 4);
        }
        listener.shutdown().await;
    });
}

#[test]
fn a_client_cannot_talk_to_the_peer_port() {
    let dir = tempfile::tempdir().unwrap();
    let certs = certs(dir.path());
    runtime::block_on(async {
        let config = qraft_io::transport::PeerTransportConfig::new(
            localhost(),
            certs.identity.clone(),
            certs.roots.clone(),
            1,
            1,
        );
        let (peer, _events) = qraft_io::transport::QuicPeerTransport::start(config).unwrap();
        let url = format!("https://127.0.0.1:{}", peer.local_addr().unwrap().port());
        // Even with a certificate the peer CA trusts, ALPN qraft-client/1 is refused there.
        let mut config = client_config(&certs, vec![url], true);
        config.max_retries = 0;
        let refused = match Client::connect(config).await {
            Err(e) => e,
            Ok(c) => c.put_kv("k", "v").await.unwrap_err(),
        };
        assert!(
            !matches!(refused, ClientError::Status { .. }),
            "{refused:?}"
        );
        peer.shutdown().await;
    });
}
