//! kill -9 of a random member at a random moment of a concurrent write load, restart, compare —
//! for many rounds on a 3-member cluster of real `qraft` processes. After every round all
//! members converge to the same revision and content; nothing acknowledged is lost and nothing
//! is applied twice (see `check_writes`).
//!
//! The RNG seed is printed; `QRAFT_CHAOS_SEED` replays a run, `QRAFT_CHAOS_ROUNDS` changes the
//! number of rounds (default 8).

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_faults::{
    WriteLoad, all_endpoints, check_writes, fault_config, wait_converged,
};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_kills_during_writes_lose_nothing_and_apply_nothing_twice() {
    let seed = env_u64("QRAFT_CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let rounds = env_u64("QRAFT_CHAOS_ROUNDS").unwrap_or(8);
    println!("chaos seed {seed} (replay with QRAFT_CHAOS_SEED={seed}), {rounds} rounds");
    let mut rng = SmallRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut c = Cluster::start(3, ClusterOptions::default());
    let config = fault_config(&c, all_endpoints(&c));
    let (mut acked, mut unknown, mut leader_kills) = (0, 0, 0);
    for round in 0..rounds {
        let prefix = format!("r{round:02}");
        let load = WriteLoad::start(config.clone(), 3, &prefix, 2_000);
        std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
        let victim = rng.random_range(0..c.nodes.len());
        let was_leader = qraft_tests::cluster_faults::status(&c, victim)
            .is_some_and(|s| s.header.is_some_and(|h| h.member_id == s.leader));
        c.kill(victim);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..800)));
        c.spawn(victim, "new");
        std::thread::sleep(Duration::from_millis(rng.random_range(100..600)));
        let logs = load.stop();
        let dump = wait_converged(&mut c, Duration::from_secs(30));
        let problems = check_writes(&dump, &prefix, &logs);
        assert!(
            problems.is_empty(),
            "seed {seed}, round {round} (killed m{victim}, leader: {was_leader}): {problems:#?}"
        );
        let round_acked: usize = logs.iter().map(|l| l.acked.len()).sum();
        let round_unknown: usize = logs.iter().map(|l| l.unknown.len()).sum();
        println!(
            "round {round}: killed m{victim} (leader: {was_leader}), {round_acked} acked, \
             {round_unknown} in doubt, converged at revision {}",
            dump.revision
        );
        acked += round_acked;
        unknown += round_unknown;
        leader_kills += usize::from(was_leader);
    }
    assert!(acked > 0, "seed {seed}: no write was ever acknowledged");
    println!(
        "chaos: {rounds} rounds ({leader_kills} leader kills), {acked} writes acknowledged, \
         {unknown} in doubt, {:?}",
        started.elapsed()
    );
}
