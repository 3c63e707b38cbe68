//! The peer transport after a network blackhole heals: messages must flow again promptly.
//!
//! A cut that drops every packet for several seconds leaves an established QUIC connection in
//! deep loss-probe backoff (each probe timeout doubles, without a cap worth speaking of): after
//! the heal the sender stays silent until its next probe, seconds later. Two members linked
//! through UDP relays that can drop everything reproduce the partition sequence of the fault
//! suite without network namespaces: both directions carry traffic before the cut, a few
//! messages during it (a pre-candidate's pre-votes), and the time from the heal to the first
//! message delivered each way is measured.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Certs, certs, certs_same_ca, localhost};
use futures::StreamExt;
use qraft_io::runtime;
use qraft_io::transport::{
    PeerAddr, PeerEvent, PeerTransport, PeerTransportConfig, QuicPeerTransport,
};
use qraft_proto::raftpb::{Message, MessageType};

const CLUSTER: u64 = 0xc2;

/// A UDP relay in front of one member: datagrams from the (single) dialing endpoint go to the
/// member, the member's answers go back; while `cut` is set both directions are dropped.
struct Relay {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    fn start(to: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(to).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let (front2, back2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
        let forward = {
            let (cut, stop, client) = (cut.clone(), stop.clone(), client.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, from)) = front.recv_from(&mut buf) else {
                        continue;
                    };
                    *client.lock().unwrap() = Some(from);
                    if !cut.load(Ordering::SeqCst) {
                        let _ = back.send(&buf[..n]);
                    }
                }
            })
        };
        let backward = {
            let (cut, stop) = (cut.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    let Ok(n) = back2.recv(&mut buf) else {
                        continue;
                    };
                    let to = *client.lock().unwrap();
                    if let Some(to) = to
                        && !cut.load(Ordering::SeqCst)
                    {
                        let _ = front2.send_to(&buf[..n], to);
                    }
                }
            })
        };
        Relay {
            addr,
            cut,
            stop,
            threads: vec![forward, backward],
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Member {
    transport: Arc<QuicPeerTransport>,
    received: Arc<Mutex<Vec<Message>>>,
    pump: runtime::Task<()>,
}

/// A member with the server's transport defaults (only the certificates are the test's).
fn start(certs: &Certs, id: u64) -> Member {
    let config = PeerTransportConfig::new(
        localhost(),
        certs.identity.clone(),
        certs.roots.clone(),
        CLUSTER,
        id,
    );
    let (transport, mut events) = QuicPeerTransport::start(config).unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let into = received.clone();
    let pump = runtime::spawn(async move {
        while let Some(ev) = events.next().await {
            if let PeerEvent::Message(m) = ev {
                into.lock().unwrap().push(m);
            }
        }
    });
    Member {
        transport,
        received,
        pump,
    }
}

fn pre_vote(from: u64, to: u64, term: u64) -> Message {
    Message {
        r#type: MessageType::MsgPreVote as i32,
        from,
        to,
        term,
        ..Default::default()
    }
}

/// An append carrying 64 KiB of entries.
fn append(from: u64, to: u64, term: u64) -> Message {
    Message {
        r#type: MessageType::MsgApp as i32,
        from,
        to,
        term,
        entries: (0..16)
            .map(|i| qraft_proto::raftpb::Entry {
                term,
                index: i,
                data: vec![7u8; 4096].into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

impl Member {
    fn has(&self, term: u64) -> bool {
        self.received.lock().unwrap().iter().any(|m| m.term == term)
    }
}

/// Sends `from → to` pre-votes of `term` every 100 ms (as raft retries) until `to` has one;
/// returns how long that took.
async fn time_to_deliver(from: &Member, to: &Member, ids: (u64, u64), term: u64) -> Duration {
    let started = Instant::now();
    while !to.has(term) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no message {}→{} within 30 s of the heal",
            ids.0,
            ids.1
        );
        from.transport.send(vec![pre_vote(ids.0, ids.1, term)]);
        runtime::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

#[test]
fn messages_flow_within_a_second_after_a_blackhole_heals() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs(&dir.path().join("a"));
    let cb = certs_same_ca(&dir.path().join("a"), &dir.path().join("b"));
    runtime::block_on(async {
        let a = start(&ca, 1);
        let b = start(&cb, 2);
        let to_a = Relay::start(a.transport.local_addr().unwrap());
        let to_b = Relay::start(b.transport.local_addr().unwrap());
        let via = |r: &Relay| PeerAddr {
            addr: r.addr,
            server_name: "127.0.0.1".into(),
        };
        a.transport.add_peer(2, via(&to_b));
        b.transport.add_peer(1, via(&to_a));
        // Both directions connected and in use.
        time_to_deliver(&a, &b, (1, 2), 1).await;
        time_to_deliver(&b, &a, (2, 1), 1).await;

        // Cuts of different lengths: the loss-probe backoff puts the sender's next probe at a
        // point that depends on how long the cut lasted.
        for (cut, length) in [(2, 60), (4, 45), (6, 75)] {
            to_a.cut.store(true, Ordering::SeqCst);
            to_b.cut.store(true, Ordering::SeqCst);
            // During the cut, 1 goes on replicating to 2 as a leader under load would (enough
            // to fill the congestion window) and 2 retries pre-votes now and then, like a
            // pre-candidate.
            for round in 0..length {
                a.transport.send(vec![append(1, 2, cut)]);
                if round % 10 == 0 {
                    b.transport.send(vec![pre_vote(2, 1, cut)]);
                }
                runtime::sleep(Duration::from_millis(100)).await;
                assert!(
                    !a.has(cut) && !b.has(cut),
                    "the cut leaked in round {round}"
                );
            }
            to_a.cut.store(false, Ordering::SeqCst);
            to_b.cut.store(false, Ordering::SeqCst);

            let (a_to_b, b_to_a) = futures::join!(
                time_to_deliver(&a, &b, (1, 2), cut + 1),
                time_to_deliver(&b, &a, (2, 1), cut + 1)
            );
            println!(
                "{:.1} s cut, after the heal: 1→2 in {a_to_b:?}, 2→1 in {b_to_a:?}",
                length as f64 / 10.0
            );
            // A pre-vote round, and a healed member hearing its leader, must fit in an
            // election timeout (1 s by default).
            assert!(
                a_to_b < Duration::from_millis(1000) && b_to_a < Duration::from_millis(1000),
                "messages stalled after a {length}00 ms cut healed: 1→2 {a_to_b:?}, 2→1 {b_to_a:?}"
            );
        }
        a.transport.shutdown().await;
        b.transport.shutdown().await;
        a.pump.cancel().await;
        b.pump.cancel().await;
    });
}
