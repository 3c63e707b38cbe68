//! core's `Server` (raft + state machine) running on the LMDB storage, for both its raft log
//! and its backend: a single member elects itself, serves a put, restarts from disk and still
//! serves the value — the storage a real member will run on.

use qraft_core::server::{Output, Server, ServerConfig};
use qraft_io::storage::{LmdbStorage, StorageConfig, StorageError};
use qraft_proto::etcdserverpb::{PutRequest, RangeRequest};
use qraft_proto::qraftpb::{ClientRequest, ClientResponse, client_request, client_response};
use qraft_proto::raftpb::ConfState;

type Member = Server<LmdbStorage, LmdbStorage>;

fn start(storage: &LmdbStorage) -> Member {
    let mut server =
        Server::new(ServerConfig::new(1, 1), storage.clone(), storage.clone(), 0).expect("server");
    server.campaign();
    drive(&mut server, storage);
    server
}

/// Carries out raft work until there is none: persist (one batch), then advance.
fn drive(server: &mut Member, storage: &LmdbStorage) {
    for _ in 0..100 {
        let Some(work) = server.ready() else { return };
        storage
            .write(|b| {
                if let Some(snapshot) = &work.snapshot
                    && let Some(meta) = &snapshot.metadata
                {
                    b.apply_snapshot(meta)?;
                }
                b.append(&work.entries)?;
                if let Some(hs) = &work.hard_state {
                    b.set_hard_state(hs)?;
                }
                Ok::<_, StorageError>(())
            })
            .expect("persist");
        server.advance().expect("advance");
    }
    panic!("raft kept producing work");
}

fn respond(server: &mut Member, id: u64) -> ClientResponse {
    server
        .take_outputs()
        .into_iter()
        .find_map(|out| match out {
            Output::Respond { id: got, response } if got == id => Some(response),
            _ => None,
        })
        .expect("a response")
}

#[test]
fn a_member_on_lmdb_serves_writes_across_a_restart() {
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

    let put = PutRequest {
        key: b"hello".to_vec().into(),
        value: b"world".to_vec().into(),
        ..Default::default()
    };
    server.request(
        7,
        ClientRequest {
            request: Some(client_request::Request::Put(put)),
            ..Default::default()
        },
    );
    drive(&mut server, &storage);
    let response = respond(&mut server, 7);
    assert!(
        matches!(response.response, Some(client_response::Response::Put(_))),
        "{response:?}"
    );
    let applied = server.applied_index();
    assert_eq!(
        storage.applied_index(),
        applied,
        "the applied index is durable with the data"
    );

    drop(server);
    drop(storage);
    let storage = LmdbStorage::open(StorageConfig::new(dir.path())).expect("reopen");
    let mut server = start(&storage);
    assert!(server.applied_index() >= applied);
    let range = RangeRequest {
        key: b"hello".to_vec().into(),
        serializable: true,
        ..Default::default()
    };
    server.request(
        8,
        ClientRequest {
            request: Some(client_request::Request::Range(range)),
            ..Default::default()
        },
    );
    let response = respond(&mut server, 8);
    let Some(client_response::Response::Range(range)) = response.response else {
        panic!("expected a range response, got {response:?}");
    };
    assert_eq!(range.kvs.len(), 1);
    assert_eq!(range.kvs[0].value.as_ref(), b"world");
}
