//! One member's view of version negotiation: its own versions, the replicated state, and the
//! decisions it takes as a member (publish, migrate storage, stop) and as leader (set the
//! cluster version, end a finished downgrade, answer downgrade requests).

use super::catalog::{FeatureGates, minimal_version};
use super::cluster::{ClusterVersions, DowngradeInfo, MemberVersions, VersionEvent};
use super::errors::{DowngradeError, VersionError};
use super::local::LocalVersion;
use super::semver::Version;
use qraft_proto::etcdserverpb::downgrade_request::DowngradeAction;
use qraft_proto::etcdserverpb::{DowngradeInfo as DowngradeInfoPb, DowngradeRequest};
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::qraftpb::{ClusterVersionSetRequest, DowngradeInfoSetRequest, InternalRequest};

/// What to do with a client's Downgrade call (already past a linearizable barrier, on the
/// leader).
#[derive(Clone, Debug, PartialEq)]
pub enum DowngradeStep {
    /// Answer right away with this `DowngradeResponse.version` (validate).
    Answer { version: String },
    /// Propose `request`; once applied without a [`VersionEvent::Rejected`], answer with
    /// `version`.
    Propose { request: Request, version: String },
}

/// The versions a member reports in `/version` and in the Status call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionReport {
    pub server: Version,
    pub cluster: Option<Version>,
    pub storage: Option<Version>,
    pub downgrade: DowngradeInfo,
}

impl VersionReport {
    /// `StatusResponse.downgradeInfo`.
    pub fn downgrade_proto(&self) -> DowngradeInfoPb {
        DowngradeInfoPb {
            enabled: self.downgrade.enabled,
            target_version: self
                .downgrade
                .active_target()
                .map(|v| v.to_string())
                .unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct VersionNegotiator {
    id: u64,
    local: LocalVersion,
    storage: Option<Version>,
    state: ClusterVersions,
}

impl VersionNegotiator {
    /// Starts a member on its data: `storage` is the schema version found in the backend
    /// (`None` for an empty data dir), `state` the persisted replicated state
    /// (`ClusterVersions::default()` when there is none). Refuses data of an unknown schema and
    /// a cluster version outside the member's window. Call [`VersionNegotiator::set_members`]
    /// with the applied conf state right after.
    pub fn start(
        id: u64,
        local: LocalVersion,
        storage: Option<Version>,
        state: ClusterVersions,
    ) -> Result<Self, VersionError> {
        if let Some(storage) = storage {
            local.check_storage(storage)?;
        }
        if let Some(cluster) = state.cluster_version() {
            local.check_cluster(cluster)?;
        }
        Ok(VersionNegotiator {
            id,
            local,
            storage: storage.map(Version::minor_only),
            state,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn local(&self) -> LocalVersion {
        self.local
    }

    pub fn state(&self) -> &ClusterVersions {
        &self.state
    }

    pub fn storage_version(&self) -> Option<Version> {
        self.storage
    }

    /// The schema version a new, empty backend is created with.
    pub fn initial_storage_version(&self) -> Version {
        self.local.server.minor_only()
    }

    pub fn features(&self) -> FeatureGates {
        FeatureGates::for_cluster_version(self.state.cluster_version())
    }

    pub fn report(&self) -> VersionReport {
        VersionReport {
            server: self.local.server,
            cluster: self.state.cluster_version(),
            storage: self.storage,
            downgrade: self.state.downgrade(),
        }
    }

    pub fn set_members(&mut self, ids: impl IntoIterator<Item = u64>) {
        self.state.set_members(ids);
    }

    /// Whether this member can apply `request` (an older member cannot apply entries of newer
    /// features). The leader only proposes gated entries when the cluster version allows, so
    /// this fails only on data that should have been refused earlier.
    pub fn check_entry(&self, index: u64, request: &InternalRequest) -> Result<(), VersionError> {
        let needs = minimal_version(request);
        if needs > self.local.server.minor_only() {
            return Err(VersionError::EntryTooNew {
                index,
                needs,
                server: self.local.server,
            });
        }
        Ok(())
    }

    /// Applies a committed version entry; other requests are not ours and return nothing.
    /// After the state changed, re-checks this member's window: a
    /// [`VersionEvent::MemberMustStop`] at the end means the member must exit.
    pub fn apply(&mut self, request: &Request) -> Vec<VersionEvent> {
        let mut events = match request {
            Request::MemberVersionPublish(p) => self.state.apply_publish(p),
            Request::ClusterVersionSet(s) => self.state.apply_cluster_version_set(&s.ver),
            Request::DowngradeInfoSet(d) => self.state.apply_downgrade_set(d),
            _ => return Vec::new(),
        };
        let changed = events
            .iter()
            .any(|e| matches!(e, VersionEvent::ClusterVersionChanged { .. }));
        if let (true, Some(cluster)) = (changed, self.state.cluster_version())
            && let Err(e) = self.local.check_cluster(cluster)
        {
            events.push(VersionEvent::MemberMustStop(e));
        }
        events
    }

    /// The announcement to propose when the replicated record of this member differs from
    /// what it runs (at start, after a restart with another binary, after a storage
    /// migration). Proposing it again while one is in flight is harmless.
    pub fn publish_request(&self) -> Option<Request> {
        let mine = MemberVersions {
            server: self.local.server,
            storage: self.storage,
            oldest: self.local.oldest,
        };
        (self.state.member(self.id) != Some(mine))
            .then(|| Request::MemberVersionPublish(mine.to_publish(self.id)))
    }

    /// The leader's periodic check (etcd: every 5 s): end a downgrade every member completed,
    /// or raise the cluster version to the lowest member version.
    pub fn leader_proposals(&self) -> Vec<Request> {
        if let Some(target) = self.state.downgrade().active_target() {
            if self.state.all_members_run(target) {
                return vec![Request::DowngradeInfoSet(DowngradeInfoSetRequest {
                    enabled: false,
                    ver: target.to_string(),
                })];
            }
            return Vec::new();
        }
        let Some(minimal) = self.state.minimal_member_version() else {
            return Vec::new();
        };
        let raise = match self.state.cluster_version() {
            None => true,
            Some(cluster) => minimal > cluster && minimal.major == cluster.major,
        };
        if raise {
            vec![Request::ClusterVersionSet(ClusterVersionSetRequest {
                ver: minimal.to_string(),
            })]
        } else {
            Vec::new()
        }
    }

    /// The storage schema version this member should migrate to now, if different from what
    /// it has: the cluster version (which is the target during a downgrade). `None` while the
    /// cluster version is undecided or the storage already matches.
    pub fn storage_target(&self) -> Option<Version> {
        let cluster = self.state.cluster_version()?;
        let target = cluster.min(self.local.server.minor_only());
        (self.storage != Some(target)).then_some(target)
    }

    /// The server migrated (or created) its storage at `version`.
    pub fn storage_migrated(&mut self, version: Version) {
        self.storage = Some(version.minor_only());
    }

    /// Decides a client's downgrade request against the applied state.
    pub fn handle_downgrade(
        &self,
        request: &DowngradeRequest,
    ) -> Result<DowngradeStep, DowngradeError> {
        let action = DowngradeAction::try_from(request.action)
            .map_err(|_| DowngradeError::WrongVersionFormat)?;
        if action == DowngradeAction::Cancel {
            let cluster = self
                .state
                .cluster_version()
                .ok_or(DowngradeError::ClusterVersionUnavailable)?;
            let target = self
                .state
                .downgrade()
                .active_target()
                .ok_or(DowngradeError::NoInflightDowngrade)?;
            return Ok(DowngradeStep::Propose {
                request: Request::DowngradeInfoSet(DowngradeInfoSetRequest {
                    enabled: false,
                    ver: target.to_string(),
                }),
                version: cluster.minor_string(),
            });
        }
        let target = Version::parse(&request.version)
            .map_err(|_| DowngradeError::WrongVersionFormat)?
            .minor_only();
        let cluster = self.state.validate_downgrade(target)?;
        let version = cluster.minor_string();
        if action == DowngradeAction::Validate {
            return Ok(DowngradeStep::Answer { version });
        }
        Ok(DowngradeStep::Propose {
            request: Request::DowngradeInfoSet(DowngradeInfoSetRequest {
                enabled: true,
                ver: target.to_string(),
            }),
            version,
        })
    }
}

/// What `qraftctl downgrade <action>` prints on success, in etcdctl's words; `version` is the
/// `DowngradeResponse.version` (the cluster version when the request was decided).
pub fn downgrade_success_message(action: DowngradeAction, version: &str) -> String {
    let verb = match action {
        DowngradeAction::Validate => "validate",
        DowngradeAction::Enable => "enable",
        DowngradeAction::Cancel => "cancel",
    };
    format!("Downgrade {verb} success, cluster version {version}")
}
