//! The state machine's side of version negotiation (`crate::version`): open the member's
//! versions on start, apply version entries, publish and decide periodically, migrate the
//! storage schema, answer `Maintenance.Downgrade` and report versions in `Maintenance.Status`.
//!
//! Invariants kept here:
//! * a member never runs on data of a schema it does not know, nor outside its version window
//!   (`Server::new` fails with [`Error::Version`]; applying an entry that moves the cluster out
//!   of the window fails `advance` with it, without committing that batch);
//! * the replicated version state is written in the same write transaction as the entry that
//!   changed it, and the storage migration in the same transaction as the applied index;
//! * a gated entry (lease checkpoint) is proposed only while its feature is enabled.

use prost::Message as _;
use qraft_proto::etcdserverpb::{DowngradeRequest, DowngradeResponse, StatusResponse};
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::internal_request::Request;
use qraft_proto::qraftpb::{InternalRequest, MemberRecord};

use crate::backend::{Backend, WriteTxn};
use crate::error::{Error, Result};
use crate::raft::Storage;
use crate::version::schema::{self, SchemaError};
use crate::version::{
    BINARY_VERSION, DowngradeStep, Feature, LocalVersion, VersionEvent, VersionNegotiator,
};

use super::config::ServerConfig;
use super::output::RequestId;
use super::state_machine::Server;

impl From<SchemaError> for Error {
    fn from(err: SchemaError) -> Self {
        match err {
            SchemaError::Backend(err) => Error::Backend(err),
            SchemaError::Version(err) => Error::Version(err),
        }
    }
}

/// Starts this member's version negotiation on its backend: checks the stored schema and
/// cluster version against what the member runs as, and initialises an empty backend with
/// this member's schema version.
pub(crate) fn open_versions<B: Backend>(
    config: &ServerConfig,
    backend: &B,
    members: impl IntoIterator<Item = u64>,
) -> Result<VersionNegotiator> {
    let local = LocalVersion::new(
        config.binary_version.unwrap_or(BINARY_VERSION),
        config.emulated_version,
    )?;
    let (storage, state) = {
        let txn = backend.read_txn()?;
        (
            schema::read_storage_version(&txn)?,
            schema::read_version_state(&txn)?,
        )
    };
    let mut versions = VersionNegotiator::start(config.member_id, local, storage, state)?;
    if storage.is_none() {
        let initial = versions.initial_storage_version();
        let mut txn = backend.write_txn()?;
        schema::write_storage_version(&mut txn, initial)?;
        txn.commit()?;
        versions.storage_migrated(initial);
    }
    versions.set_members(members);
    Ok(versions)
}

/// Whether `request` is one of the replicated version entries.
pub(crate) fn is_version_request(request: &InternalRequest) -> bool {
    matches!(
        request.request,
        Some(
            Request::MemberVersionPublish(_)
                | Request::ClusterVersionSet(_)
                | Request::DowngradeInfoSet(_)
        )
    )
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// The version negotiation of this member (versions, replicated state, feature gates).
    pub fn versions(&self) -> &VersionNegotiator {
        &self.versions
    }

    /// Whether the cluster version enables lease checkpoints (0.2 and later).
    pub(crate) fn lease_checkpoints_enabled(&self) -> bool {
        self.versions.features().enabled(Feature::LeaseCheckpoint)
    }

    /// Keeps the version state's member list in step with the members table (after every
    /// configuration change).
    pub(crate) fn sync_version_members(&mut self) {
        self.versions
            .set_members(self.state.members.keys().copied());
    }

    /// The requests in this member's raft log after its last snapshot: a storage downgrade
    /// is refused while one of them needs the newer version.
    fn migration_log(&self) -> Vec<(u64, InternalRequest)> {
        let log = &self.node.raft.raft_log;
        let first = log.first_index().max(self.last_snapshot_index + 1);
        let entries = log.entries_from(first, u64::MAX).unwrap_or_default();
        entries
            .iter()
            .filter(|e| !e.data.is_empty())
            .filter_map(|e| {
                InternalRequest::decode(e.data.as_ref())
                    .ok()
                    .map(|r| (e.index, r))
            })
            .collect()
    }

    /// Migrates the storage schema to the cluster version after a batch was applied (its own
    /// transaction: a crash in between leaves the old schema with the new cluster version, and
    /// the migration runs again after the restart). A downgrade the raft log does not allow yet
    /// (it still holds newer entries) is retried after a later batch, once a snapshot has
    /// compacted them away; a failing backend is fatal.
    pub(crate) fn migrate_storage(&mut self) -> Result<()> {
        let (Some(target), Some(from)) = (
            self.versions.storage_target(),
            self.versions.storage_version(),
        ) else {
            return Ok(());
        };
        let log = self.migration_log();
        let mut txn = self.backend.write_txn()?;
        match schema::migrate(&mut txn, from, target, log.iter().map(|(i, r)| (*i, r))) {
            Ok(()) => {
                txn.commit()?;
                tracing::info!(%from, %target, "storage schema migrated");
                self.versions.storage_migrated(target);
                Ok(())
            }
            Err(SchemaError::Version(err)) => {
                tracing::warn!(%err, "storage migration postponed");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Every `version_check_ticks` ticks: each member publishes its versions when the
    /// replicated record differs; the leader raises the cluster version or ends a finished
    /// downgrade.
    pub(crate) fn version_tick(&mut self) {
        let period = self.config.version_check_ticks;
        if !self
            .schedule
            .version
            .due(period, self.leadership.leader() != 0)
        {
            return;
        }
        if let Some(publish) = self.versions.publish_request() {
            self.propose_version(publish);
        }
        if self.is_leader() {
            for proposal in self.versions.leader_proposals() {
                self.propose_version(proposal);
            }
        }
    }

    fn propose_version(&mut self, request: Request) {
        if let Err((err, _)) = self.propose(None, request, crate::auth::ROOT.to_string()) {
            tracing::debug!(%err, "version proposal not made; retried on the next check");
        }
    }

    /// A `Maintenance.Downgrade` request that passed its linearizable barrier: decided by the
    /// member that received it against its applied state (which the barrier brought up to the
    /// leader's commit point), as etcd's members do. Enable and cancel are proposed from here
    /// (a follower forwards the proposal); enable is checked again when applied, so racing
    /// requests on different members cannot both succeed.
    pub(crate) fn decide_downgrade(&mut self, client: RequestId, request: DowngradeRequest) {
        if self.leadership.leader() == 0 {
            return self.respond_error(client, &Error::NoLeader, 0);
        }
        match self.versions.handle_downgrade(&request) {
            Err(err) => self.respond_error(client, &Error::Downgrade(err), 0),
            Ok(DowngradeStep::Answer { version }) => self.reply(
                client,
                Out::Downgrade(DowngradeResponse {
                    header: None,
                    version,
                }),
            ),
            Ok(DowngradeStep::Propose { request, version }) => {
                let reply = Out::Downgrade(DowngradeResponse {
                    header: None,
                    version,
                });
                if let Err((err, hint)) = self.propose_with_reply(
                    Some(client),
                    request,
                    crate::auth::ROOT.to_string(),
                    Some(reply),
                ) {
                    self.respond_error(client, &err, hint);
                }
            }
        }
    }

    /// `Maintenance.Status` of this member, answered by the member itself as etcd's: its raft
    /// view, versions, its backend's sizes (`Backend::space`; an error reading them is one of
    /// the status's errors, as etcd lists them) and the active alarms.
    pub(crate) fn status_response(&self) -> StatusResponse {
        let report = self.versions.report();
        let member: Option<&MemberRecord> = self.state.members.get(&self.config.member_id);
        let mut errors = Vec::new();
        let space = self.backend.space().unwrap_or_else(|err| {
            errors.push(err.to_string());
            None
        });
        errors.extend(
            self.state
                .alarms
                .list(qraft_proto::etcdserverpb::AlarmType::None)
                .iter()
                .map(super::alarm::describe_alarm),
        );
        StatusResponse {
            header: None,
            version: report.server.to_string(),
            db_size: space.map_or(0, |s| s.file_bytes as i64),
            leader: self.leadership.leader(),
            raft_index: self.leadership.committed(),
            raft_term: self.leadership.term(),
            raft_applied_index: self.state.applied_index,
            errors,
            db_size_in_use: space.map_or(0, |s| s.in_use_bytes as i64),
            is_learner: member
                .and_then(|m| m.raft_attrs.as_ref())
                .is_some_and(|r| r.is_learner),
            storage_version: report.storage.map(|v| v.minor_string()).unwrap_or_default(),
            db_size_quota: space.map_or(0, |s| s.quota_bytes as i64),
            downgrade_info: Some(report.downgrade_proto()),
        }
    }
}

/// Applies a committed version entry inside the batch's transaction. Returns the error the
/// proposer's client gets (a downgrade no longer valid at apply), or fails the batch when this
/// member must stop.
pub(crate) fn apply_version_entry<T: WriteTxn + ?Sized>(
    versions: &mut VersionNegotiator,
    txn: &mut T,
    request: &InternalRequest,
) -> Result<Option<Error>> {
    let Some(body) = &request.request else {
        return Ok(None);
    };
    let mut rejected = None;
    for event in versions.apply(body) {
        match event {
            VersionEvent::MemberMustStop(err) => return Err(Error::Version(err)),
            VersionEvent::Rejected(err) => rejected = Some(Error::Downgrade(err)),
            VersionEvent::Ignored { reason } => {
                tracing::debug!(%reason, "version entry ignored");
            }
            event => tracing::info!(?event, "version state changed"),
        }
    }
    schema::write_version_state(txn, versions.state())?;
    Ok(rejected)
}
