//! `endpoint status`: answered from the member's published info and its storage sizes, without
//! a trip through raft (etcd answers it locally too).

use qraft_core::version::VersionReport;
use qraft_proto::etcdserverpb::{ResponseHeader, StatusResponse};
use qraft_proto::qraftpb::ClientResponse;
use qraft_proto::qraftpb::client_response::Response as Out;

use super::handle::DriverHandle;
use super::info::NodeInfo;
use super::storage_contract::DriverStorage;

pub fn header(info: &NodeInfo) -> ResponseHeader {
    ResponseHeader {
        cluster_id: info.cluster_id,
        member_id: info.member_id,
        revision: info.revision,
        raft_term: info.term,
    }
}

pub fn status(handle: &DriverHandle<impl DriverStorage>) -> ClientResponse {
    let info = handle.info();
    let mut errors = Vec::new();
    let (db_size, in_use, quota) = match handle.storage().size_info() {
        Ok(s) => (s.file_bytes, s.in_use_bytes, s.quota_bytes),
        Err(err) => {
            errors.push(err.to_string());
            (0, 0, 0)
        }
    };
    let report = info.versions.as_ref();
    errors.extend(info.alarms.iter().map(qraft_core::server::describe_alarm));
    if let Some(fatal) = &info.fatal_error {
        errors.push(fatal.clone());
    }
    ClientResponse {
        response: Some(Out::Status(StatusResponse {
            header: Some(header(&info)),
            version: report.map(|r| r.server.to_string()).unwrap_or_default(),
            db_size: db_size as i64,
            leader: info.leader,
            raft_index: info.committed_index,
            raft_term: info.term,
            raft_applied_index: info.applied_index,
            errors,
            db_size_in_use: in_use as i64,
            is_learner: info.is_learner,
            storage_version: report
                .and_then(|r| r.storage)
                .map(|v| v.minor_string())
                .unwrap_or_default(),
            db_size_quota: quota as i64,
            downgrade_info: report.map(VersionReport::downgrade_proto),
        })),
    }
}
