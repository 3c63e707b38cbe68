//! etcd 3.6 flags whose behaviour qraft has fixed: each is accepted only with the value(s) that
//! describe what qraft always does, and refused at start otherwise, with the reason — never
//! silently ignored (issue 17). Flags qraft implements are resolved in `resolve` instead.

use super::{ConfigError, invalid};

/// One flag with a fixed behaviour.
struct Fixed {
    flag: &'static str,
    /// Values that describe qraft's behaviour (compared case-sensitively, after `1`/`0` are
    /// read as `true`/`false` as etcd's boolean flags do). Empty: the flag is never accepted.
    accepts: &'static [&'static str],
    why: &'static str,
}

const NOT_IMPLEMENTED: &str = "not implemented by qraft";

const FIXED: &[Fixed] = &[
    Fixed {
        flag: "logger",
        accepts: &["zap"],
        why: "etcd 3.6 accepts only zap; qraft logs as --logger=zap --log-format=console",
    },
    Fixed {
        flag: "log-format",
        accepts: &["console"],
        why: "qraft writes console-format logs only",
    },
    Fixed {
        flag: "auth-token-ttl",
        accepts: &["300"],
        why: "simple tokens live 300 seconds (etcd's default)",
    },
    Fixed {
        flag: "bcrypt-cost",
        accepts: &["10"],
        why: "password hashes use bcrypt cost 10 (etcd's default)",
    },
    Fixed {
        flag: "max-learners",
        accepts: &["1"],
        why: "a cluster may have at most 1 learner (etcd's default)",
    },
    Fixed {
        flag: "cors",
        accepts: &[""],
        why: "qraft's JSON gateway sends no CORS headers (etcd's default, no origin allowed)",
    },
    Fixed {
        flag: "host-whitelist",
        accepts: &["", "*"],
        why: "qraft's JSON gateway answers every Host (etcd's default)",
    },
    Fixed {
        flag: "pre-vote",
        accepts: &["true"],
        why: "qraft's raft always pre-votes",
    },
    Fixed {
        flag: "initial-election-tick-advance",
        accepts: &["true"],
        why: "qraft always fast-forwards the first election",
    },
    Fixed {
        flag: "enable-v2",
        accepts: &["false"],
        why: "the v2 API is removed (as in etcd 3.6)",
    },
    Fixed {
        flag: "v2-deprecation",
        accepts: &["write-only", "write-only-drop-data", "gone"],
        why: "qraft has no v2 store",
    },
    Fixed {
        flag: "wal-dir",
        accepts: &[],
        why: "qraft's raft journal always lives in the data directory",
    },
    Fixed {
        flag: "max-snapshots",
        accepts: &["0", "5"],
        why: "qraft keeps no snapshot files",
    },
    Fixed {
        flag: "max-wals",
        accepts: &["0", "5"],
        why: "qraft's journal segments are folded into LMDB and removed",
    },
    Fixed {
        flag: "unsafe-no-fsync",
        accepts: &["false"],
        why: "qraft always syncs its journal",
    },
    Fixed {
        flag: "discovery",
        accepts: &[],
        why: "discovery is not implemented; list the members in --initial-cluster",
    },
    Fixed {
        flag: "discovery-srv",
        accepts: &[],
        why: "DNS SRV discovery is not implemented; list the members in --initial-cluster",
    },
    Fixed {
        flag: "discovery-srv-name",
        accepts: &[],
        why: "DNS SRV discovery is not implemented",
    },
    Fixed {
        flag: "discovery-endpoints",
        accepts: &[],
        why: "v3 discovery is not implemented; list the members in --initial-cluster",
    },
    Fixed {
        flag: "discovery-token",
        accepts: &[],
        why: "v3 discovery is not implemented",
    },
    Fixed {
        flag: "discovery-fallback",
        accepts: &[],
        why: "discovery is not implemented",
    },
    Fixed {
        flag: "discovery-proxy",
        accepts: &[],
        why: "discovery is not implemented",
    },
    Fixed {
        flag: "enable-pprof",
        accepts: &["false"],
        why: "Go's pprof handlers do not apply to qraft",
    },
    Fixed {
        flag: "metrics",
        accepts: &["basic"],
        why: "qraft serves one set of metrics (docs/metrics.md)",
    },
    Fixed {
        flag: "client-cert-file",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "client-key-file",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "peer-client-cert-file",
        accepts: &[],
        why: "the peer certificate serves both directions of a peer connection",
    },
    Fixed {
        flag: "peer-client-key-file",
        accepts: &[],
        why: "the peer certificate serves both directions of a peer connection",
    },
    Fixed {
        flag: "client-cert-allowed-hostname",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "peer-skip-client-san-verification",
        accepts: &["false"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "socket-reuse-address",
        accepts: &["false"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "socket-reuse-port",
        accepts: &["false"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "enable-log-rotation",
        accepts: &["false"],
        why: "qraft does not rotate logs; it writes to standard error",
    },
    Fixed {
        flag: "log-rotation-config-json",
        accepts: &[],
        why: "qraft does not rotate logs",
    },
    Fixed {
        flag: "enable-distributed-tracing",
        accepts: &["false"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "distributed-tracing-address",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "distributed-tracing-service-name",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "distributed-tracing-instance-id",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "distributed-tracing-sampling-rate",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "memory-mlock",
        accepts: &["false"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "experimental-memory-mlock",
        accepts: &["false"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "backend-batch-interval",
        accepts: &[],
        why: "qraft holds its LMDB batch up to 10 ms, committing earlier before reads",
    },
    Fixed {
        flag: "backend-batch-limit",
        accepts: &[],
        why: "qraft holds its LMDB batch up to 10 ms, committing earlier before reads",
    },
    Fixed {
        flag: "backend-bbolt-freelist-type",
        accepts: &[],
        why: "qraft stores in LMDB, not bbolt",
    },
    Fixed {
        flag: "bootstrap-defrag-threshold-megabytes",
        accepts: &["0"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "compact-hash-check-time",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "experimental-compact-hash-check-enabled",
        accepts: &["false"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "compaction-batch-limit",
        accepts: &[],
        why: "qraft compacts in one transaction",
    },
    Fixed {
        flag: "compaction-sleep-interval",
        accepts: &[],
        why: "qraft compacts in one transaction",
    },
    Fixed {
        flag: "downgrade-check-time",
        accepts: &["5s"],
        why: "the downgrade check runs every 5 s (etcd's default)",
    },
    Fixed {
        flag: "feature-gates",
        accepts: &[""],
        why: "qraft enables features by cluster version",
    },
    Fixed {
        flag: "raft-read-timeout",
        accepts: &[],
        why: "qraft's peers talk QUIC with their own timeouts",
    },
    Fixed {
        flag: "raft-write-timeout",
        accepts: &[],
        why: "qraft's peers talk QUIC with their own timeouts",
    },
    Fixed {
        flag: "warning-apply-duration",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "warning-unary-request-duration",
        accepts: &[],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "experimental-enable-lease-checkpoint",
        accepts: &["true"],
        why: "qraft always checkpoints lease TTLs",
    },
    Fixed {
        flag: "experimental-enable-lease-checkpoint-persist",
        accepts: &["true"],
        why: "qraft always persists lease checkpoints",
    },
    Fixed {
        flag: "experimental-stop-grpc-service-on-defrag",
        accepts: &["false"],
        why: NOT_IMPLEMENTED,
    },
    Fixed {
        flag: "experimental-txn-mode-write-with-shared-buffer",
        accepts: &["true"],
        why: "qraft stores in LMDB, not bbolt",
    },
];

/// The flags with a fixed behaviour (checked against the flag definitions in `given`'s tests).
#[cfg(test)]
pub(super) fn fixed_flags() -> impl Iterator<Item = &'static str> {
    FIXED.iter().map(|f| f.flag)
}

/// etcd's boolean spellings.
fn normalized(value: &str) -> &str {
    match value {
        "1" | "t" | "T" | "TRUE" | "True" => "true",
        "0" | "f" | "F" | "FALSE" | "False" => "false",
        other => other,
    }
}

/// Refuses the first fixed-behaviour flag given a value qraft does not behave as. `given`
/// holds each given flag (without `--`) and its value.
pub(super) fn check<'a>(
    given: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), ConfigError> {
    for (flag, value) in given {
        let Some(fixed) = FIXED.iter().find(|f| f.flag == flag) else {
            continue;
        };
        if !fixed.accepts.contains(&normalized(value)) {
            let only = match fixed.accepts {
                [] => String::new(),
                values => format!(
                    " (accepted: {})",
                    values
                        .iter()
                        .map(|v| format!("{v:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(invalid(format!(
                "--{flag}={value:?} is not supported: {}{only}",
                fixed.why
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_flags_accept_only_qraft_behaviour() {
        assert!(check([("pre-vote", "true")]).is_ok());
        assert!(check([("enable-v2", "0")]).is_ok());
        let err = check([("enable-v2", "true")]).unwrap_err().to_string();
        assert!(err.contains("v2 API is removed"), "{err}");
        let err = check([("wal-dir", "/wal")]).unwrap_err();
        assert!(err.to_string().contains("data directory"), "{err}");
        assert!(
            check([("name", "anything")]).is_ok(),
            "implemented flags pass through"
        );
    }
}
