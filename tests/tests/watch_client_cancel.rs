//! qraft's client `Watch::next` is cancel-safe (issue 23): a caller that stops waiting for it
//! (a timeout, a `select`) and calls it again later loses no byte of the stream. Before, a
//! response read was kept in the dropped future, so a timeout that fired in the middle of a
//! frame left the stream at a byte inside it: the next call read part of a body as a length
//! prefix, and either waited for megabytes that never came (the watcher silently stopped
//! receiving; the watch fan-out benchmark counted these as missing events) or failed and
//! reopened the stream. This test failed on that code (a resumed stream or no answer).
//!
//! Real `qraft` process; values of 32 KiB, so a response takes several QUIC reads, read with a
//! timeout far shorter than the time between two packets while the writes run.

use std::time::Duration;

use futures::StreamExt;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::WatchCreateRequest;
use qraft_tests::cluster::{Cluster, ClusterOptions};

const PUTS: usize = 200;
const VALUE_BYTES: usize = 32 * 1024;
const WRITERS: usize = 4;
/// Each `next` is abandoned after this long if it has not answered.
const SHORT: Duration = Duration::from_micros(200);
/// Bounds the attempts (every loop is bounded) and the whole read.
const MAX_ATTEMPTS: usize = 5_000_000;
const WAIT: Duration = Duration::from_secs(90);

#[test]
fn a_watch_read_with_short_timeouts_gets_every_event_once_without_reopening() {
    let c = Cluster::start(1, ClusterOptions::default());
    let client = c.client(0);
    let writer = c.client(0);
    let mut watch = runtime::block_on(client.watch(WatchCreateRequest {
        key: b"cancel/".to_vec().into(),
        range_end: b"cancel0".to_vec().into(),
        ..Default::default()
    }))
    .expect("watch");
    let created = runtime::block_on(watch.next())
        .expect("created notice")
        .expect("created");
    assert!(created.created);
    let first_revision = created.header.as_ref().map_or(0, |h| h.revision) + 1;

    let writes = std::thread::spawn(move || {
        runtime::block_on(
            futures::stream::iter(0..PUTS).for_each_concurrent(WRITERS, |i| {
                let writer = writer.clone();
                async move {
                    writer
                        .put_kv(format!("cancel/{i:04}"), vec![b'v'; VALUE_BYTES])
                        .await
                        .expect("put");
                }
            }),
        );
    });

    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = runtime::block_on(async {
            let mut revisions = Vec::new();
            let mut abandoned = 0u64;
            for _ in 0..MAX_ATTEMPTS {
                if revisions.len() >= PUTS {
                    break;
                }
                match runtime::timeout(SHORT, watch.next()).await {
                    Err(_) => abandoned += 1,
                    Ok(Some(Ok(r))) => revisions.extend(
                        r.events
                            .iter()
                            .map(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision)),
                    ),
                    Ok(Some(Err(e))) => return Err(format!("{e}")),
                    Ok(None) => return Err("stream ended".to_owned()),
                }
            }
            Ok((revisions, abandoned, watch.resumes()))
        });
        let _ = done.send(outcome);
    });
    let (revisions, abandoned, resumes) = result
        .recv_timeout(WAIT)
        .expect("the watcher got its events in time")
        .expect("the watch kept working");
    writes.join().expect("writes");
    eprintln!("{abandoned} reads abandoned, {resumes} resumes");
    assert!(
        abandoned > 0,
        "no read was ever abandoned: the test tests nothing"
    );
    assert_eq!(resumes, 0, "the stream broke and was reopened");
    let expected: Vec<i64> = (first_revision..first_revision + PUTS as i64).collect();
    assert_eq!(revisions, expected, "every event once, in order");
}
