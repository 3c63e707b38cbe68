//! A watch through the client library survives leader changes on a 3-member cluster of real
//! `qraft` processes — the member serving it is killed with -9 (the client resumes on another
//! member from its last revision + 1), then leadership moves with `move-leader` — and sees
//! every event exactly once, in revision order.

use std::time::{Duration, Instant};

use qraft_io::client::Client;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{MoveLeaderRequest, RangeRequest, WatchCreateRequest};
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::{
    all_endpoints, fault_config, logs, status, try_client, wait_leader,
};

const KEYS: usize = 90;
/// The last key written; the watcher stops when it sees it.
const END: &str = "wk/~end";

#[test]
fn watch_sees_every_event_once_across_leader_changes() {
    let started = Instant::now();
    let mut c = Cluster::start(3, ClusterOptions::default());
    let (leader, leader_id) = wait_leader(&mut c, None, Duration::from_secs(20));

    // The watch is served by the leader first (its URL is tried first), so killing the
    // leader breaks the stream.
    let mut endpoints = vec![c.nodes[leader].client_url()];
    endpoints.extend(
        all_endpoints(&c)
            .into_iter()
            .filter(|u| *u != c.nodes[leader].client_url()),
    );
    let watch_client =
        runtime::block_on(Client::connect(fault_config(&c, endpoints))).expect("connect");
    let mut watch = runtime::block_on(watch_client.watch(WatchCreateRequest {
        key: b"wk/".to_vec().into(),
        range_end: b"wk0".to_vec().into(),
        ..Default::default()
    }))
    .expect("watch");
    let created = runtime::block_on(watch.next())
        .expect("created notice")
        .expect("created");
    assert!(created.created);

    // The watcher collects (revision, key) until it sees the end marker. `next` is never
    // abandoned half-way (that would desync the stream), so the wait is bounded by the main
    // thread instead.
    let (done, results) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen: Vec<(i64, String)> = Vec::new();
        let mut errors = Vec::new();
        let mut served_by = Vec::new();
        runtime::block_on(async {
            while let Some(next) = watch.next().await {
                match next {
                    Ok(resp) => {
                        assert!(!resp.canceled, "watch canceled: {resp:?}");
                        let member = resp.header.as_ref().map_or(0, |h| h.member_id);
                        if !resp.events.is_empty() && served_by.last() != Some(&member) {
                            served_by.push(member);
                        }
                        for e in resp.events {
                            let kv = e.kv.expect("event kv");
                            seen.push((
                                kv.mod_revision,
                                String::from_utf8_lossy(&kv.key).into_owned(),
                            ));
                        }
                        if seen.last().is_some_and(|(_, k)| k.starts_with(END)) {
                            break;
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
        });
        let _ = done.send((seen, errors, served_by));
    });

    let writer = runtime::block_on(Client::connect(fault_config(&c, all_endpoints(&c))))
        .expect("connect writer");
    let mut acked = Vec::new();
    let mut killed = None;
    for i in 0..KEYS {
        if i == KEYS / 3 {
            c.kill(leader);
            killed = Some(Instant::now());
        }
        if i == 2 * KEYS / 3 {
            move_leader(&mut c, leader);
        }
        put_unique(&writer, &format!("wk/{i:03}"), &mut acked);
    }
    put_unique(&writer, END, &mut acked);
    assert!(
        acked.len() == KEYS + 1,
        "only {} of {KEYS} writes acknowledged\n{}",
        acked.len(),
        logs(&c)
    );

    // The truth: every key under the prefix (in-doubt writes included), by revision.
    let resp = runtime::block_on(writer.range(RangeRequest {
        key: b"wk/".to_vec().into(),
        range_end: b"wk0".to_vec().into(),
        ..Default::default()
    }))
    .expect("linearizable range");
    let mut expected: Vec<(i64, String)> = resp
        .kvs
        .iter()
        .map(|kv| {
            (
                kv.mod_revision,
                String::from_utf8_lossy(&kv.key).into_owned(),
            )
        })
        .collect();
    expected.sort();
    for ack in &acked {
        assert!(expected.contains(ack), "acknowledged {ack:?} missing");
    }
    let (seen, errors, served_by) = results
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the watcher never saw the end marker\n{}", logs(&c)));
    println!(
        "watch: {} events seen, {} expected, {} transient errors {errors:?}; served by \
         {served_by:x?}; kill at {:?} after start; test took {:?}",
        seen.len(),
        expected.len(),
        errors.len(),
        killed.map(|k| k - started),
        started.elapsed()
    );
    // The stream really moved: the killed leader served the first events, another member
    // the rest.
    assert!(
        served_by.len() >= 2 && served_by[0] == leader_id && !served_by[1..].contains(&leader_id),
        "events served by {served_by:x?}, killed leader {leader_id:x}"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "events repeated: {seen:?}");
    assert_eq!(sorted, seen, "events out of revision order");
    assert_eq!(seen, expected, "events lost or invented");
}

/// Puts `{name}/{attempt}`, retrying a failed write under the next attempt's name so every
/// key is written once (a failed write may still have been applied; the final range shows it).
fn put_unique(writer: &Client, name: &str, acked: &mut Vec<(i64, String)>) {
    for attempt in 0..30 {
        let key = format!("{name}/{attempt}");
        match runtime::block_on(writer.put_kv(key.clone(), "v")) {
            Ok(resp) => {
                acked.push((resp.header.map_or(0, |h| h.revision), key));
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Moves leadership from the current leader to another running member.
fn move_leader(c: &mut Cluster, down: usize) {
    let (leader, leader_id) = wait_leader(c, None, Duration::from_secs(20));
    let target = (0..c.nodes.len())
        .find(|&i| i != leader && i != down)
        .expect("a third member");
    let target_id = status(c, target)
        .and_then(|s| s.header)
        .map(|h| h.member_id)
        .expect("target status");
    let client = try_client(c, leader).expect("connect to the leader");
    runtime::block_on(client.move_leader(MoveLeaderRequest { target_id }))
        .unwrap_or_else(|e| panic!("move-leader {leader_id:x} -> {target_id:x}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(c, target).is_none_or(|s| s.leader != target_id) {
        assert!(
            Instant::now() < deadline,
            "leadership never moved\n{}",
            logs(c)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
