//! Randomised runs of a 3-member cluster of state machines: puts, leases with keep-alives,
//! crashes and restarts, partitions, time passing. Checked throughout: no lease is revoked
//! before the client's last successful grant/keep-alive plus its TTL (across leader changes,
//! checkpoints and restarts); at the end, every member holds the same key space and leases.
//! `SEEDS=n` runs more seeds; a failure names its seed, and `SEED=s` replays just that one.

// Test harness: env configuration and expect on impossible states are fine here.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

#[path = "server_support/cluster.rs"]
mod cluster;
#[path = "server_support/format.rs"]
mod format;

use std::collections::BTreeMap;

use cluster::{Cluster, config};
use qraft_core::server::Server;
use qraft_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest, PutRequest, RangeRequest,
};
use qraft_proto::mvccpb::event::EventType;
use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CHECKPOINT_INTERVAL_MS: u64 = 2000;
const SNAPSHOT_COUNT: u64 = 25;

struct Sim {
    cluster: Cluster,
    rng: SmallRng,
    /// Lease → the earliest time the client may see it expire (last renewal + TTL).
    guaranteed_until: BTreeMap<i64, u64>,
    ttl_of: BTreeMap<i64, i64>,
    next_lease: i64,
    next_key: u64,
    events_checked: usize,
}

impl Sim {
    fn live(&self) -> Vec<u64> {
        self.cluster
            .members
            .iter()
            .filter(|(_, m)| m.server.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    fn leader(&self) -> Option<u64> {
        self.cluster
            .members
            .iter()
            .find(|(_, m)| m.server.as_ref().is_some_and(|s| s.is_leader()))
            .map(|(id, _)| *id)
    }

    /// Sends a request and returns its response, if one came before the cluster went quiet.
    fn send(&mut self, node: u64, request: In) -> Option<Out> {
        let id = self.cluster.next_request;
        self.cluster.send(node, request, "");
        if std::env::var("TRACE").is_err() {
            self.cluster.out.clear();
        }
        self.cluster
            .responses
            .iter()
            .rev()
            .find(|(r, _)| *r == id)
            .and_then(|(_, response)| response.response.clone())
    }

    fn step(&mut self) -> Result<(), String> {
        let live = self.live();
        let any = live[self.rng.random_range(0..live.len())];
        let now = self.cluster.now_ms;
        match self.rng.random_range(0..100) {
            0..25 => {
                let lease = if self.rng.random_bool(0.5) && !self.ttl_of.is_empty() {
                    let ids: Vec<i64> = self.ttl_of.keys().copied().collect();
                    ids[self.rng.random_range(0..ids.len())]
                } else {
                    0
                };
                self.next_key += 1;
                let key = format!("L{lease}/k{}", self.next_key);
                self.send(
                    any,
                    In::Put(PutRequest {
                        key: key.into_bytes().into(),
                        value: b"v".to_vec().into(),
                        lease,
                        ..Default::default()
                    }),
                );
            }
            25..35 => {
                self.next_lease += 1;
                let (id, ttl) = (self.next_lease, self.rng.random_range(2..8));
                if let Some(Out::LeaseGrant(r)) =
                    self.send(any, In::LeaseGrant(LeaseGrantRequest { id, ttl }))
                {
                    self.ttl_of.insert(r.id, r.ttl);
                    self.guaranteed_until
                        .insert(r.id, now + r.ttl as u64 * 1000);
                }
            }
            35..55 => {
                if let (Some(leader), false) = (self.leader(), self.ttl_of.is_empty()) {
                    let ids: Vec<i64> = self.ttl_of.keys().copied().collect();
                    let id = ids[self.rng.random_range(0..ids.len())];
                    if let Some(Out::LeaseKeepAlive(r)) =
                        self.send(leader, In::LeaseKeepAlive(LeaseKeepAliveRequest { id }))
                        && r.ttl > 0
                    {
                        let until = now + r.ttl as u64 * 1000;
                        let entry = self.guaranteed_until.entry(id).or_default();
                        *entry = (*entry).max(until);
                    }
                }
            }
            55..80 => {
                let ms = self.rng.random_range(100..2000);
                self.cluster.advance(ms);
            }
            80..86 => {
                if live.len() == 3 {
                    self.cluster.members.get_mut(&any).unwrap().server = None;
                }
            }
            86..92 => self.restart_all(),
            92..96 => {
                self.cluster.partition.clear();
                self.cluster.partition.insert(any, 1);
            }
            _ => self.cluster.partition.clear(),
        }
        self.check_no_early_expiry()
    }

    fn restart_all(&mut self) {
        let now = self.cluster.now_ms;
        for (&id, member) in self.cluster.members.iter_mut() {
            if member.server.is_none() {
                let server = Server::new(
                    config(id, CHECKPOINT_INTERVAL_MS, SNAPSHOT_COUNT),
                    member.storage.clone(),
                    member.backend.clone(),
                    now,
                    cluster::test_secrets(id),
                )
                .unwrap();
                member.server = Some(server);
            }
        }
        self.cluster.stabilize();
    }

    /// Keys named `L<lease>/...` are only ever deleted by their lease's revoke.
    fn check_no_early_expiry(&mut self) -> Result<(), String> {
        let log = &self.cluster.events_log;
        for (member, at, event) in &log[self.events_checked..] {
            if event.r#type != EventType::Delete as i32 {
                continue;
            }
            let key = String::from_utf8_lossy(&event.kv.as_ref().unwrap().key).into_owned();
            let lease: i64 = key[1..key.find('/').unwrap()].parse().unwrap();
            let until = self.guaranteed_until.get(&lease).copied().unwrap_or(0);
            if *at < until {
                return Err(format!(
                    "n{member} revoked lease {lease} (key {key}) at {at} ms, before {until} ms"
                ));
            }
            self.ttl_of.remove(&lease);
        }
        self.events_checked = log.len();
        Ok(())
    }

    /// After healing everything, all members hold the same keys and leases.
    fn check_converged(&mut self) -> Result<(), String> {
        self.cluster.partition.clear();
        self.restart_all();
        self.cluster.advance(3000);
        let mut views = Vec::new();
        for id in self.live() {
            let keys = match self.send(
                id,
                In::Range(RangeRequest {
                    key: vec![0].into(),
                    range_end: vec![0].into(),
                    serializable: true,
                    ..Default::default()
                }),
            ) {
                Some(Out::Range(r)) => r.kvs,
                other => return Err(format!("n{id} range failed: {other:?}")),
            };
            let revision = self.cluster.server(id).state().mvcc.current_revision();
            let leases: Vec<i64> = self
                .cluster
                .server(id)
                .state()
                .lessor
                .records()
                .map(|r| r.id)
                .collect();
            views.push((id, revision, keys, leases));
        }
        let (first, rest) = views.split_first().unwrap();
        for view in rest {
            if (view.1, &view.2, &view.3) != (first.1, &first.2, &first.3) {
                self.cluster.out.clear();
                self.cluster.status();
                return Err(format!(
                    "{}\n{}",
                    self.cluster.out,
                    format_args!(
                        "n{} (rev {}, {} keys, leases {:?}) differs from n{} (rev {}, {} keys, leases {:?})",
                        view.0,
                        view.1,
                        view.2.len(),
                        view.3,
                        first.0,
                        first.1,
                        first.2.len(),
                        first.3
                    )
                ));
            }
        }
        // Leases must still be listable through the state machine.
        let leader = self.leader().ok_or("no leader after healing")?;
        self.send(leader, In::LeaseLeases(LeaseLeasesRequest {}));
        Ok(())
    }
}

fn run_seed(seed: u64, steps: usize) -> Result<(), String> {
    let mut sim = Sim {
        cluster: Cluster::new(3, CHECKPOINT_INTERVAL_MS, SNAPSHOT_COUNT),
        rng: SmallRng::seed_from_u64(seed),
        guaranteed_until: BTreeMap::new(),
        ttl_of: BTreeMap::new(),
        next_lease: 0,
        next_key: 0,
        events_checked: 0,
    };
    sim.cluster.server(1).campaign();
    sim.cluster.stabilize();
    for step in 0..steps {
        if std::env::var("TRACE").is_ok() {
            use std::fmt::Write as _;
            let now = sim.cluster.now_ms;
            writeln!(sim.cluster.out, "--- step {step} at {now} ms").unwrap();
            let mut lines = Vec::new();
            for (id, member) in &sim.cluster.members {
                if let Some(server) = &member.server {
                    let lease = server
                        .state()
                        .lessor
                        .get(1)
                        .map(|l| (l.ttl, l.remaining_ttl, l.expiry_ms()));
                    lines.push(format!(
                        "  n{id} leader={} term={} lease1={lease:?}",
                        server.leader(),
                        server.term()
                    ));
                }
            }
            writeln!(
                sim.cluster.out,
                "{} partition={:?}",
                lines.join("\n"),
                sim.cluster.partition
            )
            .unwrap();
        }
        if let Err(e) = sim.step() {
            if std::env::var("TRACE").is_ok() {
                eprintln!("{}", sim.cluster.out);
            }
            return Err(format!("step {step}: {e}"));
        }
    }
    sim.check_converged()
}

#[test]
fn random_runs_keep_leases_and_converge() {
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(seed) => vec![seed.parse().unwrap()],
        Err(_) => {
            let count = std::env::var("SEEDS").map_or(200, |n| n.parse().unwrap());
            (0..count).collect()
        }
    };
    for seed in seeds {
        if let Err(failure) = run_seed(seed, 200) {
            panic!("seed {seed} failed (replay with SEED={seed}): {failure}");
        }
    }
}

/// Linearizable reads through every member at the same moment: each member issues its own
/// ReadIndex round, and all of them reach the leader together. Every read completes within
/// the round (none is dropped as a duplicate of another member's) and sees the write that
/// finished before it.
#[test]
fn concurrent_linearizable_reads_through_every_member_all_complete() {
    let mut cluster = Cluster::new(3, CHECKPOINT_INTERVAL_MS, SNAPSHOT_COUNT);
    cluster.server(1).campaign();
    cluster.stabilize();
    for round in 0..20u64 {
        let value = format!("v{round}");
        let writer = round % 3 + 1;
        cluster.send(
            writer,
            In::Put(PutRequest {
                key: b"k".to_vec().into(),
                value: value.clone().into_bytes().into(),
                ..Default::default()
            }),
            "",
        );
        let reads: Vec<(u64, u64)> = (1..=3)
            .map(|member| {
                let range = In::Range(RangeRequest {
                    key: b"k".to_vec().into(),
                    ..Default::default()
                });
                (member, cluster.submit(member, range, ""))
            })
            .collect();
        cluster.stabilize();
        for (member, id) in reads {
            let answer = cluster
                .responses
                .iter()
                .find(|(r, _)| *r == id)
                .and_then(|(_, response)| response.response.clone());
            let Some(Out::Range(range)) = answer else {
                panic!("round {round}: the read through n{member} got {answer:?}");
            };
            let seen = range.kvs.first().map(|kv| kv.value.to_vec());
            assert_eq!(
                seen,
                Some(value.clone().into_bytes()),
                "round {round}: the read through n{member} missed the finished write"
            );
        }
    }
}
