//! Membership with real `qraft` processes, driven by `qraftctl` as an operator would: a
//! learner is added to a running 3-member cluster, joins with `--initial-cluster-state
//! existing`, catches up by snapshot (the leader's log is compacted), is promoted and counts
//! as a voter; the leader is removed and stops. Every voter's `member list` agrees
//! throughout and shows every member's client URLs.

use std::time::{Duration, Instant};

use qraft_io::runtime;
use qraft_proto::etcdserverpb::RangeRequest;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::wait_leader;
use qraft_tests::cluster_members::wait_for;
use serde_json::Value;

const KEYS: usize = 400;
const DEADLINE: Duration = Duration::from_secs(30);

fn key(k: usize) -> String {
    format!("key-{k:04}")
}

/// Serializable (local) read of `key` on member `i`: its value, if the member has it.
fn local_value(c: &Cluster, i: usize, key: &str) -> Option<Vec<u8>> {
    let client = c.client(i);
    let r = runtime::block_on(client.range(RangeRequest {
        key: key.as_bytes().to_vec().into(),
        serializable: true,
        ..Default::default()
    }))
    .ok()?;
    client.close();
    r.kvs.first().map(|kv| kv.value.to_vec())
}

/// A put through member `i` (which forwards to the leader); retried until `DEADLINE`.
fn put_via(c: &Cluster, i: usize, key: &str, value: &str) {
    wait_for(DEADLINE, &format!("put {key} via member {i}"), || {
        let client = c.client(i);
        let ok = runtime::block_on(client.put_kv(key.to_string(), value.to_string())).ok();
        client.close();
        ok
    });
}

/// Every member lists each member with its name and exactly its own client URL.
fn lists_every_client_url(c: &Cluster, list: &[Value], expected: &[usize]) -> bool {
    list.len() == expected.len()
        && expected.iter().all(|&i| {
            let node = &c.nodes[i];
            list.iter().any(|m| {
                m["name"] == node.name.as_str()
                    && m["clientURLs"] == serde_json::json!([node.client_url()])
                    && m["peerURLs"] == serde_json::json!([node.peer_url()])
            })
        })
}

fn is_learner(list: &[Value], id: u64) -> Option<bool> {
    let m = list.iter().find(|m| m["ID"].as_u64() == Some(id))?;
    Some(m["isLearner"].as_bool().unwrap_or(false))
}

#[test]
fn learner_joins_by_snapshot_is_promoted_and_a_member_is_removed() {
    let mut c = Cluster::start(
        3,
        ClusterOptions {
            snapshot_count: 100,
            extra_args: vec!["--snapshot-catchup-entries".into(), "20".into()],
            ..ClusterOptions::default()
        },
    );
    // Enough entries that the leader has snapshotted and compacted its log several times: the
    // new member cannot catch up from the log.
    let client = c.client_all();
    for k in 0..KEYS {
        runtime::block_on(client.put_kv(key(k), format!("v{k}"))).expect("put");
    }
    client.close();

    // member add --learner, then start it with --initial-cluster-state existing.
    let m3 = c.add_node("m3");
    let peer_url = c.nodes[m3].peer_url();
    let (ok, out, err) = c.ctl_reconfigure(
        0,
        &[
            "member",
            "add",
            "m3",
            &format!("--peer-urls={peer_url}"),
            "--learner",
            "-w",
            "json",
        ],
        DEADLINE,
    );
    assert!(ok, "member add failed: {err}");
    let added: Value = serde_json::from_str(&out).expect("member add json");
    let learner_id = added["member"]["ID"].as_u64().expect("new member id");
    assert_eq!(added["member"]["isLearner"], true, "{out}");
    let started = Instant::now();
    c.spawn(m3, "existing");
    let last = key(KEYS - 1);
    wait_for(DEADLINE, "the learner serves the last key", || {
        (local_value(&c, m3, &last)? == format!("v{}", KEYS - 1).into_bytes()).then_some(())
    });
    let catch_up = started.elapsed();
    for k in (0..KEYS).step_by(37) {
        assert_eq!(
            local_value(&c, m3, &key(k)),
            Some(format!("v{k}").into_bytes()),
            "learner misses {}",
            key(k)
        );
    }
    let log = std::fs::read_to_string(c.root.join("m3.log")).unwrap_or_default();
    assert!(
        log.contains("installed the leader's snapshot"),
        "the learner did not catch up by snapshot:\n{}",
        c.nodes[m3].log_tail()
    );
    let received: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("received a snapshot") || l.contains("installed the leader"))
        .collect();
    println!(
        "learner caught up with {KEYS} keys in {catch_up:?}:\n{}",
        received.join("\n")
    );

    // Every voter lists the same four members with their client URLs; the learner refuses
    // the member list as etcd's learners do (tests/tests/cluster_learner.rs).
    let all = [0, 1, 2, m3];
    let list = c.wait_member_lists_agree(&[0, 1, 2], DEADLINE, |l| {
        lists_every_client_url(&c, l, &all)
    });
    assert_eq!(is_learner(&list, learner_id), Some(true));
    let (ok, _, err) = c.ctl(m3, &["member", "list"]);
    assert!(
        !ok && err.contains("rpc not supported for learner"),
        "{err}"
    );

    // Promote (retried: the leader promotes only a learner that has caught up).
    let hex = format!("{learner_id:x}");
    wait_for(DEADLINE, "member promote succeeds", || {
        let (ok, out, _) = c.ctl(0, &["member", "promote", &hex]);
        ok.then_some(out)
    });
    c.wait_member_lists_agree(&all, DEADLINE, |l| is_learner(l, learner_id) == Some(false));

    // With m1 stopped, 3 of 4 voters commit: the promoted member counts.
    c.kill(1);
    put_via(&c, m3, "after-promote", "3-of-4");
    wait_for(DEADLINE, "the promoted member applied the write", || {
        (local_value(&c, m3, "after-promote")? == b"3-of-4").then_some(())
    });
    // m1 comes back on its stored identity (its flags now list four members).
    c.spawn(1, "new");
    wait_for(DEADLINE, "restarted m1 catches up", || {
        (local_value(&c, 1, "after-promote")? == b"3-of-4").then_some(())
    });

    // Remove the leader (the hardest case: it commits its own removal, steps down, and no
    // other member tells it): it stops, and the rest agree on three members and elect a
    // leader among themselves.
    let (gone, gone_id) = wait_leader(&mut c, None, DEADLINE);
    let rest: Vec<usize> = [0, 1, 2, m3].into_iter().filter(|&i| i != gone).collect();
    let remove = ["member", "remove", &format!("{gone_id:x}")];
    let (ok, out, err) = c.ctl_reconfigure(rest[0], &remove, DEADLINE);
    assert!(ok, "member remove failed: {err}");
    assert!(out.contains("removed from cluster"), "{out}");
    let code = wait_for(DEADLINE, "the removed member stops", || {
        c.nodes[gone].exit_code()
    });
    assert_ne!(code, 0, "a removed member exits with an error");
    assert!(
        c.nodes[gone]
            .log_tail()
            .contains("removed from the cluster"),
        "{}",
        c.nodes[gone].log_tail()
    );
    c.wait_member_lists_agree(&rest, DEADLINE, |l| lists_every_client_url(&c, l, &rest));
    put_via(&c, rest[0], "after-remove", "ok");
}

#[test]
fn member_list_shows_every_client_url_on_every_member_and_strangers_cannot_join() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    let all = [0, 1, 2];
    c.wait_member_lists_agree(&all, DEADLINE, |l| lists_every_client_url(&c, l, &all));

    // A member that was never added is refused with etcd's advice, and exits non-zero.
    let stray = c.add_node("stray");
    c.spawn(stray, "existing");
    let code = wait_for(DEADLINE, "the stray member exits", || {
        c.nodes[stray].exit_code()
    });
    assert_ne!(code, 0);
    let log = c.nodes[stray].log_tail();
    assert!(
        log.contains("has not been added to the cluster") && log.contains("member add"),
        "{log}"
    );
    c.wait_member_lists_agree(&all, DEADLINE, |l| l.len() == 3);
}
