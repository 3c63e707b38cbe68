//! Deterministic simulation of a raft cluster (3 or 5 nodes) under seeded faults.
//!
//! One seed determines everything: node configuration (pre-vote, check-quorum), message loss,
//! duplication, delay and reordering, partitions and healing, crashes (losing whatever was not
//! persisted) and restarts, and the clients' operations. After every step the safety
//! invariants are checked (election safety, log matching, leader completeness, state machine
//! safety). After the fault phase the network heals and every node restarts; a leader must then
//! be elected and a write must commit everywhere within a bound (liveness). Finally the clients'
//! history of writes and ReadIndex reads on the replicated registers must be linearizable.
//! With 5 nodes, the leader also changes membership under the faults (nodes 4 and 5 move
//! between voter and learner, singly or swapped through a joint configuration).

pub mod cluster;
pub mod invariants;
pub mod kv;
pub mod linearizability;
pub mod network;

use cluster::{Cluster, Event, read_ctx};
use kv::WriteCmd;
use linearizability::{Op, OpKind, is_linearizable};
use network::Faults;
use qraft_proto::raftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Shape of one simulation run.
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    pub nodes: u64,
    pub fault_steps: u64,
    /// Steps allowed after healing for a leader to appear and a write to commit everywhere.
    pub liveness_bound: u64,
    pub clients: u64,
    pub keys: u64,
    /// Operations per key kept in the history (bounds the linearizability search).
    pub max_ops_per_key: usize,
}

impl SimOptions {
    pub fn new(nodes: u64) -> Self {
        Self {
            nodes,
            fault_steps: 400,
            liveness_bound: 300,
            clients: 3,
            keys: 2,
            max_ops_per_key: 40,
        }
    }
}

/// What a run did, for reporting.
#[derive(Debug, Default, Clone)]
pub struct SimStats {
    pub steps: u64,
    pub writes_acked: u64,
    pub reads_acked: u64,
    pub max_term: u64,
    pub crashes: u64,
    /// Membership changes applied, summed over nodes.
    pub conf_changes_applied: u64,
}

enum Pending {
    Write { seq: u64, hist: usize, key: u64 },
    Read { seq: u64, hist: usize, key: u64 },
}

struct Client {
    id: u64,
    seq: u64,
    pending: Option<(Pending, u64)>,
}

/// Runs one seed. `Err` describes the first violated property.
pub fn run_seed(seed: u64, opts: SimOptions) -> Result<SimStats, String> {
    let mut c = Cluster::new(opts.nodes, seed);
    let mut stats = SimStats::default();
    let mut history: BTreeMap<u64, Vec<Op>> = (0..opts.keys).map(|k| (k, Vec::new())).collect();
    let mut clients: Vec<Client> = (1..=opts.clients)
        .map(|id| Client {
            id,
            seq: 0,
            pending: None,
        })
        .collect();
    let mut next_value = 1u64;
    let faults = Faults {
        drop: c.rng.random_range(0.0..0.1),
        duplicate: c.rng.random_range(0.0..0.05),
        max_delay: c.rng.random_range(0..4),
    };
    c.faults = faults;

    for _ in 0..opts.fault_steps {
        inject_faults(&mut c, &mut stats)?;
        drive_clients(&mut c, &mut clients, &mut history, &mut next_value, &opts);
        c.step()?;
        collect_events(&mut c, &mut clients, &mut history, &mut stats);
    }

    // Heal: reconnect, restart, stop losing messages. A leader must emerge and commit.
    c.net.groups = None;
    c.faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        max_delay: 1,
    };
    for id in 1..=opts.nodes {
        c.restart(id)?;
    }
    let probe = WriteCmd {
        client: 0,
        seq: 1,
        key: u64::MAX,
        value: 0,
    };
    let mut proposed = false;
    let mut live = false;
    let mut last_proposal = 0;
    for _ in 0..opts.liveness_bound {
        drive_clients(&mut c, &mut clients, &mut history, &mut next_value, &opts);
        c.step()?;
        collect_events(&mut c, &mut clients, &mut history, &mut stats);
        // Like a client, retry a proposal that may have been lost to a leader change (the state
        // machine applies a (client, seq) once).
        if c.now - last_proposal > 20
            && let Some(leader) = c.leader()
        {
            let raw = c.node_mut(leader).raw.as_mut().ok_or("leader is down")?;
            if raw.propose(probe.encode()).is_ok() {
                proposed = true;
                last_proposal = c.now;
            }
        }
        if c.nodes.iter().all(|n| n.kv.last_seq.get(&0) == Some(&1)) {
            live = true;
            break;
        }
    }
    if !live {
        return Err(format!(
            "liveness: no write committed on every node within {} steps after healing (leader: {:?}, probe proposed: {proposed})\n{}",
            opts.liveness_bound,
            c.leader(),
            c.describe()
        ));
    }
    for (key, ops) in &history {
        let ops: Vec<Op> = ops
            .iter()
            .filter(|op| !(matches!(op.kind, OpKind::Read(_)) && op.ret.is_none()))
            .cloned()
            .collect();
        if !is_linearizable(&ops) {
            return Err(format!(
                "linearizability: history of key {key} is not linearizable: {ops:?}"
            ));
        }
    }
    stats.steps = c.now;
    stats.max_term = c
        .nodes
        .iter()
        .filter_map(|n| n.raw.as_ref().map(|r| r.raft.term))
        .max()
        .unwrap_or(0);
    Ok(stats)
}

fn inject_faults(c: &mut Cluster, stats: &mut SimStats) -> Result<(), String> {
    let n = c.nodes.len() as u64;
    if c.net.groups.is_none() && c.rng.random_bool(0.01) {
        let mut a = BTreeSet::new();
        let mut b = BTreeSet::new();
        for id in 1..=n {
            if c.rng.random_bool(0.5) {
                a.insert(id);
            } else {
                b.insert(id);
            }
        }
        c.net.groups = Some(vec![a, b]);
    } else if c.net.groups.is_some() && c.rng.random_bool(0.03) {
        c.net.groups = None;
    }
    if n >= 5 && c.rng.random_bool(0.01) {
        propose_membership_change(c);
    }
    if c.rng.random_bool(0.01) {
        let id = c.rng.random_range(1..=n);
        c.crash(id);
        stats.crashes += 1;
    }
    if c.rng.random_bool(0.05) {
        let id = c.rng.random_range(1..=n);
        c.restart(id)?;
    }
    Ok(())
}

/// Nodes 1-3 always vote; nodes 4 and 5 move between voter and learner, one at a time or
/// swapped together through a joint configuration. Refusals (a change pending, a learner not
/// caught up, no leader) are expected and ignored.
fn propose_membership_change(c: &mut Cluster) {
    let Some(leader) = c.leader() else {
        return;
    };
    let single = |t: ConfChangeType, id: u64| ConfChangeSingle {
        r#type: t as i32,
        node_id: id,
    };
    let (voter, learner) = (
        ConfChangeType::ConfChangeAddNode,
        ConfChangeType::ConfChangeAddLearnerNode,
    );
    let changes = match c.rng.random_range(0..4) {
        0 => vec![single(learner, 4), single(voter, 5)],
        1 => vec![single(voter, 4), single(learner, 5)],
        2 => vec![single(voter, c.rng.random_range(4..=5))],
        _ => vec![single(learner, c.rng.random_range(4..=5))],
    };
    let cc = ConfChangeV2 {
        changes,
        ..Default::default()
    };
    if let Some(raw) = c.node_mut(leader).raw.as_mut() {
        let _ = raw.propose_conf_change(cc);
    }
}

/// Clients with nothing outstanding start a write or a ReadIndex read at a node they believe
/// leads (or any live node); stuck operations are abandoned after a timeout.
fn drive_clients(
    c: &mut Cluster,
    clients: &mut [Client],
    history: &mut BTreeMap<u64, Vec<Op>>,
    next_value: &mut u64,
    opts: &SimOptions,
) {
    for client in clients.iter_mut() {
        if let Some((_, started)) = &client.pending {
            if c.now - started > 50 {
                client.pending = None;
            }
            continue;
        }
        if !c.rng.random_bool(0.3) {
            continue;
        }
        let key = c.rng.random_range(0..opts.keys);
        let Some(ops) = history.get_mut(&key) else {
            continue;
        };
        if ops.len() >= opts.max_ops_per_key {
            continue;
        }
        let target = match c.leader() {
            Some(l) if c.rng.random_bool(0.8) => l,
            _ => c.rng.random_range(1..=c.nodes.len() as u64),
        };
        let write = c.rng.random_bool(0.5);
        let now = c.now;
        let Some(raw) = c.node_mut(target).raw.as_mut() else {
            continue;
        };
        client.seq += 1;
        let seq = client.seq;
        if write {
            let value = *next_value;
            *next_value += 1;
            let cmd = WriteCmd {
                client: client.id,
                seq,
                key,
                value,
            };
            if raw.propose(cmd.encode()).is_ok() {
                ops.push(Op {
                    kind: OpKind::Write(value),
                    call: now,
                    ret: None,
                });
                let hist = ops.len() - 1;
                client.pending = Some((Pending::Write { seq, hist, key }, now));
            }
        } else if raw.read_index(read_ctx(client.id, seq, key)).is_ok() {
            ops.push(Op {
                kind: OpKind::Read(None),
                call: now,
                ret: None,
            });
            let hist = ops.len() - 1;
            client.pending = Some((Pending::Read { seq, hist, key }, now));
        }
    }
}

fn collect_events(
    c: &mut Cluster,
    clients: &mut [Client],
    history: &mut BTreeMap<u64, Vec<Op>>,
    stats: &mut SimStats,
) {
    for ev in std::mem::take(&mut c.events) {
        match ev {
            Event::ConfChanged => stats.conf_changes_applied += 1,
            Event::Applied { client, seq } => {
                // A write's effect is known once applied, even if its client gave up on it.
                let Some(cl) = clients.iter_mut().find(|cl| cl.id == client) else {
                    continue;
                };
                if let Some((Pending::Write { seq: s, hist, key }, _)) = &cl.pending
                    && *s == seq
                {
                    if let Some(op) = history.get_mut(key).and_then(|ops| ops.get_mut(*hist)) {
                        op.ret = Some(c.now);
                    }
                    stats.writes_acked += 1;
                    cl.pending = None;
                }
            }
            Event::Read { ctx, value, .. } => {
                let parts: Vec<u64> = std::str::from_utf8(&ctx)
                    .unwrap_or("")
                    .split('/')
                    .filter_map(|p| p.parse().ok())
                    .collect();
                let [client, seq, _] = parts[..] else {
                    continue;
                };
                let Some(cl) = clients.iter_mut().find(|cl| cl.id == client) else {
                    continue;
                };
                if let Some((Pending::Read { seq: s, hist, key }, _)) = &cl.pending
                    && *s == seq
                {
                    if let Some(op) = history.get_mut(key).and_then(|ops| ops.get_mut(*hist)) {
                        op.kind = OpKind::Read(value);
                        op.ret = Some(c.now);
                    }
                    stats.reads_acked += 1;
                    cl.pending = None;
                }
            }
        }
    }
}
