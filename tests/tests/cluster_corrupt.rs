//! The corruption check end to end on three real members started with
//! `--experimental-initial-corrupt-check`: a member whose stored data was changed while it was
//! down (one value rewritten in its LMDB environment, the rest intact) restarts, proposes its
//! key-space hash as its start-up check, the others find it differs from theirs at the same
//! revision, and the cluster raises CORRUPT (for member 0: the cluster, as etcd's alarm).
//! Then `alarm list` shows it, `/health` reports `ALARM CORRUPT`, and writes are refused with
//! etcd's `etcdserver: corrupt cluster`. Disarmed, the cluster takes writes until the leader's
//! periodic check (`--experimental-corrupt-check-time`) raises it again.
//!
//! Where qraft differs from etcd: etcd's start-up check makes the member with differing data
//! exit before it serves; qraft's (through raft, `core/src/server/corrupt.rs`) raises the
//! cluster's CORRUPT alarm instead.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::path::Path;
use std::time::Duration;

use prost::Message as _;
use qraft_core::backend::{Backend, Table, Visit};
use qraft_io::client::{Client, ClientError};
use qraft_io::error_responses::Code;
use qraft_io::runtime;
use qraft_io::storage::{LmdbStorage, StorageConfig};
use qraft_proto::etcdserverpb::RangeRequest;
use qraft_proto::mvccpb::KeyValue;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::{member_get, restart_with, wait_until};

/// Every wait on the cluster is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);
const CORRUPT: &str = "etcdserver: corrupt cluster";

/// `alarm list` through member `i`: its lines, or why it failed.
fn alarm_list(c: &Cluster, i: usize) -> Result<Vec<String>, String> {
    let (ok, out, err) = c.ctl(i, &["alarm", "list"]);
    if !ok {
        return Err(format!("alarm list on m{i}: {err}"));
    }
    Ok(out.lines().map(str::to_string).collect())
}

/// Member `i`'s own value of `key` (a serializable read on its endpoint).
fn local_value(c: &Cluster, i: usize, key: &str) -> Result<Option<Vec<u8>>, String> {
    let client = c.client(i);
    let read = runtime::block_on(client.range(RangeRequest {
        key: key.as_bytes().to_vec().into(),
        serializable: true,
        ..Default::default()
    }));
    client.close();
    let r = read.map_err(|e| e.to_string())?;
    Ok(r.kvs.first().map(|kv| kv.value.to_vec()))
}

/// Rewrites the value of every stored version of `key` in the (stopped) member's LMDB
/// environment, through the storage's own backend API: the rows stay well-formed, so nothing
/// but a hash comparison can tell. Returns how many versions were changed.
fn rewrite_stored_value(data_dir: &Path, key: &[u8], value: &[u8]) -> usize {
    let storage = LmdbStorage::open(StorageConfig::new(data_dir)).expect("open the member's LMDB");
    let mut txn = storage.write_txn().expect("write txn");
    let mut rows = Vec::new();
    txn.scan(Table::Key, &[], None, &mut |rev_key, row| {
        if let Ok(kv) = KeyValue::decode(row)
            && kv.key == key
            && !kv.value.is_empty()
        {
            rows.push((rev_key.to_vec(), kv));
        }
        Visit::Continue(())
    })
    .expect("scan the key table");
    for (rev_key, mut kv) in rows.iter().cloned() {
        kv.value = value.to_vec().into();
        txn.put(Table::Key, &rev_key, &kv.encode_to_vec())
            .expect("rewrite a row");
    }
    txn.commit().expect("commit the rewrite");
    rows.len()
}

#[test]
fn a_member_restarted_on_changed_data_makes_the_cluster_raise_corrupt() {
    let options = ClusterOptions {
        extra_args: vec!["--experimental-initial-corrupt-check".into()],
        ..ClusterOptions::default()
    };
    let mut c = Cluster::start(3, options);
    let client = c.client_all();
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
        runtime::block_on(client.put_kv(k, v)).expect("put");
    }
    wait_until("m2 to apply the last put", WAIT, || {
        match local_value(&c, 2, "c")? {
            Some(v) if v == b"3" => Ok(()),
            other => Err(format!("c on m2: {other:?}")),
        }
    });
    // Every member ran its start-up check on equal data: nothing raised.
    assert_eq!(alarm_list(&c, 0), Ok(vec![]));

    c.kill(2);
    let changed = rewrite_stored_value(&c.nodes[2].data_dir, b"b", b"bitrot");
    assert_eq!(changed, 1, "one stored version of b");
    c.spawn(2, "new");
    wait_until(
        "m2 to serve its changed value",
        WAIT,
        || match local_value(&c, 2, "b")? {
            Some(v) if v == b"bitrot" => Ok(()),
            other => Err(format!("b on m2: {other:?}")),
        },
    );

    // m2's start-up check tells the others; the alarm is the cluster's, on every member.
    for i in 0..3 {
        wait_until(&format!("CORRUPT in m{i}'s alarm list"), WAIT, || {
            let alarms = alarm_list(&c, i)?;
            if alarms == ["memberID:0 alarm:CORRUPT"] {
                Ok(())
            } else {
                Err(format!("{alarms:?}"))
            }
        });
    }
    let health = member_get(&c, 0, "/health").expect("/health");
    assert_eq!(
        (health.status, health.body.as_str()),
        (503, "{\"health\":\"false\",\"reason\":\"ALARM CORRUPT\"}\n")
    );

    // Writes are refused on every member, with etcd's error.
    for i in 0..3 {
        let member = c.client(i);
        match runtime::block_on(member.put_kv("d", "4")) {
            Err(ClientError::Status { code, message, .. }) => {
                assert_eq!((code, message.as_str()), (Code::DataLoss, CORRUPT), "m{i}")
            }
            other => panic!("put through m{i} under CORRUPT: {other:?}"),
        }
        member.close();
    }
    let check: Client = c.client(0);
    let d = runtime::block_on(check.range(RangeRequest {
        key: b"d".to_vec().into(),
        serializable: true,
        ..Default::default()
    }))
    .expect("serializable read under CORRUPT");
    assert!(d.kvs.is_empty(), "a refused put left {:?}", d.kvs);

    // Disarmed, the cluster takes writes again: the start-up check ran once and does not
    // look again.
    let (ok, _, err) = c.ctl(0, &["alarm", "disarm"]);
    assert!(ok, "alarm disarm: {err}");
    assert_eq!(alarm_list(&c, 0), Ok(vec![]));
    runtime::block_on(client.put_kv("e", "5")).expect("put after the disarm");

    // The periodic check (`--experimental-corrupt-check-time`, run by the leader) finds the
    // difference again, whichever member leads.
    c.options.extra_args.clear();
    for i in 0..3 {
        restart_with(&mut c, i, &["--experimental-corrupt-check-time=500ms"]);
    }
    wait_until("CORRUPT raised again by the periodic check", WAIT, || {
        let alarms = alarm_list(&c, 0)?;
        if alarms == ["memberID:0 alarm:CORRUPT"] {
            Ok(())
        } else {
            Err(format!("{alarms:?}"))
        }
    });
    let refused = runtime::block_on(c.client(1).put_kv("f", "6"));
    assert!(
        matches!(&refused, Err(ClientError::Status { message, .. }) if message == CORRUPT),
        "{refused:?}"
    );
}
