//! Deterministic raft simulation over many seeds. A failure prints `SEED=<n>`; replay it with
//! `SEED=<n> cargo nextest run -p qraft-tests raft_sim`. `RAFT_SIM_SEEDS=<count>` changes how
//! many seeds run (default keeps CI within its time budget).

use qraft_tests::raft_sim::{SimOptions, run_seed};

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("SEED") {
        return vec![seed.parse().expect("SEED must be a number")];
    }
    let count: u64 = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    (0..count).collect()
}

fn run(nodes: u64) {
    let opts = SimOptions::new(nodes);
    let mut writes = 0;
    let mut reads = 0;
    let mut crashes = 0;
    let mut conf_changes = 0;
    let seeds = seeds();
    for &seed in &seeds {
        match run_seed(seed, opts) {
            Ok(stats) => {
                writes += stats.writes_acked;
                reads += stats.reads_acked;
                crashes += stats.crashes;
                conf_changes += stats.conf_changes_applied;
            }
            Err(e) => panic!("SEED={seed} ({nodes} nodes): {e}"),
        }
    }
    println!(
        "{nodes} nodes: {} seeds ok; {writes} writes and {reads} reads acknowledged, {crashes} crashes, {conf_changes} conf changes applied",
        seeds.len()
    );
}

#[test]
fn raft_sim_3_nodes() {
    run(3);
}

#[test]
fn raft_sim_5_nodes() {
    run(5);
}
