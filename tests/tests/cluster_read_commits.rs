//! Reads do not flush the applied state: under a read/write mix against a real member (four
//! readers and one writer, a few seconds), the member's LMDB commits — the count of
//! `qraft_disk_backend_commit_duration_seconds` in `/metrics`, etcd's
//! `etcd_disk_backend_commit_duration_seconds` — stay far below its reads. Reads are served
//! from the open batch of applied entries, which commits on its own schedule (every few
//! milliseconds while writes flow), as etcd's backend reads through its write buffer. Before
//! that, every read committed the batch first: about one commit per loop turn with a read.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use qraft_io::runtime;
use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::member_get;
use qraft_tests::prometheus::Scrape;

const READERS: usize = 4;
/// How long the mix runs.
const RUN: Duration = Duration::from_secs(3);
/// Bound on each client's operations, so every loop ends even if the clock misbehaves.
const MAX_OPS: u64 = 1_000_000;
const COMMITS: &str = "qraft_disk_backend_commit_duration_seconds_count";

fn commits(c: &Cluster) -> f64 {
    let r = member_get(c, 0, "/metrics").expect("/metrics");
    assert_eq!(r.status, 200, "/metrics: {}", r.body);
    let scrape = Scrape::parse(&r.body).expect("prometheus text");
    scrape
        .value(COMMITS, &[])
        .unwrap_or_else(|| panic!("no sample {COMMITS}"))
}

#[test]
fn a_read_write_mix_commits_far_less_often_than_it_reads() {
    let c = Cluster::start(1, ClusterOptions::default());
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(READERS + 2));
    let mut workers = Vec::new();
    for worker in 0..=READERS {
        let client = c.client(0);
        let (stop, start) = (stop.clone(), start.clone());
        let done = if worker == 0 {
            writes.clone()
        } else {
            reads.clone()
        };
        workers.push(thread::spawn(move || {
            start.wait();
            runtime::block_on(async {
                for i in 0..MAX_OPS {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("mix/{}", i % 100);
                    if worker == 0 {
                        client.put_kv(key, format!("{i}")).await.expect("put");
                    } else {
                        client.get(key).await.expect("linearizable get");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
            client.close();
        }));
    }
    let before = commits(&c);
    start.wait();
    let began = Instant::now();
    thread::sleep(RUN);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("client thread");
    }
    let seconds = began.elapsed().as_secs_f64();
    let committed = commits(&c) - before;
    let (reads, writes) = (
        reads.load(Ordering::Relaxed) as f64,
        writes.load(Ordering::Relaxed) as f64,
    );
    println!(
        "{:.0} reads/s, {:.0} writes/s, {:.0} LMDB commits/s over {seconds:.1} s",
        reads / seconds,
        writes / seconds,
        committed / seconds
    );
    assert!(
        reads >= 200.0 && writes >= 20.0,
        "too little traffic to judge: {reads} reads, {writes} writes"
    );
    assert!(
        committed * 5.0 <= reads,
        "{committed} LMDB commits for {reads} reads ({writes} writes): reads force commits"
    );
}
