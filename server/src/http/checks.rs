//! The named checks behind `/livez` and `/readyz` (etcd 3.6's set and wording).

use super::source::HealthSource;
use qraft_proto::etcdserverpb::AlarmType;

/// One named check. The names are part of the API (`/readyz/<name>`, `?exclude=<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Fails while a CORRUPT alarm is raised (NOSPACE does not affect readiness).
    DataCorruption,
    /// A read served by this member alone: its own loop answers.
    SerializableRead,
    /// A read confirmed by a quorum: the cluster has a leader and consensus.
    LinearizableRead,
    /// Learners do not serve clients, so they are never ready.
    NonLearner,
}

/// `/livez`: is the process worth keeping (not restarting)?
pub const LIVEZ: &[Check] = &[Check::SerializableRead];

/// `/readyz`: should clients be sent here?
pub const READYZ: &[Check] = &[
    Check::DataCorruption,
    Check::SerializableRead,
    Check::LinearizableRead,
    Check::NonLearner,
];

impl Check {
    pub const fn name(self) -> &'static str {
        match self {
            Check::DataCorruption => "data_corruption",
            Check::SerializableRead => "serializable_read",
            Check::LinearizableRead => "linearizable_read",
            Check::NonLearner => "non_learner",
        }
    }

    pub async fn run<S: HealthSource>(self, source: &S) -> Result<(), String> {
        match self {
            Check::DataCorruption => {
                if source.alarms().contains(&AlarmType::Corrupt) {
                    Err("alarm activated: CORRUPT".to_string())
                } else {
                    Ok(())
                }
            }
            Check::SerializableRead => source.serializable_read().await,
            Check::LinearizableRead => source.linearizable_read().await,
            Check::NonLearner => {
                if source.is_learner() {
                    Err("not supported for learner".to_string())
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The outcome of running a list of checks.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One `[+]name ok` / `[-]name failed: reason` line per check, in order.
    pub lines: String,
    pub failed: bool,
}

/// Runs `checks` one after another, in order (deterministic output, and the reads are cheap).
pub async fn run_all<S: HealthSource>(source: &S, checks: &[Check]) -> Outcome {
    let mut outcome = Outcome::default();
    for check in checks {
        match check.run(source).await {
            Ok(()) => outcome.lines.push_str(&format!("[+]{} ok\n", check.name())),
            Err(reason) => {
                outcome.failed = true;
                outcome
                    .lines
                    .push_str(&format!("[-]{} failed: {reason}\n", check.name()));
            }
        }
    }
    outcome
}
