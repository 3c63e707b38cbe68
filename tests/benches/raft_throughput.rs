//! Raft throughput: a 3-node in-memory cluster on one thread commits 128-byte entries.
//!
//! Prints committed entries per second, heap allocations and allocated bytes per entry (counted
//! by a wrapping global allocator), and wire bytes per entry. Run with
//! `cargo bench -p qraft-tests --bench raft_throughput` (`RAFT_BENCH_ENTRIES` to change the count).
//! A benchmark, not a test: it prints figures and asserts nothing about speed.

// Timing, the environment and a counting allocator are the point of a benchmark; core's
// sans-IO rules apply to the library, not to this harness.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::unwrap_used,
    unsafe_code
)]

use prost::Message as _;
use prost::bytes::Bytes;
use qraft_core::raft::{Config, MemStorage, RawNode, Storage};
use qraft_proto::raftpb::{ConfState, Entry, Message};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ENTRY_SIZE: usize = 128;
/// Proposals per client batch (the server's group commit would batch similarly).
const BATCH: usize = 256;

struct Cluster {
    nodes: Vec<RawNode<MemStorage>>,
    inbox: Vec<Message>,
    wire_bytes: u64,
    applied: u64,
}

impl Cluster {
    fn new() -> Self {
        let voters = vec![1, 2, 3];
        let nodes = voters
            .iter()
            .map(|&id| {
                let cfg = Config {
                    max_inflight_msgs: 1024,
                    max_size_per_msg: 1 << 20,
                    ..Config::new(id)
                };
                let storage = MemStorage::new_with_conf_state(ConfState {
                    voters: voters.clone(),
                    ..Default::default()
                });
                RawNode::new(&cfg, storage).unwrap()
            })
            .collect();
        Self {
            nodes,
            inbox: Vec::new(),
            wire_bytes: 0,
            applied: 0,
        }
    }

    /// Handles every node's Ready and delivers messages until nothing is left to do.
    fn stabilize(&mut self, measure_wire: bool) {
        loop {
            let mut progressed = false;
            for i in 0..self.nodes.len() {
                let node = &mut self.nodes[i];
                if !node.has_ready() {
                    continue;
                }
                progressed = true;
                let mut rd = node.ready();
                let storage = node.storage_mut();
                storage
                    .append_owned(std::mem::take(&mut rd.entries))
                    .unwrap();
                if let Some(hs) = rd.hard_state {
                    storage.set_hard_state(hs);
                }
                if i == 0 {
                    self.applied += rd.committed_entries.len() as u64;
                }
                if measure_wire {
                    for m in rd.messages.iter().chain(&rd.persisted_messages) {
                        self.wire_bytes += m.encoded_len() as u64;
                    }
                }
                self.inbox.append(&mut rd.messages);
                self.inbox.append(&mut rd.persisted_messages);
                let applied_to = rd.committed_entries.last().map(|e| e.index);
                node.advance();
                if let Some(index) = applied_to {
                    compact(node, index);
                }
            }
            for m in std::mem::take(&mut self.inbox) {
                let to = (m.to - 1) as usize;
                let _ = self.nodes[to].step(m);
            }
            if !progressed {
                return;
            }
        }
    }
}

/// Keeps memory bounded: snapshot and drop the log every 64k applied entries.
fn compact(node: &mut RawNode<MemStorage>, applied: u64) {
    let storage = node.storage_mut();
    let first = storage.first_index().unwrap();
    if applied >= first + 65_536 {
        storage
            .create_snapshot(applied, None, Bytes::new())
            .unwrap();
        storage.compact(applied).unwrap();
    }
}

/// User + system CPU time of this process, from /proc (Linux); 0 where unavailable.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports these in USER_HZ, which is 100 on every mainstream configuration.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let total: u64 = std::env::var("RAFT_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let mut cluster = Cluster::new();
    cluster.nodes[0].campaign();
    cluster.stabilize(false);
    assert!(cluster.nodes[0].is_leader(), "node 1 should lead");
    cluster.applied = 0;

    // Payloads are slices of one shared buffer, as entries decoded from a network buffer are.
    let buffer = Bytes::from(vec![7u8; ENTRY_SIZE * BATCH]);
    let batch = || -> Vec<Entry> {
        (0..BATCH)
            .map(|i| Entry {
                data: buffer.slice(i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE),
                ..Default::default()
            })
            .collect()
    };

    // Warm up, then measure with allocation counting.
    for _ in 0..100 {
        cluster.nodes[0].propose_entries(batch()).unwrap();
        cluster.stabilize(false);
    }
    cluster.applied = 0;
    let (allocs0, bytes0) = (
        ALLOCS.load(Ordering::Relaxed),
        ALLOC_BYTES.load(Ordering::Relaxed),
    );
    let start = Instant::now();
    let cpu_start = process_cpu_seconds();
    let mut proposed = 0;
    while proposed < total {
        cluster.nodes[0].propose_entries(batch()).unwrap();
        proposed += BATCH as u64;
        cluster.stabilize(false);
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu_seconds() - cpu_start;
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs0;
    let bytes = ALLOC_BYTES.load(Ordering::Relaxed) - bytes0;
    let committed = cluster.applied;

    // A shorter run measuring what goes over the wire.
    cluster.applied = 0;
    for _ in 0..100 {
        cluster.nodes[0].propose_entries(batch()).unwrap();
        cluster.stabilize(true);
    }
    let wire_per_entry = cluster.wire_bytes as f64 / cluster.applied.max(1) as f64;

    let per_sec = committed as f64 / elapsed.as_secs_f64();
    println!("raft_throughput: 3 nodes, one thread, {ENTRY_SIZE}-byte entries, batches of {BATCH}");
    println!(
        "  committed {committed} entries in {:.3} s",
        elapsed.as_secs_f64()
    );
    println!("  {per_sec:.0} committed entries/s (wall clock)");
    if cpu > 0.0 {
        println!(
            "  {:.0} committed entries per CPU-second ({cpu:.2} s of CPU; differs from wall clock on a busy machine)",
            committed as f64 / cpu
        );
    }
    println!(
        "  {:.2} allocations/entry, {:.0} allocated bytes/entry (whole cluster)",
        allocs as f64 / committed as f64,
        bytes as f64 / committed as f64
    );
    println!("  {wire_per_entry:.0} wire bytes/entry (all messages, encoded)");
}
