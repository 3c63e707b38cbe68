//! Leader-only lease calls through a follower of a real 3-member cluster. Only the leader
//! tracks lease deadlines; a follower forwards LeaseKeepAlive and LeaseTimeToLive to it over
//! the peer port and answers the client itself, as etcd's followers do. The clients here know
//! only the follower, so nothing can reach the leader but the follower's forwarding.

use std::time::{Duration, Instant};

use qraft_io::client::{Client, ClientError};
use qraft_io::error_responses::Code;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{LeaseGrantRequest, LeaseTimeToLiveRequest, PutRequest};
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::{logs, wait_leader};

const WAIT: Duration = Duration::from_secs(30);

/// A client that knows only member `i`. Its deadline is longer than a follower's forwarding
/// deadline (5 s + 2 election timeouts), so the member's own answer is what the test sees;
/// no retries, so an error is the member's, not the client's last one.
fn only(c: &Cluster, i: usize) -> Client {
    let mut config = c.client_config(vec![c.nodes[i].client_url()]);
    config.request_timeout = Duration::from_secs(20);
    config.max_retries = 0;
    config.quic.idle_timeout = Duration::from_secs(5);
    runtime::block_on(Client::connect(config)).expect("connect")
}

fn grant(client: &Client, ttl: i64) -> i64 {
    let granted = runtime::block_on(client.lease_grant(LeaseGrantRequest {
        ttl,
        ..Default::default()
    }))
    .expect("grant through a follower");
    assert_eq!(granted.ttl, ttl);
    granted.id
}

fn put_with_lease(client: &Client, key: &str, lease: i64) {
    runtime::block_on(client.put(PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: b"v".to_vec().into(),
        lease,
        ..Default::default()
    }))
    .expect("put with the lease");
}

fn time_to_live(client: &Client, lease: i64) -> Result<(i64, i64, Vec<Vec<u8>>), ClientError> {
    let answer = runtime::block_on(client.lease_time_to_live(LeaseTimeToLiveRequest {
        id: lease,
        keys: true,
    }))?;
    let keys = answer.keys.iter().map(|k| k.to_vec()).collect();
    Ok((answer.ttl, answer.granted_ttl, keys))
}

/// (leader, a follower), once the cluster has a leader.
fn roles(c: &mut Cluster) -> (usize, usize) {
    c.wait_for_writes(WAIT);
    let (leader, _) = wait_leader(c, None, WAIT);
    (leader, (leader + 1) % c.nodes.len())
}

#[test]
fn time_to_live_and_keep_alive_through_a_follower_only() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    let (_, follower) = roles(&mut c);
    let client = only(&c, follower);
    let lease = grant(&client, 30);
    put_with_lease(&client, "leased", lease);

    let (ttl, granted, keys) = time_to_live(&client, lease).expect("time to live");
    assert_eq!(granted, 30);
    assert!(ttl > 0 && ttl <= 30, "remaining ttl {ttl}");
    assert_eq!(keys, [b"leased".to_vec()]);
    let (ttl, _, _) = time_to_live(&client, lease ^ 0x5a5a).expect("unknown lease");
    assert_eq!(ttl, -1, "an unknown lease answers TTL -1");

    let mut stream = client.lease_keep_alive(lease);
    for round in 0..3 {
        let answer = runtime::block_on(stream.keep_alive())
            .unwrap_or_else(|err| panic!("keep-alive {round}: {err}\n{}", logs(&c)));
        assert_eq!((answer.id, answer.ttl), (lease, 30), "round {round}");
    }

    let id = format!("{lease:x}");
    let (ok, out, err) = c.ctl(follower, &["lease", "keep-alive", "--once", &id]);
    assert!(ok, "qraftctl lease keep-alive --once on a follower: {err}");
    assert!(
        out.contains(&format!("lease {lease:016x} keepalived with TTL(30)")),
        "{out}"
    );
    let (ok, out, err) = c.ctl(follower, &["lease", "timetolive", "--keys", &id]);
    assert!(ok, "qraftctl lease timetolive on a follower: {err}");
    assert!(out.contains("granted with TTL(30s)"), "{out}");
    assert!(out.contains("attached keys([leased])"), "{out}");
}

/// kill -9 the leader while a keep-alive stream runs through a follower: the stream goes on
/// (the follower forwards to whichever member leads), and the lease outlives several of its
/// TTLs, so the renewals reached the new leader, which started the lease afresh.
#[test]
fn keep_alive_through_a_follower_survives_a_leader_kill() {
    const TTL: i64 = 3;
    let mut c = Cluster::start(3, ClusterOptions::default());
    let (old_leader, follower) = roles(&mut c);
    let client = only(&c, follower);
    let lease = grant(&client, TTL);
    put_with_lease(&client, "survivor", lease);
    let mut stream = client.lease_keep_alive(lease);
    let first = runtime::block_on(stream.keep_alive()).expect("keep-alive before the kill");
    assert_eq!(first.ttl, TTL);

    c.kill(old_leader);
    let killed = Instant::now();
    let mut renewed_after_kill = 0;
    let mut refused = Vec::new();
    let mut new_leader = None;
    // Renew every half TTL for 4 TTLs after the kill; without renewals on the new leader the
    // lease would expire within one TTL (plus the election timeout a new leader grants).
    while killed.elapsed() < Duration::from_secs(4 * TTL as u64) {
        let round = Instant::now();
        match runtime::block_on(stream.keep_alive()) {
            Ok(answer) => {
                assert_eq!((answer.id, answer.ttl), (lease, TTL), "the lease is alive");
                renewed_after_kill += 1;
            }
            // A renewal waits for the new leader up to the forwarding deadline; the etcd
            // errors for a leader change are allowed while the election runs.
            Err(ClientError::Status { code, message, .. })
                if code == Code::Unavailable
                    && new_leader.is_none()
                    && [
                        "etcdserver: no leader",
                        "etcdserver: leader changed",
                        "etcdserver: request timed out",
                    ]
                    .contains(&message.as_str()) =>
            {
                refused.push(message)
            }
            Err(err) => panic!("keep-alive after the kill: {err}\n{}", logs(&c)),
        }
        if new_leader.is_none() {
            new_leader = Some(wait_leader(&mut c, Some(old_leader), WAIT).0);
        }
        std::thread::sleep(Duration::from_millis(500).saturating_sub(round.elapsed()));
    }
    eprintln!("renewals after the kill: {renewed_after_kill} answered, refused: {refused:?}");
    assert!(
        renewed_after_kill >= 4,
        "renewals answered: {renewed_after_kill}"
    );
    let (ttl, granted, keys) = time_to_live(&client, lease).expect("time to live");
    assert_eq!(granted, TTL);
    assert!(
        ttl > 0 && ttl <= TTL,
        "remaining ttl {ttl} on the new leader"
    );
    assert_eq!(keys, [b"survivor".to_vec()], "the key kept its lease");
}

/// A follower that has lost its quorum finds no leader to forward to and answers etcd's
/// `no leader` (Unavailable) at the forwarding deadline.
#[test]
fn lease_calls_without_a_quorum_answer_no_leader() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    let (_, follower) = roles(&mut c);
    let client = only(&c, follower);
    let lease = grant(&client, 30);
    for i in (0..3).filter(|&i| i != follower) {
        c.kill(i);
    }
    let asked = Instant::now();
    let mut stream = client.lease_keep_alive(lease);
    let (ttl, renewal) = runtime::block_on(async {
        let ttl = client.lease_time_to_live(LeaseTimeToLiveRequest {
            id: lease,
            keys: false,
        });
        futures::join!(ttl, stream.keep_alive())
    });
    for (what, error) in [
        ("time to live", ttl.map(|_| ())),
        ("keep-alive", renewal.map(|_| ())),
    ] {
        match error {
            Err(ClientError::Status { code, message, .. }) => {
                assert_eq!(
                    (code, message.as_str()),
                    (Code::Unavailable, "etcdserver: no leader"),
                    "{what}"
                );
            }
            other => panic!("{what} without a quorum: {other:?}"),
        }
    }
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "answered after {:?}",
        asked.elapsed()
    );
}
