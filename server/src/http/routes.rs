//! Which endpoint answers a request, and what it answers. Pure of sockets: [`Endpoints::respond`]
//! takes the request line's parts and returns a [`Reply`], so it can be tested directly; the
//! listener only converts to and from hyper's types.

use super::checks::{self, Check, LIVEZ, READYZ};
use super::query;
use super::source::HealthSource;
use qraft_core::version::Version;
use qraft_io::metrics::Metrics;
use qraft_proto::etcdserverpb::AlarmType;
use std::sync::Arc;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// A response before it is put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// Set on 405 answers: `Allow: GET`.
    pub allow_get: bool,
    /// Probes' plain-text answers also carry `X-Content-Type-Options: nosniff`, as etcd's do.
    pub nosniff: bool,
    pub body: String,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Self {
        Reply {
            status,
            content_type,
            allow_get: false,
            nosniff: content_type == TEXT,
            body: body.into(),
        }
    }

    fn not_found() -> Self {
        Reply::new(404, TEXT, "404 page not found\n")
    }

    fn method_not_allowed() -> Self {
        Reply {
            allow_get: true,
            ..Reply::new(405, TEXT, "Method Not Allowed\n")
        }
    }

    /// Go's `http.Error`: the message plus a newline.
    fn error(status: u16, message: &str) -> Self {
        Reply::new(status, TEXT, format!("{message}\n"))
    }
}

enum Route {
    Probe {
        checks: &'static [Check],
        /// `exclude=` applies to the group path only, not to a single check's path.
        group: bool,
    },
    Single(Check),
    Health,
    Version,
    Metrics,
}

fn route(path: &str) -> Option<Route> {
    let group = |name: &str| match name {
        "livez" => Some(LIVEZ),
        "readyz" => Some(READYZ),
        _ => None,
    };
    let path = path.strip_prefix('/')?;
    match path.split_once('/') {
        None => match path {
            "health" => Some(Route::Health),
            "version" => Some(Route::Version),
            "metrics" => Some(Route::Metrics),
            name => group(name).map(|checks| Route::Probe {
                checks,
                group: true,
            }),
        },
        Some((name, check)) => group(name)?
            .iter()
            .find(|c| c.name() == check)
            .map(|c| Route::Single(*c)),
    }
}

/// `/health`'s body, etcd's shape: `{"health":"true","reason":""}`.
#[derive(serde::Serialize)]
struct HealthBody<'a> {
    health: &'a str,
    reason: &'a str,
}

/// `/version`'s body, etcd's shape with qraft's names (field order as etcd's).
#[derive(serde::Serialize)]
struct VersionBody {
    qraftserver: String,
    qraftcluster: String,
    storage: String,
}

fn to_json(value: &impl serde::Serialize) -> String {
    // Plain structs of strings always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

/// The endpoints behind a trait object, so that the gRPC listener's HTTP/1.1 side can serve
/// them without knowing the member's [`HealthSource`] type.
pub trait Responder: Send + Sync + 'static {
    fn respond_boxed<'a>(
        &'a self,
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
    ) -> futures::future::BoxFuture<'a, Reply>;
}

impl<S: HealthSource> Responder for Endpoints<S> {
    fn respond_boxed<'a>(
        &'a self,
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
    ) -> futures::future::BoxFuture<'a, Reply> {
        Box::pin(self.respond(method, path, query))
    }
}

/// The HTTP endpoints of one member.
pub struct Endpoints<S> {
    source: Arc<S>,
    metrics: Arc<Metrics>,
}

impl<S: HealthSource> Endpoints<S> {
    pub fn new(source: Arc<S>, metrics: Arc<Metrics>) -> Self {
        Endpoints { source, metrics }
    }

    pub async fn respond(&self, method: &str, path: &str, query: Option<&str>) -> Reply {
        let Some(route) = route(path) else {
            return Reply::not_found();
        };
        if method != "GET" {
            return Reply::method_not_allowed();
        }
        let query = query::parse(query);
        match route {
            Route::Probe { checks, group } => {
                let excluded = if group {
                    query::values(&query, "exclude")
                } else {
                    Vec::new()
                };
                // Excluding a name that is not a check is not an error (etcd keeps old probes
                // working across versions that add or drop checks).
                let selected: Vec<Check> = checks
                    .iter()
                    .copied()
                    .filter(|c| !excluded.contains(&c.name()))
                    .collect();
                self.probe(&selected, query::has(&query, "verbose")).await
            }
            Route::Single(check) => self.probe(&[check], query::has(&query, "verbose")).await,
            Route::Health => self.health(&query).await,
            Route::Version => self.version(),
            Route::Metrics => {
                self.source.refresh_metrics(&self.metrics);
                Reply::new(200, Metrics::CONTENT_TYPE, self.metrics.encode())
            }
        }
    }

    /// etcd 3.6 probe semantics: failures always list every check; success says `ok`, after
    /// the list only when `verbose` was asked for.
    async fn probe(&self, selected: &[Check], verbose: bool) -> Reply {
        let outcome = checks::run_all(self.source.as_ref(), selected).await;
        if outcome.failed {
            return Reply::error(503, &outcome.lines);
        }
        let body = if verbose {
            format!("{}ok\n", outcome.lines)
        } else {
            "ok\n".to_string()
        };
        Reply::new(200, TEXT, body)
    }

    /// `/health`: alarms (minus `exclude=`), then the leader (unless `serializable=true`),
    /// then a read; the first failure is the reason.
    async fn health(&self, query: &[(String, String)]) -> Reply {
        let excluded = query::values(query, "exclude");
        let serializable = query::first(query, "serializable") == "true";
        let reason = self.health_failure(&excluded, serializable).await;
        let body = to_json(&HealthBody {
            health: if reason.is_none() { "true" } else { "false" },
            reason: reason.as_deref().unwrap_or(""),
        });
        match reason {
            None => Reply::new(200, TEXT, body),
            Some(_) => Reply::error(503, &body),
        }
    }

    async fn health_failure(&self, excluded: &[&str], serializable: bool) -> Option<String> {
        for alarm in self.source.alarms() {
            if alarm == AlarmType::None || excluded.contains(&alarm.as_str_name()) {
                continue;
            }
            return Some(format!("ALARM {}", alarm.as_str_name()));
        }
        if !serializable && !self.source.has_leader() {
            return Some("RAFT NO LEADER".to_string());
        }
        let read = if serializable {
            self.source.serializable_read().await
        } else {
            self.source.linearizable_read().await
        };
        read.err().map(|e| format!("RANGE ERROR:{e}"))
    }

    fn version(&self) -> Reply {
        let report = self.source.versions();
        let text = |v: Option<Version>, missing: &str| {
            v.map(|v| v.to_string())
                .unwrap_or_else(|| missing.to_string())
        };
        let body = to_json(&VersionBody {
            qraftserver: report.server.to_string(),
            qraftcluster: text(report.cluster, "not_decided"),
            storage: text(report.storage, "unknown"),
        });
        Reply::new(200, JSON, body)
    }
}
