//! LMDB commit latency and put throughput with group commit.
//!
//! Each commit is one `WriteBatch`: one raft entry per put plus the put itself and the applied
//! index, as a driver loop turn writes them. Prints latency percentiles per commit (dominated
//! by the fsync) and puts/s for batches of 1, 100 and 10,000; "0 (hs)" is a commit holding only
//! the hard state and applied index.
//!
//! Run: `cargo bench -p qraft-io --bench lmdb` (QRAFT_BENCH_DIR picks the disk; default: temp).

use std::time::{Duration, Instant};

use prost::bytes::Bytes;
use qraft_io::storage::{LmdbStorage, StorageConfig, StorageError, Table};
use qraft_proto::raftpb::{ConfState, Entry, HardState};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() -> Result<(), StorageError> {
    let base = std::env::var("QRAFT_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .ok();
    let dir = match &base {
        Some(path) => tempfile::tempdir_in(path)?,
        None => tempfile::tempdir()?,
    };
    let storage = LmdbStorage::open(StorageConfig::new(dir.path()))?;
    storage.write(|b| {
        b.bootstrap(ConfState {
            voters: vec![1],
            ..Default::default()
        })
    })?;
    println!(
        "LMDB group commit ({}), 16-byte keys, 100-byte values",
        dir.path().display()
    );
    println!(
        "{:>7} {:>8} {:>10} {:>10} {:>10} {:>12}",
        "batch", "commits", "p50", "p99", "max", "puts/s"
    );

    let value = vec![0x5au8; 100];
    let mut next_index = storage.last_index() + 1;
    for (batch, commits) in [(0usize, 200usize), (1, 300), (100, 100), (10_000, 10)] {
        let mut latencies = Vec::with_capacity(commits);
        let started = Instant::now();
        for _ in 0..commits {
            let t = Instant::now();
            storage.write(|b| {
                let first = next_index;
                let entries: Vec<Entry> = (0..batch as u64)
                    .map(|k| Entry {
                        index: first + k,
                        term: 1,
                        data: Bytes::from(value.clone()),
                        ..Default::default()
                    })
                    .collect();
                b.append(&entries)?;
                let last = first + batch as u64 - 1;
                b.set_hard_state(&HardState {
                    term: 1,
                    vote: 1,
                    commit: last.max(1),
                })?;
                for k in first..first + batch as u64 {
                    let mut key = [0u8; 16];
                    key[8..].copy_from_slice(&k.to_be_bytes());
                    b.put(Table::Key, &key, &value)?;
                }
                b.set_applied_index(last.max(1))
            })?;
            next_index += batch as u64;
            latencies.push(t.elapsed());
        }
        let total = started.elapsed();
        latencies.sort();
        let puts = (batch * commits) as f64 / total.as_secs_f64();
        let label = if batch == 0 {
            "0 (hs)".to_string()
        } else {
            batch.to_string()
        };
        println!(
            "{label:>7} {commits:>8} {:>10.3?} {:>10.3?} {:>10.3?} {puts:>12.0}",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
        );
    }
    let size = storage.size_info()?;
    println!(
        "file {} KiB, in use {} KiB",
        size.file_bytes / 1024,
        size.in_use_bytes / 1024
    );
    Ok(())
}
