//! The replicated version state: the cluster version, the downgrade in progress and the
//! version every member last published. Every member applies the same entries in the same
//! order, so this value is identical on all of them; it is persisted (as
//! `qraftpb::VersionState`) in the same backend transaction as the entry that changed it.

use super::errors::{DowngradeError, VersionError};
use super::semver::Version;
use qraft_proto::qraftpb::{DowngradeInfoSetRequest, MemberVersionPublishRequest, VersionState};
use std::collections::BTreeMap;

/// A downgrade in progress: while `enabled`, the cluster version equals `target`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DowngradeInfo {
    pub enabled: bool,
    /// Meaningful only while `enabled`.
    pub target: Option<Version>,
}

impl DowngradeInfo {
    pub fn active_target(&self) -> Option<Version> {
        if self.enabled { self.target } else { None }
    }
}

/// What a member last published about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberVersions {
    pub server: Version,
    /// `None` until the member has storage (it always has once it publishes).
    pub storage: Option<Version>,
    /// The oldest minor its binary can run as / migrate to.
    pub oldest: Version,
}

impl MemberVersions {
    pub fn to_publish(self, member: u64) -> MemberVersionPublishRequest {
        MemberVersionPublishRequest {
            member_id: member,
            server_version: self.server.to_string(),
            storage_version: self.storage.map(|v| v.to_string()).unwrap_or_default(),
            min_version: self.oldest.to_string(),
        }
    }

    fn from_publish(publish: &MemberVersionPublishRequest) -> Option<Self> {
        let server = Version::parse(&publish.server_version).ok()?;
        let storage = match publish.storage_version.as_str() {
            "" => None,
            text => Some(Version::parse(text).ok()?),
        };
        // Records from members that do not send a minimum can go nowhere below themselves.
        let oldest = match publish.min_version.as_str() {
            "" => server.minor_only(),
            text => Version::parse(text).ok()?,
        };
        Some(MemberVersions {
            server,
            storage,
            oldest,
        })
    }
}

/// The replicated state. Membership (which ids exist) comes from the conf state through
/// [`ClusterVersions::set_members`]; a member present there but absent from `published` has
/// not announced its version yet, which blocks every decision that needs all members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterVersions {
    cluster: Option<Version>,
    downgrade: DowngradeInfo,
    members: BTreeMap<u64, Option<MemberVersions>>,
}

/// What applying one entry did; the server logs these and reacts (migrate storage, answer
/// the proposer, stop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionEvent {
    MemberPublished {
        member: u64,
        versions: MemberVersions,
    },
    ClusterVersionChanged {
        from: Option<Version>,
        to: Version,
    },
    DowngradeEnabled {
        target: Version,
    },
    /// `completed` is true when every member runs the target (the leader's automatic end),
    /// false for a cancel.
    DowngradeDisabled {
        target: Version,
        completed: bool,
    },
    /// A committed entry that changes nothing (stale, malformed or from a removed member).
    Ignored {
        reason: String,
    },
    /// A committed downgrade request that is no longer valid when applied; the proposer
    /// answers its client with this error.
    Rejected(DowngradeError),
    /// The cluster moved out of this member's version window: it must stop now.
    MemberMustStop(VersionError),
}

impl ClusterVersions {
    pub fn cluster_version(&self) -> Option<Version> {
        self.cluster
    }

    pub fn downgrade(&self) -> DowngradeInfo {
        self.downgrade
    }

    pub fn member(&self, id: u64) -> Option<MemberVersions> {
        self.members.get(&id).copied().flatten()
    }

    /// Member ids with what they published (`None` = not yet).
    pub fn members(&self) -> impl Iterator<Item = (u64, Option<MemberVersions>)> + '_ {
        self.members.iter().map(|(id, v)| (*id, *v))
    }

    /// Replaces the member set, keeping what remaining members published.
    pub fn set_members(&mut self, ids: impl IntoIterator<Item = u64>) {
        let old = std::mem::take(&mut self.members);
        self.members = ids
            .into_iter()
            .map(|id| (id, old.get(&id).copied().flatten()))
            .collect();
    }

    /// The lowest published server version (major.minor), or `None` if any member has not
    /// published yet (etcd, too, decides nothing while a member's version is unknown).
    pub fn minimal_member_version(&self) -> Option<Version> {
        if self.members.is_empty() {
            return None;
        }
        self.members
            .values()
            .map(|m| m.map(|m| m.server.minor_only()))
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()
    }

    /// Checks that every member can run as and migrate to `target`.
    pub fn check_members_can_reach(&self, target: Version) -> Result<(), DowngradeError> {
        for (&member, versions) in &self.members {
            let versions = versions.ok_or(DowngradeError::MemberVersionUnknown { member })?;
            if versions.oldest.minor_only() > target {
                return Err(DowngradeError::MemberCannotDowngrade {
                    member,
                    target,
                    oldest: versions.oldest,
                });
            }
        }
        Ok(())
    }

    /// The checks of `downgrade validate` and `enable`, against this state.
    pub fn validate_downgrade(&self, target: Version) -> Result<Version, DowngradeError> {
        let cluster = self
            .cluster
            .ok_or(DowngradeError::ClusterVersionUnavailable)?;
        // Checked before the target: while a downgrade runs the cluster version already is
        // the target, and "in progress" is the useful answer.
        if self.downgrade.enabled {
            return Err(DowngradeError::InProgress);
        }
        if cluster.previous_minor() != Some(target.minor_only()) {
            return Err(DowngradeError::InvalidTargetVersion);
        }
        self.check_members_can_reach(target.minor_only())?;
        Ok(cluster)
    }

    pub fn apply_publish(&mut self, publish: &MemberVersionPublishRequest) -> Vec<VersionEvent> {
        let member = publish.member_id;
        let Some(slot) = self.members.get_mut(&member) else {
            return vec![ignored(format!("member {member:x} is not in the cluster"))];
        };
        let Some(versions) = MemberVersions::from_publish(publish) else {
            return vec![ignored(format!(
                "member {member:x} published unreadable versions {publish:?}"
            ))];
        };
        *slot = Some(versions);
        vec![VersionEvent::MemberPublished { member, versions }]
    }

    /// Applies a leader's `ClusterVersionSet`. The cluster version only ever rises here (it is
    /// lowered solely by enabling a downgrade), and never while a downgrade is enabled: a stale
    /// proposal from a former leader must not undo a downgrade.
    pub fn apply_cluster_version_set(&mut self, ver: &str) -> Vec<VersionEvent> {
        let Ok(to) = Version::parse(ver).map(Version::minor_only) else {
            return vec![ignored(format!("unreadable cluster version {ver:?}"))];
        };
        if self.downgrade.enabled {
            return vec![ignored(format!(
                "cluster version {} not set: a downgrade is enabled",
                to.minor_string()
            ))];
        }
        let from = self.cluster;
        if from.is_some_and(|from| to <= from || to.major != from.major) {
            return vec![ignored(format!(
                "cluster version {} not set: it is not above {}",
                to.minor_string(),
                from.map(Version::minor_string).unwrap_or_default()
            ))];
        }
        self.cluster = Some(to);
        vec![VersionEvent::ClusterVersionChanged { from, to }]
    }

    /// Applies `DowngradeInfoSet`. Enabling re-checks validity at apply time (two racing
    /// enables, or a member that changed meanwhile) and drops the cluster version to the target
    /// in the same step; disabling leaves the cluster version for the leader to raise again.
    pub fn apply_downgrade_set(&mut self, request: &DowngradeInfoSetRequest) -> Vec<VersionEvent> {
        if !request.enabled {
            let Some(target) = self.downgrade.active_target() else {
                return vec![VersionEvent::Rejected(DowngradeError::NoInflightDowngrade)];
            };
            let completed = self.all_members_run(target);
            self.downgrade = DowngradeInfo::default();
            return vec![VersionEvent::DowngradeDisabled { target, completed }];
        }
        let target = match Version::parse(&request.ver) {
            Ok(v) => v.minor_only(),
            Err(_) => return vec![VersionEvent::Rejected(DowngradeError::WrongVersionFormat)],
        };
        let from = match self.validate_downgrade(target) {
            Ok(cluster) => cluster,
            Err(e) => return vec![VersionEvent::Rejected(e)],
        };
        self.downgrade = DowngradeInfo {
            enabled: true,
            target: Some(target),
        };
        self.cluster = Some(target);
        vec![
            VersionEvent::DowngradeEnabled { target },
            VersionEvent::ClusterVersionChanged {
                from: Some(from),
                to: target,
            },
        ]
    }

    /// True when every member published a server version of exactly `target`'s minor.
    pub fn all_members_run(&self, target: Version) -> bool {
        !self.members.is_empty()
            && self
                .members
                .values()
                .all(|m| m.is_some_and(|m| m.server.same_minor(target)))
    }

    pub fn to_proto(&self) -> VersionState {
        VersionState {
            cluster_version: self.cluster.map(|v| v.to_string()).unwrap_or_default(),
            downgrade: Some(DowngradeInfoSetRequest {
                enabled: self.downgrade.enabled,
                ver: self
                    .downgrade
                    .target
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            }),
            members: self
                .members
                .iter()
                .filter_map(|(id, m)| m.map(|m| m.to_publish(*id)))
                .collect(),
        }
    }

    /// Rebuilds the state from its persisted form. Membership is restored from the published
    /// records; the server then calls [`ClusterVersions::set_members`] with the conf state.
    pub fn from_proto(state: &VersionState) -> Result<Self, VersionError> {
        let parse = |what: &'static str, text: &str| -> Result<Option<Version>, VersionError> {
            if text.is_empty() {
                return Ok(None);
            }
            Version::parse(text)
                .map(|v| Some(v.minor_only()))
                .map_err(|source| VersionError::InvalidStored { what, source })
        };
        let cluster = parse("cluster version", &state.cluster_version)?;
        let downgrade = match &state.downgrade {
            Some(d) => DowngradeInfo {
                enabled: d.enabled,
                target: parse("downgrade target", &d.ver)?,
            },
            None => DowngradeInfo::default(),
        };
        let mut members = BTreeMap::new();
        for publish in &state.members {
            let versions = MemberVersions::from_publish(publish).ok_or_else(|| {
                VersionError::UndecodableState(format!(
                    "member {:x} has unreadable versions",
                    publish.member_id
                ))
            })?;
            members.insert(publish.member_id, Some(versions));
        }
        Ok(ClusterVersions {
            cluster,
            downgrade,
            members,
        })
    }
}

fn ignored(reason: String) -> VersionEvent {
    VersionEvent::Ignored { reason }
}
