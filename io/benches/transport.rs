//! Transport figures on loopback with real TLS: handshake time, request/response round trip,
//! concurrent request throughput, and pipelined peer frames per second. Prints numbers only.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use qraft_io::client::{Client, ClientConfig};
use qraft_io::runtime;
use qraft_io::tls::{Identity, ensure_auto_tls, roots_from_pem_file};
use qraft_io::transport::{
    ClientContext, ClientListener, ClientListenerConfig, PeerAddr, PeerEvent, PeerTransport,
    PeerTransportConfig, QuicPeerTransport, RequestHandler,
};
use qraft_proto::etcdserverpb::{PutResponse, ResponseHeader};
use qraft_proto::qraftpb::client_response::Response;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};
use qraft_proto::raftpb::{Message, MessageType};

struct Echo(AtomicU64);

impl RequestHandler for Echo {
    async fn handle(&self, _ctx: ClientContext, _req: ClientRequest) -> ClientResponse {
        let revision = self.0.fetch_add(1, Ordering::Relaxed) as i64;
        ClientResponse {
            response: Some(Response::Put(PutResponse {
                header: Some(ResponseHeader {
                    revision,
                    ..Default::default()
                }),
                prev_kv: None,
            })),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, _) = ensure_auto_tls(dir.path(), &[]).unwrap();
    let identity = Identity::from_pem_files(&paths.cert, &paths.key).unwrap();
    let client_identity = Identity::from_pem_files(&paths.client_cert, &paths.client_key).unwrap();
    let roots = roots_from_pem_file(&paths.ca_cert).unwrap();
    let local = "127.0.0.1:0".parse().unwrap();

    runtime::block_on(async {
        let config = ClientListenerConfig::new(local, identity.clone(), Some(roots.clone()));
        let listener = ClientListener::start(config, Arc::new(Echo(AtomicU64::new(1)))).unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let mut config = ClientConfig::new(vec![url], roots.clone());
        config.identity = Some(client_identity);

        let rounds = 30;
        let start = Instant::now();
        for _ in 0..rounds {
            Client::connect(config.clone()).await.unwrap().close();
        }
        println!(
            "mTLS handshake (client connect incl. socket bind): {:.2} ms mean over {rounds}",
            start.elapsed().as_secs_f64() * 1e3 / rounds as f64
        );

        let client = Client::connect(config).await.unwrap();
        let mut rtts = Vec::new();
        for i in 0..3000 {
            let t = Instant::now();
            client.put_kv(format!("k{i}"), "v").await.unwrap();
            rtts.push(t.elapsed());
        }
        rtts.sort_unstable();
        println!(
            "unary request/response RTT (one stream per request): p50 {:?} p99 {:?}",
            percentile(&rtts, 0.5),
            percentile(&rtts, 0.99)
        );

        let tasks = 64;
        let per_task = 300;
        let start = Instant::now();
        let calls = (0..tasks).map(|t| {
            let client = client.clone();
            async move {
                for i in 0..per_task {
                    client.put_kv(format!("t{t}-{i}"), "v").await.unwrap();
                }
            }
        });
        futures::future::join_all(calls).await;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "unary requests, {tasks} concurrent callers on one connection: {:.0} req/s",
            (tasks * per_task) as f64 / secs
        );
        client.close();
        listener.shutdown().await;

        let frames = 200_000u64;
        let peer = |id| {
            let mut c = PeerTransportConfig::new(local, identity.clone(), roots.clone(), 1, id);
            c.queue_len = frames as usize;
            c.events_capacity = 65_536;
            QuicPeerTransport::start(c).unwrap()
        };
        let (a, _a_events) = peer(1);
        let (b, mut b_events) = peer(2);
        let b_addr = PeerAddr {
            addr: b.local_addr().unwrap(),
            server_name: "127.0.0.1".into(),
        };
        a.add_peer(2, b_addr);
        let msg = |commit| Message {
            r#type: MessageType::MsgHeartbeat as i32,
            from: 1,
            to: 2,
            term: 5,
            commit,
            ..Default::default()
        };
        a.send(vec![msg(0)]);
        assert!(matches!(b_events.next().await, Some(PeerEvent::Message(_))));
        let start = Instant::now();
        for chunk in 0..frames / 1000 {
            a.send((0..1000).map(|i| msg(chunk * 1000 + i + 1)).collect());
        }
        let mut got = 0;
        while got < frames {
            match b_events.next().await {
                Some(PeerEvent::Message(_)) => got += 1,
                Some(_) => {}
                None => break,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "peer heartbeats pipelined on one stream (batched writes): {:.0} frames/s ({got} frames)",
            got as f64 / secs
        );
        a.shutdown().await;
        b.shutdown().await;
    });
}
