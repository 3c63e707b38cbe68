//! `--experimental-watch-progress-notify-interval` (etcd 3.6: `--watch-progress-notify-interval`,
//! the same setting; its parsing is unit-tested in the server's config) on a real `qraft`: a
//! watcher created with `progress_notify` that sees no events gets, every interval, a response
//! without events whose header names the current revision — with etcd's default of 10 minutes
//! none would come within this test's wait.

use std::time::Duration;

use qraft_io::client::{Client, Watch};
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{WatchCreateRequest, WatchResponse};
use qraft_tests::cluster::{Cluster, ClusterOptions};

/// Every wait is bounded, generously for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);

/// The next response of `watch`, read on a thread so the wait is bounded (`next` is never
/// abandoned half-way).
fn next_within(mut watch: Watch) -> (Watch, WatchResponse) {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let next = runtime::block_on(watch.next());
        let _ = done.send((watch, next));
    });
    let (watch, next) = result.recv_timeout(WAIT).expect("a watch response in time");
    (watch, next.expect("stream open").expect("watch response"))
}

#[test]
fn watchers_asking_for_progress_get_it_at_the_configured_interval() {
    let options = ClusterOptions {
        extra_args: vec!["--experimental-watch-progress-notify-interval=300ms".to_owned()],
        ..ClusterOptions::default()
    };
    let c = Cluster::start(1, options);
    let client: Client = c.client(0);
    runtime::block_on(client.put_kv("p/before", "1")).expect("put");
    let watch = runtime::block_on(client.watch(WatchCreateRequest {
        key: b"p/".to_vec().into(),
        range_end: b"p0".to_vec().into(),
        progress_notify: true,
        ..Default::default()
    }))
    .expect("watch");
    let (watch, created) = next_within(watch);
    assert!(created.created);
    let current = created.header.as_ref().map_or(0, |h| h.revision);

    let (watch, progress) = next_within(watch);
    assert!(progress.events.is_empty(), "{progress:?}");
    assert!(!progress.canceled && !progress.created);
    assert_eq!(progress.watch_id, created.watch_id);
    assert_eq!(progress.header.as_ref().map(|h| h.revision), Some(current));

    // An event, then progress again at the new revision once a quiet interval passed.
    let put = runtime::block_on(client.put_kv("p/after", "2")).expect("put");
    let revision = put.header.map_or(0, |h| h.revision);
    let mut watch = watch;
    // A notification of the old revision may still come before the event.
    for _ in 0..3 {
        let (next_watch, response) = next_within(watch);
        watch = next_watch;
        if response.events.is_empty() {
            assert_eq!(response.header.as_ref().map(|h| h.revision), Some(current));
            continue;
        }
        assert_eq!(response.events.len(), 1, "{response:?}");
        break;
    }
    let (_, progress) = next_within(watch);
    assert!(progress.events.is_empty(), "{progress:?}");
    assert_eq!(progress.header.as_ref().map(|h| h.revision), Some(revision));
}
