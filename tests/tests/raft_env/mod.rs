//! A scripted cluster of raft nodes for transcript tests: in-memory storage, a message queue
//! that the script delivers explicitly, partitions and crashes.

mod inspect;

use prost::bytes::Bytes;
use qraft_core::raft::describe::{
    describe_conf_change, describe_conf_state, describe_entry, describe_message, describe_snapshot,
};
use qraft_core::raft::{
    ConfChangeProposal, Config, MemStorage, RawNode, ReadOnlyOption, SnapshotStatus, StateRole,
    Storage,
};
use qraft_proto::raftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState, Message,
    MessageType,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

pub struct Node {
    pub raw: Option<RawNode<MemStorage>>,
    /// The storage as persisted; survives a crash.
    pub storage: MemStorage,
    pub cfg: Config,
    /// The state machine: applied normal entries' data. Durable together with `applied_index`.
    pub applied: Vec<String>,
    pub applied_index: u64,
}

#[derive(Default)]
pub struct Env {
    pub nodes: BTreeMap<u64, Node>,
    pub queue: Vec<Message>,
    pub groups: Option<Vec<BTreeSet<u64>>>,
    pub out: String,
}

pub(crate) fn parse_id(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("bad node id {s:?}"))
}

fn parse_list(s: &str) -> Result<Vec<u64>, String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(parse_id)
        .collect()
}

impl Env {
    pub(crate) fn line(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    pub fn run(&mut self, cmd: &str, args: &[&str]) -> Result<(), String> {
        match cmd {
            "add-nodes" => self.add_nodes(args),
            "campaign" => {
                let id = parse_id(args.first().ok_or("campaign ID")?)?;
                self.raw(id)?.campaign();
                Ok(())
            }
            "propose" => {
                let id = parse_id(args.first().ok_or("propose ID DATA")?)?;
                let data = args.get(1).copied().unwrap_or("").to_string();
                if let Err(e) = self.raw(id)?.propose(Bytes::from(data)) {
                    self.line(format!("error: {e}"));
                }
                Ok(())
            }
            "propose-conf-change" => self.propose_conf_change(args),
            "tick-heartbeat" | "tick-election" | "tick" => self.tick(cmd, args),
            "stabilize" => self.stabilize(args),
            "process-ready" => {
                for a in args {
                    let id = parse_id(a)?;
                    self.process_ready(id)?;
                }
                Ok(())
            }
            "deliver-msgs" => {
                let only: Option<BTreeSet<u64>> = if args.is_empty() {
                    None
                } else {
                    Some(args.iter().map(|a| parse_id(a)).collect::<Result<_, _>>()?)
                };
                self.deliver(only.as_ref());
                Ok(())
            }
            "drop-msgs" => {
                let n = self.queue.len();
                self.queue.clear();
                self.line(format!("dropped {n} messages"));
                Ok(())
            }
            "partition" => {
                let mut groups = vec![BTreeSet::new()];
                for a in args {
                    if *a == "/" {
                        groups.push(BTreeSet::new());
                    } else if let Some(g) = groups.last_mut() {
                        g.insert(parse_id(a)?);
                    }
                }
                self.groups = Some(groups);
                Ok(())
            }
            "heal" => {
                self.groups = None;
                Ok(())
            }
            "status" => self.status(args),
            "raft-state" => {
                let ids: Vec<u64> = self.nodes.keys().copied().collect();
                for id in ids {
                    let s = match &self.nodes[&id].raw {
                        None => format!("{id}: crashed"),
                        Some(raw) => {
                            let st = raw.status();
                            format!(
                                "{id}: {} Term:{} Lead:{} Commit:{}",
                                st.soft_state.role,
                                st.hard_state.term,
                                st.soft_state.leader_id,
                                st.hard_state.commit
                            )
                        }
                    };
                    self.line(s);
                }
                Ok(())
            }
            "log" => self.log(args),
            "compact" => self.compact(args),
            "transfer-leader" => {
                let from = parse_id(args.first().ok_or("transfer-leader FROM TO")?)?;
                let to = parse_id(args.get(1).ok_or("transfer-leader FROM TO")?)?;
                if let Err(e) = self.raw(from)?.transfer_leader(to) {
                    self.line(format!("error: {e}"));
                }
                Ok(())
            }
            "read-index" => {
                let id = parse_id(args.first().ok_or("read-index ID CTX")?)?;
                let ctx = args.get(1).copied().unwrap_or("").to_string();
                if let Err(e) = self.raw(id)?.read_index(Bytes::from(ctx)) {
                    self.line(format!("error: {e}"));
                }
                Ok(())
            }
            "crash" => {
                let id = parse_id(args.first().ok_or("crash ID")?)?;
                let node = self.nodes.get_mut(&id).ok_or("no such node")?;
                node.raw = None;
                self.queue.retain(|m| m.to != id);
                Ok(())
            }
            "restart" => {
                let id = parse_id(args.first().ok_or("restart ID")?)?;
                let node = self.nodes.get_mut(&id).ok_or("no such node")?;
                let mut cfg = node.cfg.clone();
                cfg.applied = node.applied_index;
                let raw = RawNode::new(&cfg, node.storage.clone()).map_err(|e| e.to_string())?;
                node.raw = Some(raw);
                Ok(())
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }

    pub(crate) fn raw(&mut self, id: u64) -> Result<&mut RawNode<MemStorage>, String> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))?
            .raw
            .as_mut()
            .ok_or_else(|| format!("node {id} is crashed"))
    }

    fn add_nodes(&mut self, args: &[&str]) -> Result<(), String> {
        let n: u64 = args
            .first()
            .ok_or("add-nodes N")?
            .parse()
            .map_err(|_| "bad count")?;
        let first_new = self.nodes.keys().max().copied().unwrap_or(0) + 1;
        let new_ids: Vec<u64> = (first_new..first_new + n).collect();
        let mut voters: Option<Vec<u64>> = None;
        let mut learners = Vec::new();
        let mut cfg = Config::default();
        for a in &args[1..] {
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            match k {
                "voters" => voters = Some(parse_list(v)?),
                "learners" => learners = parse_list(v)?,
                "pre-vote" => cfg.pre_vote = true,
                "check-quorum" => cfg.check_quorum = true,
                "lease" => cfg.read_only_option = ReadOnlyOption::LeaseBased,
                "max-inflight" => cfg.max_inflight_msgs = v.parse().map_err(|_| "bad number")?,
                "max-size" => cfg.max_size_per_msg = v.parse().map_err(|_| "bad number")?,
                "max-uncommitted" => {
                    cfg.max_uncommitted_entries_size = v.parse().map_err(|_| "bad number")?
                }
                "no-forward" => cfg.disable_proposal_forwarding = true,
                other => return Err(format!("unknown add-nodes option {other:?}")),
            }
        }
        let bootstrap = self.nodes.is_empty() || voters.is_some();
        let voters = voters.unwrap_or_else(|| new_ids.clone());
        for id in new_ids {
            let storage = if bootstrap {
                MemStorage::new_with_conf_state(ConfState {
                    voters: voters.clone(),
                    learners: learners.clone(),
                    ..Default::default()
                })
            } else {
                MemStorage::new()
            };
            let mut node_cfg = cfg.clone();
            node_cfg.id = id;
            node_cfg.seed = id;
            let raw = RawNode::new(&node_cfg, storage.clone()).map_err(|e| e.to_string())?;
            let applied_index = storage.first_index().unwrap_or(1) - 1;
            self.line(format!(
                "INFO {id} started: term {} commit {} {}",
                raw.status().hard_state.term,
                raw.status().hard_state.commit,
                describe_conf_state(&raw.status().conf_state)
            ));
            self.nodes.insert(
                id,
                Node {
                    raw: Some(raw),
                    storage,
                    cfg: node_cfg,
                    applied: Vec::new(),
                    applied_index,
                },
            );
        }
        Ok(())
    }

    fn propose_conf_change(&mut self, args: &[&str]) -> Result<(), String> {
        let id = parse_id(args.first().ok_or("propose-conf-change ID CHANGES")?)?;
        let mut changes = Vec::new();
        let mut transition = ConfChangeTransition::Auto;
        let mut v1 = false;
        for a in &args[1..] {
            match *a {
                "explicit" => {
                    transition = ConfChangeTransition::JointExplicit;
                    continue;
                }
                "implicit" => {
                    transition = ConfChangeTransition::JointImplicit;
                    continue;
                }
                "legacy" => {
                    v1 = true;
                    continue;
                }
                "leave" => continue,
                _ => {}
            }
            let (kind, rest) = a.split_at(1);
            let t = match kind {
                "v" => ConfChangeType::ConfChangeAddNode,
                "l" => ConfChangeType::ConfChangeAddLearnerNode,
                "r" => ConfChangeType::ConfChangeRemoveNode,
                _ => return Err(format!("bad change {a:?}")),
            };
            changes.push(ConfChangeSingle {
                r#type: t as i32,
                node_id: parse_id(rest)?,
            });
        }
        let cc = if v1 && changes.len() == 1 {
            ConfChangeProposal::V1(qraft_proto::raftpb::ConfChange {
                r#type: changes[0].r#type,
                node_id: changes[0].node_id,
                ..Default::default()
            })
        } else {
            ConfChangeProposal::V2(ConfChangeV2 {
                transition: transition as i32,
                changes,
                ..Default::default()
            })
        };
        if let Err(e) = self.raw(id)?.propose_conf_change(cc) {
            self.line(format!("error: {e}"));
        }
        Ok(())
    }

    /// `tick-heartbeat ID`: one heartbeat interval. `tick-election ID...`: tick the nodes
    /// together until one of them starts a campaign (a leader: one election timeout).
    /// `tick ID N`: N ticks.
    fn tick(&mut self, cmd: &str, args: &[&str]) -> Result<(), String> {
        let ids: Vec<u64> = args.iter().map(|a| parse_id(a)).collect::<Result<_, _>>()?;
        let first = *ids.first().ok_or("tick-* ID")?;
        match cmd {
            "tick-heartbeat" => {
                let raw = self.raw(first)?;
                for _ in 0..raw.raft.cfg.heartbeat_tick {
                    raw.tick();
                }
            }
            "tick-election" => {
                for _ in 0..1000 {
                    let mut campaigned = false;
                    for &id in &ids {
                        let raw = self.raw(id)?;
                        let was_leader = raw.raft.role == StateRole::Leader;
                        raw.tick();
                        campaigned |= matches!(
                            raw.raft.role,
                            StateRole::PreCandidate | StateRole::Candidate
                        ) || (was_leader && raw.raft.election_elapsed == 0);
                    }
                    if campaigned {
                        break;
                    }
                }
            }
            _ => {
                let raw = self.raw(first)?;
                let n: usize = args
                    .get(1)
                    .ok_or("tick ID N")?
                    .parse()
                    .map_err(|_| "bad count")?;
                for _ in 0..n {
                    raw.tick();
                }
            }
        }
        Ok(())
    }

    fn connected(&self, a: u64, b: u64) -> bool {
        match &self.groups {
            None => true,
            Some(groups) => groups.iter().any(|g| g.contains(&a) && g.contains(&b)),
        }
    }

    /// Handles one node's `Ready` as an embedder would. Returns whether there was one.
    pub fn process_ready(&mut self, id: u64) -> Result<bool, String> {
        let node = self.nodes.get_mut(&id).ok_or("no such node")?;
        let Some(raw) = node.raw.as_mut() else {
            return Ok(false);
        };
        if !raw.has_ready() {
            return Ok(false);
        }
        let rd = raw.ready();
        let mut out = format!("> {id} handling Ready\n");
        if let Some(ss) = rd.soft_state {
            let _ = writeln!(out, "  Lead:{} State:{}", ss.leader_id, ss.role);
        }
        if let Some(hs) = rd.hard_state {
            let _ = writeln!(
                out,
                "  HardState Term:{} Vote:{} Commit:{}",
                hs.term, hs.vote, hs.commit
            );
        }
        if let Some(snap) = &rd.snapshot {
            let _ = writeln!(out, "  Snapshot {}", describe_snapshot(snap));
            let storage = raw.storage_mut();
            storage
                .apply_snapshot(snap.clone())
                .map_err(|e| e.to_string())?;
            node.storage
                .apply_snapshot(snap.clone())
                .map_err(|e| e.to_string())?;
            node.applied = decode_state(&snap.data);
            node.applied_index = snap.metadata.as_ref().map_or(0, |m| m.index);
        }
        if !rd.entries.is_empty() {
            let _ = writeln!(out, "  Entries:");
            for e in &rd.entries {
                let _ = writeln!(out, "    {}", describe_entry(e));
            }
        }
        raw.storage_mut()
            .append(&rd.entries)
            .map_err(|e| e.to_string())?;
        node.storage
            .append(&rd.entries)
            .map_err(|e| e.to_string())?;
        if let Some(hs) = rd.hard_state {
            raw.storage_mut().set_hard_state(hs);
            node.storage.set_hard_state(hs);
        }
        if !rd.messages.is_empty() {
            let _ = writeln!(out, "  Messages:");
            for m in &rd.messages {
                let _ = writeln!(out, "    {}", describe_message(m));
            }
        }
        if !rd.persisted_messages.is_empty() {
            let _ = writeln!(out, "  Messages after persistence:");
            for m in &rd.persisted_messages {
                let _ = writeln!(out, "    {}", describe_message(m));
            }
        }
        if !rd.committed_entries.is_empty() {
            let _ = writeln!(out, "  CommittedEntries:");
        }
        for e in &rd.committed_entries {
            let _ = writeln!(out, "    {}", describe_entry(e));
            node.applied_index = e.index;
            match ConfChangeProposal::from_entry(e) {
                Ok(Some(cc)) => match raw.apply_conf_change(&cc) {
                    Ok(cs) => {
                        let _ = writeln!(
                            out,
                            "    INFO {id} applied {}: {}",
                            describe_conf_change(&cc),
                            describe_conf_state(&cs)
                        );
                        raw.storage_mut().set_conf_state(cs.clone());
                        node.storage.set_conf_state(cs);
                    }
                    Err(err) => {
                        let _ = writeln!(out, "    INFO {id} conf change not applied: {err}");
                    }
                },
                Ok(None) if !e.data.is_empty() => node
                    .applied
                    .push(String::from_utf8_lossy(&e.data).into_owned()),
                _ => {}
            }
        }
        for rs in &rd.read_states {
            let _ = writeln!(
                out,
                "  ReadState Index:{} Ctx:{:?}",
                rs.index,
                String::from_utf8_lossy(&rs.request_ctx)
            );
        }
        self.queue.extend(rd.messages);
        self.queue.extend(rd.persisted_messages);
        raw.advance();
        self.out.push_str(&out);
        Ok(true)
    }

    /// Delivers queued messages (to `only` if given), dropping those across a partition.
    pub fn deliver(&mut self, only: Option<&BTreeSet<u64>>) -> bool {
        let (now, keep): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| only.is_none_or(|o| o.contains(&m.to)));
        self.queue = keep;
        let delivered = !now.is_empty();
        for m in now {
            if !self.connected(m.from, m.to) {
                self.line(format!("dropped: {}", describe_message(&m)));
                continue;
            }
            let (to, from, is_snap) = (m.to, m.from, m.r#type() == MessageType::MsgSnap);
            let Some(raw) = self.nodes.get_mut(&to).and_then(|n| n.raw.as_mut()) else {
                continue;
            };
            self.out.push_str(&format!("{}\n", describe_message(&m)));
            if let Err(e) = raw.step(m) {
                self.line(format!("error: {e}"));
            }
            if is_snap && let Some(leader) = self.nodes.get_mut(&from).and_then(|n| n.raw.as_mut())
            {
                leader.report_snapshot(to, SnapshotStatus::Finish);
            }
        }
        delivered
    }

    fn stabilize(&mut self, args: &[&str]) -> Result<(), String> {
        let ids: Vec<u64> = if args.is_empty() {
            self.nodes.keys().copied().collect()
        } else {
            args.iter().map(|a| parse_id(a)).collect::<Result<_, _>>()?
        };
        let only: BTreeSet<u64> = ids.iter().copied().collect();
        for _ in 0..1000 {
            let mut progress = false;
            for &id in &ids {
                progress |= self.process_ready(id)?;
            }
            progress |= self.deliver(Some(&only));
            if !progress {
                return Ok(());
            }
        }
        Err("stabilize did not converge".into())
    }

    fn compact(&mut self, args: &[&str]) -> Result<(), String> {
        let id = parse_id(args.first().ok_or("compact ID INDEX")?)?;
        let index: u64 = args
            .get(1)
            .ok_or("compact ID INDEX")?
            .parse()
            .map_err(|_| "bad index")?;
        let node = self.nodes.get_mut(&id).ok_or("no such node")?;
        if index > node.applied_index {
            return Err(format!(
                "index {index} not applied yet ({})",
                node.applied_index
            ));
        }
        // The state machine's content at `index` is what it holds now only if index == applied;
        // the scripts compact at the applied index.
        let data = encode_state(&node.applied);
        let cs = node.raw.as_ref().map(|r| r.status().conf_state);
        for storage in [
            Some(&mut node.storage),
            node.raw.as_mut().map(|r| r.storage_mut()),
        ]
        .into_iter()
        .flatten()
        {
            storage
                .create_snapshot(index, cs.clone(), data.clone())
                .map_err(|e| e.to_string())?;
            storage.compact(index).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn encode_state(applied: &[String]) -> Bytes {
    Bytes::from(applied.join(","))
}

fn decode_state(data: &[u8]) -> Vec<String> {
    if data.is_empty() {
        return Vec::new();
    }
    String::from_utf8_lossy(data)
        .split(',')
        .map(str::to_string)
        .collect()
}
