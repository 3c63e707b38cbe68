//! core's `Server` (raft + state machine) running on the LMDB storage, for both its raft log
//! and its backend: a single member elects itself, serves puts while the state machine
//! snapshots and the log is compacted, restarts from disk and still serves the values — the
//! storage a real member will run on.

use qraft_core::raft::Storage;
use qraft_core::server::{Output, Server, ServerConfig};
use qraft_io::storage::{LmdbStorage, StorageConfig, StorageError};
use qraft_proto::etcdserverpb::{PutRequest, RangeRequest};
use qraft_proto::qraftpb::{ClientRequest, ClientResponse, client_request, client_response};
use qraft_proto::raftpb::ConfState;
use rand::SeedableRng;
use rand::rngs::StdRng;

type Member = Server<LmdbStorage, LmdbStorage>;

fn start(storage: &LmdbStorage) -> Member {
    let mut config = ServerConfig::new(1, 1);
    // Snapshot often so the test goes through Output::Snapshot and log compaction too.
    config.snapshot_count = 3;
    config.snapshot_catch_up_entries = 1;
    // As the driver runs it: snapshot data is streamed beside raft, never encoded as an image.
    config.snapshot_images = false;
    let mut server = Server::new(
        config,
        storage.clone(),
        storage.clone(),
        0,
        Box::new(StdRng::seed_from_u64(1)),
    )
    .expect("server");
    server.campaign();
    drive(&mut server, storage);
    server
}

/// Carries out raft work until there is none: persist (one batch), then advance; stores the
/// state machine's snapshots and compacts the log as it asks. Returns the outputs.
fn drive(server: &mut Member, storage: &LmdbStorage) -> Vec<Output> {
    let mut outputs = Vec::new();
    for _ in 0..100 {
        let Some(work) = server.ready() else {
            return outputs;
        };
        storage
            .write(|b| {
                assert!(
                    work.snapshot.is_none(),
                    "a single member never receives one"
                );
                b.append(&work.entries)?;
                if let Some(hs) = &work.hard_state {
                    b.set_hard_state(hs)?;
                }
                Ok::<_, StorageError>(())
            })
            .expect("persist");
        server.advance().expect("advance");
        for output in server.take_outputs() {
            if let Output::Snapshot {
                index,
                conf_state,
                compact_to,
                data,
            } = &output
            {
                assert!(data.is_empty(), "no image encoded only to be dropped");
                storage
                    .write(|b| {
                        b.create_snapshot(*index, Some(conf_state.clone()))?;
                        b.compact(*compact_to)
                    })
                    .expect("snapshot and compact");
            }
            outputs.push(output);
        }
    }
    panic!("raft kept producing work");
}

fn response(outputs: &[Output], id: u64) -> ClientResponse {
    outputs
        .iter()
        .find_map(|out| match out {
            Output::Respond { id: got, response } if *got == id => Some(response.clone()),
            _ => None,
        })
        .expect("a response")
}

fn put(server: &mut Member, storage: &LmdbStorage, id: u64, key: &str, value: &str) {
    let put = PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        ..Default::default()
    };
    server.request(
        id,
        ClientRequest {
            request: Some(client_request::Request::Put(put)),
            ..Default::default()
        },
    );
    let outputs = drive(server, storage);
    let got = response(&outputs, id);
    assert!(
        matches!(got.response, Some(client_response::Response::Put(_))),
        "{got:?}"
    );
}

#[test]
fn a_member_on_lmdb_serves_writes_across_snapshots_and_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("open");
    storage
        .write(|b| {
            b.bootstrap(ConfState {
                voters: vec![1],
                ..Default::default()
            })
        })
        .expect("boot");
    let mut server = start(&storage);
    assert!(server.is_leader());

    for i in 0..10u64 {
        put(
            &mut server,
            &storage,
            i,
            &format!("key{i}"),
            &format!("value{i}"),
        );
    }
    let applied = server.applied_index();
    assert_eq!(
        storage.applied_index(),
        applied,
        "the applied index is durable with the data"
    );
    assert!(
        storage.raft_state().snapshot.index > 1,
        "the state machine snapshotted"
    );
    assert!(
        Storage::first_index(&storage).expect("first") > 2,
        "the log was compacted"
    );
    let for_a_follower = Storage::snapshot(&storage, 0).expect("snapshot");
    let meta = for_a_follower.metadata.expect("metadata");
    assert_eq!(
        meta.index, applied,
        "a lagging follower gets the applied state (its data streamed beside raft)"
    );
    assert!(for_a_follower.data.is_empty(), "no image inside raft");

    drop(server);
    drop(storage);
    let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("reopen");
    let mut server = start(&storage);
    assert!(server.applied_index() >= applied);
    let range = RangeRequest {
        key: b"key".to_vec().into(),
        range_end: b"kez".to_vec().into(),
        serializable: true,
        ..Default::default()
    };
    server.request(
        99,
        ClientRequest {
            request: Some(client_request::Request::Range(range)),
            ..Default::default()
        },
    );
    let got = response(&server.take_outputs(), 99);
    let Some(client_response::Response::Range(range)) = got.response else {
        panic!("expected a range response, got {got:?}");
    };
    assert_eq!(range.kvs.len(), 10);
    assert_eq!(range.kvs[3].value.as_ref(), b"value3");
}
