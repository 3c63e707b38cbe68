//! The simulated cluster: nodes over an in-memory network, driven step by step by one seed.

use super::invariants::Checker;
use super::kv::{Kv, WriteCmd};
use super::network::{Faults, Network};
use prost::bytes::Bytes;
use qraft_core::raft::{
    ConfChangeProposal, Config, MemStorage, RawNode, ReadState, SnapshotStatus, StateRole, Storage,
};
use qraft_proto::raftpb::{ConfState, EntryType, MessageType};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A member: the raft node (absent while crashed), what it persisted, and its state machine
/// (durable together with its applied index, as in qraft's LMDB backend).
pub struct SimNode {
    pub id: u64,
    pub raw: Option<RawNode<MemStorage>>,
    pub persisted: MemStorage,
    pub cfg: Config,
    pub kv: Kv,
    pub applied_index: u64,
    /// Read states waiting until the state machine reaches their index.
    pub pending_reads: Vec<ReadState>,
}

/// Something the cluster reports back to the clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A write took effect (first application anywhere).
    Applied { client: u64, seq: u64 },
    /// A node applied a membership change.
    ConfChanged,
    /// A read completed on `node` with this value.
    Read {
        ctx: Bytes,
        value: Option<u64>,
        node: u64,
    },
}

pub struct Cluster {
    pub nodes: Vec<SimNode>,
    pub net: Network,
    pub faults: Faults,
    pub rng: SmallRng,
    pub now: u64,
    pub checker: Checker,
    pub events: Vec<Event>,
    /// Compact the log once this many applied entries sit above the first index.
    pub compact_every: u64,
    /// Snapshots the network lost, reported to their sender as failed (as a transport would).
    pub lost_snapshots: Vec<(u64, u64)>,
}

impl Cluster {
    pub fn new(n: u64, seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let pre_vote = rng.random_bool(0.5);
        let check_quorum = rng.random_bool(0.5);
        let voters: Vec<u64> = (1..=n).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let cfg = Config {
                    id,
                    seed: seed.wrapping_mul(31).wrapping_add(id),
                    pre_vote,
                    check_quorum,
                    max_size_per_msg: 4096,
                    max_inflight_msgs: 16,
                    ..Config::default()
                };
                let storage = MemStorage::new_with_conf_state(ConfState {
                    voters: voters.clone(),
                    ..Default::default()
                });
                SimNode {
                    id,
                    raw: Some(RawNode::new(&cfg, storage.clone()).expect("valid config")),
                    persisted: storage,
                    cfg,
                    kv: Kv::default(),
                    applied_index: 1,
                    pending_reads: Vec::new(),
                }
            })
            .collect();
        Self {
            nodes,
            net: Network::default(),
            faults: Faults::NONE,
            rng,
            now: 0,
            checker: Checker::default(),
            events: Vec::new(),
            compact_every: 30,
            lost_snapshots: Vec::new(),
        }
    }

    pub fn node_mut(&mut self, id: u64) -> &mut SimNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// The node that is leader with the highest term, if any live node thinks it leads.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|n| n.raw.as_ref().map(|r| (n.id, r)))
            .filter(|(_, r)| r.raft.role == StateRole::Leader)
            .max_by_key(|(_, r)| r.raft.term)
            .map(|(id, _)| id)
    }

    fn report_snapshot(&mut self, leader: u64, to: u64, status: SnapshotStatus) {
        if let Some(raw) = self.node_mut(leader).raw.as_mut() {
            raw.report_snapshot(to, status);
        }
    }

    pub fn crash(&mut self, id: u64) {
        let node = self.node_mut(id);
        if let Some(raw) = node.raw.take() {
            // Whatever the node held only in memory (unstable entries, queued messages) is lost.
            node.persisted = raw.storage().clone();
            node.pending_reads.clear();
        }
    }

    pub fn restart(&mut self, id: u64) -> Result<(), String> {
        let node = self.node_mut(id);
        if node.raw.is_some() {
            return Ok(());
        }
        let mut cfg = node.cfg.clone();
        cfg.applied = node.applied_index;
        node.raw = Some(RawNode::new(&cfg, node.persisted.clone()).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// One simulation step: deliver due messages, tick everyone, handle every `Ready`, check
    /// the invariants.
    pub fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        let (due, lost) = self.net.due(self.now, &mut self.rng);
        for m in lost {
            if m.r#type() == MessageType::MsgSnap {
                self.lost_snapshots.push((m.from, m.to));
            }
        }
        for (from, to) in std::mem::take(&mut self.lost_snapshots) {
            self.report_snapshot(from, to, SnapshotStatus::Failure);
        }
        for m in due {
            let (from, to, is_snap) = (m.from, m.to, m.r#type() == MessageType::MsgSnap);
            let delivered = match self.node_mut(to).raw.as_mut() {
                Some(raw) => {
                    let _ = raw.step(m);
                    true
                }
                None => false,
            };
            // The transport tells the leader how sending the snapshot went.
            if is_snap {
                let status = if delivered {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.report_snapshot(from, to, status);
            }
        }
        for node in &mut self.nodes {
            if let Some(raw) = node.raw.as_mut() {
                raw.tick();
            }
        }
        self.handle_all_ready()?;
        self.check()
    }

    pub fn handle_all_ready(&mut self) -> Result<(), String> {
        for _ in 0..3 {
            let mut any = false;
            for i in 0..self.nodes.len() {
                any |= self.handle_ready(i)?;
            }
            if !any {
                break;
            }
        }
        Ok(())
    }

    fn handle_ready(&mut self, i: usize) -> Result<bool, String> {
        let node = &mut self.nodes[i];
        let Some(raw) = node.raw.as_mut() else {
            return Ok(false);
        };
        if !raw.has_ready() {
            return Ok(false);
        }
        let mut rd = raw.ready();
        for m in rd.messages.drain(..) {
            let (from, to, is_snap) = (m.from, m.to, m.r#type() == MessageType::MsgSnap);
            if !self.net.send(m, self.now, &self.faults, &mut self.rng) && is_snap {
                self.lost_snapshots.push((from, to));
            }
        }
        let storage = raw.storage_mut();
        if let Some(snap) = &rd.snapshot {
            storage
                .apply_snapshot(snap.clone())
                .map_err(|e| e.to_string())?;
            node.kv = Kv::decode(&snap.data);
            node.applied_index = snap.metadata.as_ref().map_or(0, |m| m.index);
        }
        storage.append(&rd.entries).map_err(|e| e.to_string())?;
        if let Some(hs) = rd.hard_state {
            storage.set_hard_state(hs);
        }
        for m in rd.persisted_messages.drain(..) {
            self.net.send(m, self.now, &self.faults, &mut self.rng);
        }
        let term = raw.raft.term;
        for e in &rd.committed_entries {
            if e.index != node.applied_index + 1 {
                return Err(format!(
                    "node {} applies {} after {}",
                    node.id, e.index, node.applied_index
                ));
            }
            self.checker.record_applied(node.id, e, term)?;
            node.applied_index = e.index;
            if e.r#type != EntryType::EntryNormal as i32 {
                let cc = ConfChangeProposal::from_entry(e)
                    .map_err(|err| err.to_string())?
                    .ok_or("conf change entry without a change")?;
                // A change the leader accepted may still be refused here (e.g. a duplicate
                // delivered twice); raft then keeps the configuration, as every node does.
                if let Ok(cs) = raw.apply_conf_change(&cc) {
                    raw.storage_mut().set_conf_state(cs);
                    self.events.push(Event::ConfChanged);
                }
            } else if let Some(cmd) = WriteCmd::decode(&e.data)
                && node.kv.apply(&cmd)
            {
                self.events.push(Event::Applied {
                    client: cmd.client,
                    seq: cmd.seq,
                });
            }
        }
        node.pending_reads.append(&mut rd.read_states);
        raw.advance();
        let applied = node.applied_index;
        let (ready, waiting): (Vec<ReadState>, Vec<ReadState>) =
            std::mem::take(&mut node.pending_reads)
                .into_iter()
                .partition(|rs| rs.index <= applied);
        node.pending_reads = waiting;
        for rs in ready {
            let key = read_key(&rs.request_ctx);
            self.events.push(Event::Read {
                value: key.and_then(|k| node.kv.values.get(&k).copied()),
                ctx: rs.request_ctx,
                node: node.id,
            });
        }
        let storage = raw.storage_mut();
        let first = storage.first_index().map_err(|e| e.to_string())?;
        if applied >= first + self.compact_every {
            let data = node.kv.encode();
            storage
                .create_snapshot(applied, None, data)
                .map_err(|e| e.to_string())?;
            storage.compact(applied - 5).map_err(|e| e.to_string())?;
        }
        Ok(true)
    }

    /// One line per node, for failure reports.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let Some(raw) = &n.raw else {
                out.push_str(&format!("{}: down\n", n.id));
                continue;
            };
            let st = raw.status();
            let log = &raw.raft.raft_log;
            out.push_str(&format!(
                "{}: {} term={} lead={} commit={} applied={} log={}..={} sm_applied={} progress={:?}\n",
                n.id,
                st.soft_state.role,
                st.hard_state.term,
                st.soft_state.leader_id,
                st.hard_state.commit,
                st.applied,
                log.first_index(),
                log.last_index(),
                n.applied_index,
                st.progress
                    .iter()
                    .map(|(id, p)| format!("{id}:{}/{}/{}{}", p.state, p.matched, p.next, if p.is_paused() { "P" } else { "" }))
                    .collect::<Vec<_>>()
            ));
        }
        out
    }

    fn check(&mut self) -> Result<(), String> {
        let live: Vec<(u64, &RawNode<MemStorage>)> = self
            .nodes
            .iter()
            .filter_map(|n| n.raw.as_ref().map(|r| (n.id, r)))
            .collect();
        self.checker.check_election_safety(&live)?;
        self.checker.check_log_matching(&live)?;
        self.checker.check_leader_completeness(&live)
    }
}

/// Read contexts are `client/seq/key`.
pub fn read_ctx(client: u64, seq: u64, key: u64) -> Bytes {
    Bytes::from(format!("{client}/{seq}/{key}"))
}

pub fn read_key(ctx: &[u8]) -> Option<u64> {
    std::str::from_utf8(ctx)
        .ok()?
        .split('/')
        .nth(2)?
        .parse()
        .ok()
}
