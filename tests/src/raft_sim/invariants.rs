//! Raft's safety properties, checked against every node after every simulation step.

use prost::bytes::Bytes;
use qraft_core::raft::{MemStorage, RawNode, StateRole};
use qraft_proto::raftpb::Entry;
use std::collections::BTreeMap;

/// A committed entry as first observed being applied.
struct Committed {
    term: u64,
    data: Bytes,
    /// The observer's current term when it applied the entry: every leader of a later term
    /// must hold the entry (leader completeness).
    observed_in_term: u64,
}

#[derive(Default)]
pub struct Checker {
    leader_of_term: BTreeMap<u64, u64>,
    committed: BTreeMap<u64, Committed>,
}

type Node<'a> = (u64, &'a RawNode<MemStorage>);

fn log_entries(raw: &RawNode<MemStorage>) -> (u64, Vec<Entry>) {
    let log = &raw.raft.raft_log;
    let first = log.first_index();
    let entries = log
        .slice(first, log.last_index() + 1, u64::MAX)
        .unwrap_or_default();
    (first, entries)
}

impl Checker {
    /// Election safety: at most one leader per term, ever.
    pub fn check_election_safety(&mut self, nodes: &[Node<'_>]) -> Result<(), String> {
        for &(id, raw) in nodes {
            if raw.raft.role != StateRole::Leader {
                continue;
            }
            let term = raw.raft.term;
            let leader = *self.leader_of_term.entry(term).or_insert(id);
            if leader != id {
                return Err(format!(
                    "election safety: {leader} and {id} both led term {term}"
                ));
            }
        }
        Ok(())
    }

    /// State machine safety: no two different entries are applied at one index.
    pub fn record_applied(&mut self, node: u64, e: &Entry, node_term: u64) -> Result<(), String> {
        match self.committed.get(&e.index) {
            None => {
                self.committed.insert(
                    e.index,
                    Committed {
                        term: e.term,
                        data: e.data.clone(),
                        observed_in_term: node_term,
                    },
                );
                Ok(())
            }
            Some(c) if c.term == e.term && c.data == e.data => Ok(()),
            Some(c) => Err(format!(
                "state machine safety: node {node} applied {}/{} {:?}, another node applied {}/{} {:?}",
                e.term, e.index, e.data, c.term, e.index, c.data
            )),
        }
    }

    /// Log matching: if two logs hold an entry with the same index and term, the logs are
    /// identical up to it. Scanning upwards, once two logs diverge they never agree again.
    pub fn check_log_matching(&self, nodes: &[Node<'_>]) -> Result<(), String> {
        let logs: Vec<(u64, u64, Vec<Entry>)> = nodes
            .iter()
            .map(|&(id, raw)| {
                let (first, entries) = log_entries(raw);
                (id, first, entries)
            })
            .collect();
        for (i, (a_id, a_first, a)) in logs.iter().enumerate() {
            for (b_id, b_first, b) in &logs[i + 1..] {
                let lo = (*a_first).max(*b_first);
                let hi = (a_first + a.len() as u64).min(b_first + b.len() as u64);
                let mut diverged = false;
                for index in lo..hi {
                    let ea = &a[(index - a_first) as usize];
                    let eb = &b[(index - b_first) as usize];
                    if ea.term == eb.term {
                        if diverged || ea.data != eb.data || ea.r#type != eb.r#type {
                            return Err(format!(
                                "log matching: nodes {a_id} and {b_id} agree on term at index {index} but differ before or at it"
                            ));
                        }
                    } else {
                        diverged = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Leader completeness: a leader holds every entry committed before its term began.
    pub fn check_leader_completeness(&self, nodes: &[Node<'_>]) -> Result<(), String> {
        for &(id, raw) in nodes {
            if raw.raft.role != StateRole::Leader {
                continue;
            }
            let log = &raw.raft.raft_log;
            let first = log.first_index();
            for (&index, c) in self.committed.range(first..) {
                if c.observed_in_term >= raw.raft.term {
                    continue;
                }
                if log.term(index).ok() != Some(c.term) {
                    return Err(format!(
                        "leader completeness: leader {id} of term {} lacks committed entry {}/{index}",
                        raw.raft.term, c.term
                    ));
                }
            }
        }
        Ok(())
    }
}
