//! The HTTP endpoints' view of the member ([`HealthSource`]) on top of the driver.

use std::time::Duration;

use qraft_core::version::{DowngradeInfo, Version, VersionReport};
use qraft_io::driver::DriverHandle;
use qraft_io::metrics::Metrics;
use qraft_io::runtime;
use qraft_proto::etcdserverpb::AlarmType;
use qraft_proto::qraftpb::client_response::Response as Out;

use crate::http::HealthSource;

/// etcd's health checks give a read this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The member as `/livez`, `/readyz`, `/health` and `/version` see it.
pub struct MemberHealth {
    pub handle: DriverHandle,
    /// What the member runs as (`--emulated-version` or the binary's version): reported until
    /// the loop has published the state machine's own report.
    pub server_version: Version,
}

impl MemberHealth {
    /// The member's own read, which auth does not gate: a probe reports health, not
    /// credentials.
    async fn read(&self, serializable: bool) -> Result<(), String> {
        let read = self.handle.health_read(serializable);
        match runtime::timeout(CHECK_TIMEOUT, read).await {
            Err(_) => Err("etcdserver: request timed out".to_string()),
            Ok(resp) => match resp.response {
                Some(Out::Error(e)) => Err(e.message),
                Some(_) => Ok(()),
                None => Err("empty response".to_string()),
            },
        }
    }
}

impl HealthSource for MemberHealth {
    fn serializable_read(&self) -> impl Future<Output = Result<(), String>> + Send {
        self.read(true)
    }

    fn linearizable_read(&self) -> impl Future<Output = Result<(), String>> + Send {
        self.read(false)
    }

    fn is_learner(&self) -> bool {
        self.handle.info().is_learner
    }

    fn has_leader(&self) -> bool {
        self.handle.info().leader != 0
    }

    fn alarms(&self) -> Vec<AlarmType> {
        // The replicated alarms, as this member applied them (one entry per type).
        let mut alarms: Vec<AlarmType> = self
            .handle
            .info()
            .alarms
            .iter()
            .filter_map(|a| AlarmType::try_from(a.alarm).ok())
            .collect();
        alarms.sort_by_key(|a| *a as i32);
        alarms.dedup();
        alarms
    }

    fn refresh_metrics(&self, metrics: &Metrics) {
        // The backend's size is a property of the file, read when scraped; every other family
        // is recorded where its event happens (driver, transport, client listeners).
        match self.handle.storage().size_info() {
            Ok(size) => {
                metrics
                    .mvcc
                    .db_total_size_in_bytes
                    .set(size.file_bytes as i64);
                metrics
                    .mvcc
                    .db_total_size_in_use_in_bytes
                    .set(size.in_use_bytes as i64);
            }
            Err(err) => tracing::warn!(%err, "cannot read the backend size for /metrics"),
        }
    }

    fn versions(&self) -> VersionReport {
        self.handle
            .info()
            .versions
            .unwrap_or_else(|| VersionReport {
                server: self.server_version,
                cluster: None,
                storage: None,
                downgrade: DowngradeInfo::default(),
            })
    }
}
