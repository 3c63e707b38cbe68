//! Membership changes: computing the next configuration, and decoding conf-change entries.
//!
//! qraft uses joint consensus (Raft thesis §4.3) for any change touching more than one voter, and
//! allows a plain one-step change only when at most one voter is added or removed (which is safe
//! because any majority of the old and the new set then overlap). A joint configuration is left by
//! an empty `ConfChangeV2`, proposed automatically by the leader when `auto_leave` is set.

use super::tracker::{Progress, ProgressMap, TrackerConfig};
use prost::Message as _;
use qraft_proto::raftpb::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
    Entry, EntryType,
};

/// Why a configuration change cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfChangeError {
    #[error("config is already joint")]
    AlreadyJoint,
    #[error("config is not joint")]
    NotJoint,
    #[error("removed all voters")]
    RemovedAllVoters,
    #[error("more than one voter changed without entering joint config")]
    TooManyVoterChanges,
    #[error("a configuration change is already pending")]
    AlreadyPending,
    #[error("can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("unknown conf change type {0}")]
    UnknownType(i32),
    #[error("malformed conf change entry: {0}")]
    Malformed(String),
}

/// A membership change as proposed: etcd's single-change V1 or the multi-change V2.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfChangeProposal {
    V1(ConfChange),
    V2(ConfChangeV2),
}

impl From<ConfChange> for ConfChangeProposal {
    fn from(cc: ConfChange) -> Self {
        Self::V1(cc)
    }
}

impl From<ConfChangeV2> for ConfChangeProposal {
    fn from(cc: ConfChangeV2) -> Self {
        Self::V2(cc)
    }
}

impl ConfChangeProposal {
    pub fn as_v2(&self) -> ConfChangeV2 {
        match self {
            Self::V1(cc) => ConfChangeV2 {
                transition: ConfChangeTransition::Auto as i32,
                changes: vec![ConfChangeSingle {
                    r#type: cc.r#type,
                    node_id: cc.node_id,
                }],
                context: cc.context.clone(),
            },
            Self::V2(cc) => cc.clone(),
        }
    }

    pub fn to_entry(&self) -> Entry {
        let (entry_type, data) = match self {
            Self::V1(cc) => (EntryType::EntryConfChange, cc.encode_to_vec()),
            Self::V2(cc) => (EntryType::EntryConfChangeV2, cc.encode_to_vec()),
        };
        Entry {
            r#type: entry_type as i32,
            data: data.into(),
            ..Default::default()
        }
    }

    /// Decodes a committed conf-change entry (`None` for a normal entry).
    pub fn from_entry(entry: &Entry) -> Result<Option<Self>, ConfChangeError> {
        let malformed = |e: prost::DecodeError| ConfChangeError::Malformed(e.to_string());
        match EntryType::try_from(entry.r#type) {
            Ok(EntryType::EntryConfChange) => Ok(Some(Self::V1(
                ConfChange::decode(entry.data.clone()).map_err(malformed)?,
            ))),
            Ok(EntryType::EntryConfChangeV2) => Ok(Some(Self::V2(
                ConfChangeV2::decode(entry.data.clone()).map_err(malformed)?,
            ))),
            Ok(EntryType::EntryNormal) => Ok(None),
            Err(_) => Err(ConfChangeError::UnknownType(entry.r#type)),
        }
    }
}

pub fn is_conf_change(entry: &Entry) -> bool {
    entry.r#type != EntryType::EntryNormal as i32
}

/// An empty V2 change, which leaves a joint configuration.
pub fn leaves_joint(cc: &ConfChangeV2) -> bool {
    cc.changes.is_empty()
}

/// Whether the change enters a joint configuration, and if so whether it auto-leaves.
pub fn enters_joint(cc: &ConfChangeV2) -> Option<bool> {
    let transition =
        ConfChangeTransition::try_from(cc.transition).unwrap_or(ConfChangeTransition::Auto);
    let auto = transition == ConfChangeTransition::Auto;
    if cc.changes.len() > 1 || !auto {
        Some(transition != ConfChangeTransition::JointExplicit)
    } else {
        None
    }
}

/// Computes configurations from changes without touching the live tracker.
pub struct Changer<'a> {
    pub config: &'a TrackerConfig,
    pub progress: &'a ProgressMap,
    pub last_index: u64,
    pub max_inflight: usize,
    pub max_inflight_bytes: u64,
}

type Next = (TrackerConfig, ProgressMap);

impl Changer<'_> {
    /// Applies a V2 change the way its transition asks (simple, enter joint, or leave joint).
    pub fn apply(&self, cc: &ConfChangeV2) -> Result<Next, ConfChangeError> {
        if leaves_joint(cc) {
            self.leave_joint()
        } else if let Some(auto_leave) = enters_joint(cc) {
            self.enter_joint(auto_leave, &cc.changes)
        } else {
            self.simple(&cc.changes)
        }
    }

    pub fn enter_joint(
        &self,
        auto_leave: bool,
        changes: &[ConfChangeSingle],
    ) -> Result<Next, ConfChangeError> {
        if self.config.voters.is_joint() {
            return Err(ConfChangeError::AlreadyJoint);
        }
        let (mut cfg, mut prs) = (self.config.clone(), self.progress.clone());
        if cfg.voters.incoming.0.is_empty() {
            return Err(ConfChangeError::RemovedAllVoters);
        }
        cfg.voters.outgoing = cfg.voters.incoming.clone();
        self.apply_changes(&mut cfg, &mut prs, changes)?;
        cfg.auto_leave = auto_leave;
        Ok((cfg, prs))
    }

    pub fn leave_joint(&self) -> Result<Next, ConfChangeError> {
        if !self.config.voters.is_joint() {
            return Err(ConfChangeError::NotJoint);
        }
        let (mut cfg, mut prs) = (self.config.clone(), self.progress.clone());
        for id in std::mem::take(&mut cfg.learners_next) {
            cfg.learners.insert(id);
            if let Some(p) = prs.get_mut(&id) {
                p.is_learner = true;
            }
        }
        for id in std::mem::take(&mut cfg.voters.outgoing.0) {
            if !cfg.voters.incoming.0.contains(&id) && !cfg.learners.contains(&id) {
                prs.remove(&id);
            }
        }
        cfg.auto_leave = false;
        Ok((cfg, prs))
    }

    pub fn simple(&self, changes: &[ConfChangeSingle]) -> Result<Next, ConfChangeError> {
        if self.config.voters.is_joint() {
            return Err(ConfChangeError::AlreadyJoint);
        }
        let (mut cfg, mut prs) = (self.config.clone(), self.progress.clone());
        self.apply_changes(&mut cfg, &mut prs, changes)?;
        let before = &self.config.voters.incoming.0;
        let after = &cfg.voters.incoming.0;
        if before.symmetric_difference(after).count() > 1 {
            return Err(ConfChangeError::TooManyVoterChanges);
        }
        Ok((cfg, prs))
    }

    fn apply_changes(
        &self,
        cfg: &mut TrackerConfig,
        prs: &mut ProgressMap,
        changes: &[ConfChangeSingle],
    ) -> Result<(), ConfChangeError> {
        for cc in changes {
            if cc.node_id == 0 {
                continue;
            }
            match ConfChangeType::try_from(cc.r#type) {
                Ok(ConfChangeType::ConfChangeAddNode) => self.make_voter(cfg, prs, cc.node_id),
                Ok(ConfChangeType::ConfChangeAddLearnerNode) => {
                    self.make_learner(cfg, prs, cc.node_id)
                }
                Ok(ConfChangeType::ConfChangeRemoveNode) => remove(cfg, prs, cc.node_id),
                Ok(ConfChangeType::ConfChangeUpdateNode) => {}
                Err(_) => return Err(ConfChangeError::UnknownType(cc.r#type)),
            }
        }
        if cfg.voters.incoming.0.is_empty() {
            return Err(ConfChangeError::RemovedAllVoters);
        }
        Ok(())
    }

    /// A new member starts probing at the leader's last index, so the first append carries an
    /// entry and reaches it even when nothing new is proposed.
    fn init_progress(&self, prs: &mut ProgressMap, id: u64, is_learner: bool) {
        let mut p = Progress::new(
            self.last_index.max(1),
            self.max_inflight,
            self.max_inflight_bytes,
        );
        p.is_learner = is_learner;
        // A new member counts as active so check-quorum doesn't step the leader down before it
        // had a chance to hear from it.
        p.recent_active = true;
        prs.insert(id, p);
    }

    fn make_voter(&self, cfg: &mut TrackerConfig, prs: &mut ProgressMap, id: u64) {
        match prs.get_mut(&id) {
            None => self.init_progress(prs, id, false),
            Some(p) => p.is_learner = false,
        }
        cfg.learners.remove(&id);
        cfg.learners_next.remove(&id);
        cfg.voters.incoming.0.insert(id);
    }

    fn make_learner(&self, cfg: &mut TrackerConfig, prs: &mut ProgressMap, id: u64) {
        let Some(mut p) = prs.get(&id).cloned() else {
            self.init_progress(prs, id, true);
            cfg.learners.insert(id);
            return;
        };
        if p.is_learner {
            return;
        }
        remove(cfg, prs, id);
        if cfg.voters.outgoing.0.contains(&id) {
            // Still a voter of the outgoing half: it becomes a learner on leaving the joint config.
            cfg.learners_next.insert(id);
        } else {
            p.is_learner = true;
            cfg.learners.insert(id);
        }
        prs.insert(id, p);
    }
}

fn remove(cfg: &mut TrackerConfig, prs: &mut ProgressMap, id: u64) {
    cfg.voters.incoming.0.remove(&id);
    cfg.learners.remove(&id);
    cfg.learners_next.remove(&id);
    if !cfg.voters.outgoing.0.contains(&id) {
        prs.remove(&id);
    }
}

/// Rebuilds the configuration described by a `ConfState` (on start, restart or snapshot).
pub fn restore(
    cs: &ConfState,
    last_index: u64,
    max_inflight: usize,
    max_inflight_bytes: u64,
) -> Result<Next, ConfChangeError> {
    let single = |t: ConfChangeType, id: u64| ConfChangeSingle {
        r#type: t as i32,
        node_id: id,
    };
    let mut cfg = TrackerConfig::default();
    let mut prs = ProgressMap::new();
    let changer =
        |cfg: &TrackerConfig, prs: &ProgressMap, ccs: &[ConfChangeSingle], joint: bool| {
            let ch = Changer {
                config: cfg,
                progress: prs,
                last_index,
                max_inflight,
                max_inflight_bytes,
            };
            if joint {
                ch.enter_joint(cs.auto_leave, ccs)
            } else {
                let (mut c, mut p) = (cfg.clone(), prs.clone());
                ch.apply_changes(&mut c, &mut p, ccs).map(|()| (c, p))
            }
        };
    if cs.voters.is_empty() && cs.voters_outgoing.is_empty() {
        return Ok((cfg, prs));
    }
    if cs.voters_outgoing.is_empty() {
        let ops: Vec<_> = cs
            .voters
            .iter()
            .map(|&id| single(ConfChangeType::ConfChangeAddNode, id))
            .chain(
                cs.learners
                    .iter()
                    .map(|&id| single(ConfChangeType::ConfChangeAddLearnerNode, id)),
            )
            .collect();
        return changer(&cfg, &prs, &ops, false);
    }
    let outgoing: Vec<_> = cs
        .voters_outgoing
        .iter()
        .map(|&id| single(ConfChangeType::ConfChangeAddNode, id))
        .collect();
    (cfg, prs) = changer(&cfg, &prs, &outgoing, false)?;
    let incoming: Vec<_> = cs
        .voters_outgoing
        .iter()
        .map(|&id| single(ConfChangeType::ConfChangeRemoveNode, id))
        .chain(
            cs.voters
                .iter()
                .map(|&id| single(ConfChangeType::ConfChangeAddNode, id)),
        )
        .chain(
            cs.learners
                .iter()
                .map(|&id| single(ConfChangeType::ConfChangeAddLearnerNode, id)),
        )
        .chain(
            cs.learners_next
                .iter()
                .map(|&id| single(ConfChangeType::ConfChangeAddLearnerNode, id)),
        )
        .collect();
    changer(&cfg, &prs, &incoming, true)
}
