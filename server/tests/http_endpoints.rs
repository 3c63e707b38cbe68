//! The HTTP endpoints over real loopback sockets, against a member whose health is set by the
//! test.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use qraft_core::version::{DowngradeInfo, Version, VersionReport};
use qraft_io::metrics::Metrics;
use qraft_proto::etcdserverpb::AlarmType;
use qraft_server::http::{HealthSource, HttpServer};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The member's state as the test sets it. `None` = the read succeeds.
#[derive(Clone)]
struct Knobs {
    serializable_error: Option<String>,
    linearizable_error: Option<String>,
    learner: bool,
    leader: bool,
    alarms: Vec<AlarmType>,
    versions: VersionReport,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            serializable_error: None,
            linearizable_error: None,
            learner: false,
            leader: true,
            alarms: Vec::new(),
            versions: VersionReport {
                server: Version::new(0, 2, 0),
                cluster: Some(Version::new(0, 2, 0)),
                storage: Some(Version::new(0, 2, 0)),
                downgrade: DowngradeInfo::default(),
            },
        }
    }
}

#[derive(Default)]
struct TestMember(Mutex<Knobs>);

impl TestMember {
    fn knobs(&self) -> Knobs {
        self.0.lock().unwrap().clone()
    }
}

impl HealthSource for TestMember {
    async fn serializable_read(&self) -> Result<(), String> {
        self.knobs().serializable_error.map_or(Ok(()), Err)
    }

    async fn linearizable_read(&self) -> Result<(), String> {
        self.knobs().linearizable_error.map_or(Ok(()), Err)
    }

    fn is_learner(&self) -> bool {
        self.knobs().learner
    }

    fn has_leader(&self) -> bool {
        self.knobs().leader
    }

    fn alarms(&self) -> Vec<AlarmType> {
        self.knobs().alarms
    }

    fn versions(&self) -> VersionReport {
        self.knobs().versions
    }
}

struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection, written by hand so the test sees exactly what
/// went over the wire.
fn request(addr: SocketAddr, method: &str, target: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, target: &str) -> Answer {
    request(addr, "GET", target)
}

struct Fixture {
    member: Arc<TestMember>,
    metrics: Arc<Metrics>,
    server: Option<HttpServer>,
}

impl Fixture {
    fn start() -> Self {
        let member = Arc::new(TestMember::default());
        let metrics = Arc::new(Metrics::new());
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server =
            qraft_io::runtime::block_on(HttpServer::start(addr, member.clone(), metrics.clone()))
                .unwrap();
        Fixture {
            member,
            metrics,
            server: Some(server),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    fn set(&self, change: impl FnOnce(&mut Knobs)) {
        change(&mut self.member.0.lock().unwrap());
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            qraft_io::runtime::block_on(server.shutdown());
        }
    }
}

const TIMED_OUT: &str = "etcdserver: request timed out";

#[test]
fn livez_and_readyz_when_healthy() {
    let f = Fixture::start();
    let a = get(f.addr(), "/livez");
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
    assert_eq!(a.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(a.headers["x-content-type-options"], "nosniff");

    let a = get(f.addr(), "/livez?verbose");
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "[+]serializable_read ok\nok\n")
    );

    let a = get(f.addr(), "/readyz");
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
    let a = get(f.addr(), "/readyz?verbose=1");
    assert_eq!(
        a.body,
        "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n\
         [+]non_learner ok\nok\n"
    );
}

#[test]
fn a_member_cut_off_from_quorum_is_live_but_not_ready() {
    let f = Fixture::start();
    f.set(|k| {
        k.leader = false;
        k.linearizable_error = Some(TIMED_OUT.into());
    });
    let a = get(f.addr(), "/livez");
    assert_eq!(a.status, 200);
    // Failures always list every check, verbose or not; the body ends like Go's http.Error.
    let a = get(f.addr(), "/readyz");
    assert_eq!(a.status, 503);
    assert_eq!(
        a.body,
        "[+]data_corruption ok\n[+]serializable_read ok\n\
         [-]linearizable_read failed: etcdserver: request timed out\n[+]non_learner ok\n\n"
    );
    assert_eq!(a.headers["content-type"], "text/plain; charset=utf-8");

    let a = get(f.addr(), "/readyz/linearizable_read");
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            503,
            "[-]linearizable_read failed: etcdserver: request timed out\n\n"
        )
    );
    let a = get(f.addr(), "/readyz/serializable_read?verbose");
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "[+]serializable_read ok\nok\n")
    );

    // Excluding the failing check makes the member ready again; unknown names are ignored.
    let a = get(
        f.addr(),
        "/readyz?verbose&exclude=linearizable_read&exclude=no_such_check",
    );
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            200,
            "[+]data_corruption ok\n[+]serializable_read ok\n[+]non_learner ok\nok\n"
        )
    );
}

#[test]
fn learners_alarms_and_a_stuck_loop() {
    let f = Fixture::start();
    f.set(|k| k.learner = true);
    let a = get(f.addr(), "/readyz/non_learner");
    assert_eq!(
        (a.status, a.body.as_str()),
        (503, "[-]non_learner failed: not supported for learner\n\n")
    );
    let a = get(f.addr(), "/readyz?exclude=non_learner");
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));

    // NOSPACE does not affect readiness; CORRUPT does.
    f.set(|k| {
        k.learner = false;
        k.alarms = vec![AlarmType::Nospace];
    });
    assert_eq!(get(f.addr(), "/readyz").status, 200);
    f.set(|k| k.alarms = vec![AlarmType::Nospace, AlarmType::Corrupt]);
    let a = get(f.addr(), "/readyz/data_corruption");
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            503,
            "[-]data_corruption failed: alarm activated: CORRUPT\n\n"
        )
    );

    // A member whose own loop does not answer is not live.
    f.set(|k| {
        k.alarms.clear();
        k.serializable_error = Some(TIMED_OUT.into());
    });
    let a = get(f.addr(), "/livez?verbose");
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            503,
            "[-]serializable_read failed: etcdserver: request timed out\n\n"
        )
    );
    let a = get(f.addr(), "/livez?exclude=serializable_read");
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
}

#[test]
fn unknown_paths_and_methods() {
    let f = Fixture::start();
    for path in [
        "/readyz/no_such_check",
        "/livez/linearizable_read",
        "/readyz/",
        "/nope",
        "/",
    ] {
        let a = get(f.addr(), path);
        assert_eq!(
            (a.status, a.body.as_str()),
            (404, "404 page not found\n"),
            "{path}"
        );
    }
    for (method, path) in [
        ("POST", "/readyz"),
        ("PUT", "/livez"),
        ("DELETE", "/readyz/non_learner"),
        ("POST", "/health"),
        ("POST", "/version"),
        ("POST", "/metrics"),
    ] {
        let a = request(f.addr(), method, path);
        assert_eq!(a.status, 405, "{method} {path}");
        assert_eq!(a.headers["allow"], "GET");
        assert_eq!(a.body, "Method Not Allowed\n");
    }
}

#[test]
fn health_json_reasons_and_options() {
    let f = Fixture::start();
    let a = get(f.addr(), "/health");
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, r#"{"health":"true","reason":""}"#)
    );

    f.set(|k| k.alarms = vec![AlarmType::Nospace]);
    let a = get(f.addr(), "/health");
    assert_eq!(
        (a.status, a.body.as_str()),
        (503, "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n")
    );
    assert_eq!(get(f.addr(), "/health?exclude=NOSPACE").status, 200);
    f.set(|k| k.alarms = vec![AlarmType::Nospace, AlarmType::Corrupt]);
    let a = get(f.addr(), "/health?exclude=NOSPACE");
    assert_eq!(
        (a.status, a.body.as_str()),
        (503, "{\"health\":\"false\",\"reason\":\"ALARM CORRUPT\"}\n")
    );

    f.set(|k| {
        k.alarms.clear();
        k.leader = false;
        k.linearizable_error = Some(TIMED_OUT.into());
    });
    let a = get(f.addr(), "/health");
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            503,
            "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}\n"
        )
    );
    // serializable=true checks the member alone: no leader needed.
    let a = get(f.addr(), "/health?serializable=true");
    assert_eq!(a.status, 200);

    f.set(|k| k.leader = true);
    let a = get(f.addr(), "/health");
    assert_eq!(
        a.body,
        "{\"health\":\"false\",\"reason\":\"RANGE ERROR:etcdserver: request timed out\"}\n"
    );
    f.set(|k| k.serializable_error = Some("etcdserver: server stopped".into()));
    let a = get(f.addr(), "/health?serializable=true");
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            503,
            "{\"health\":\"false\",\"reason\":\"RANGE ERROR:etcdserver: server stopped\"}\n"
        )
    );
}

#[test]
fn version_json() {
    let f = Fixture::start();
    let a = get(f.addr(), "/version");
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(
        a.body,
        r#"{"qraftserver":"0.2.0","qraftcluster":"0.2.0","storage":"0.2.0"}"#
    );
    // A member emulating 0.1 that has not learned the cluster version yet.
    f.set(|k| {
        k.versions.server = Version::new(0, 1, 0);
        k.versions.cluster = None;
        k.versions.storage = None;
    });
    let a = get(f.addr(), "/version");
    assert_eq!(
        a.body,
        r#"{"qraftserver":"0.1.0","qraftcluster":"not_decided","storage":"unknown"}"#
    );
}

/// Checks the exposition line by line: every sample belongs to a family declared by a
/// `# TYPE` line before it, every value is a number, and the text ends with `# EOF`.
fn check_exposition(text: &str) -> BTreeMap<String, String> {
    let mut families = BTreeMap::new();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.pop(), Some("# EOF"));
    for line in lines {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a number in {line:?}");
        let name = series.split('{').next().unwrap();
        let family = families
            .keys()
            .filter(|f| name.starts_with(f.as_str()))
            .max_by_key(|f| f.len());
        assert!(family.is_some(), "sample {line:?} has no # TYPE");
    }
    families
}

#[test]
fn metrics_exposition() {
    let f = Fixture::start();
    f.metrics.server.has_leader.set(1);
    f.metrics.server.proposals_committed.set(17);
    f.metrics.lease.granted.inc();
    f.metrics
        .disk
        .backend_commit_duration_seconds
        .observe(0.0007);
    f.metrics.network.received_from(0x2a).inc_by(512);
    // Labelled families appear once a label set has been recorded.
    f.metrics.network.sent_to(3).inc();
    f.metrics.network.round_trip_to(3).observe(0.0002);
    let put = qraft_proto::qraftpb::client_request::Request::Put(Default::default());
    f.metrics.client.received(Some(&put), 20);
    let a = get(f.addr(), "/metrics");
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-type"], Metrics::CONTENT_TYPE);
    let families = check_exposition(&a.body);
    for (family, kind) in [
        ("qraft_server_has_leader", "gauge"),
        ("qraft_server_is_leader", "gauge"),
        ("qraft_server_leader_changes_seen", "counter"),
        ("qraft_server_proposals_committed_total", "gauge"),
        ("qraft_server_proposals_applied_total", "gauge"),
        ("qraft_server_proposals_pending", "gauge"),
        ("qraft_server_proposals_failed", "counter"),
        ("qraft_server_slow_apply", "counter"),
        ("qraft_server_heartbeat_send_failures", "counter"),
        ("qraft_server_client_requests", "counter"),
        ("qraft_disk_wal_fsync_duration_seconds", "histogram"),
        ("qraft_disk_backend_commit_duration_seconds", "histogram"),
        ("qraft_mvcc_db_total_size_in_bytes", "gauge"),
        ("qraft_mvcc_db_total_size_in_use_in_bytes", "gauge"),
        ("qraft_mvcc_keys_total", "gauge"),
        ("qraft_mvcc_watcher_total", "gauge"),
        ("qraft_mvcc_events", "counter"),
        ("qraft_network_peer_round_trip_time_seconds", "histogram"),
        ("qraft_network_peer_sent_bytes", "counter"),
        ("qraft_network_peer_received_bytes", "counter"),
        ("qraft_network_client_grpc_received_bytes", "counter"),
        ("qraft_network_client_grpc_sent_bytes", "counter"),
        ("qraft_lease_granted", "counter"),
        ("qraft_lease_revoked", "counter"),
        ("qraft_lease_renewed", "counter"),
        ("qraft_process_resident_memory_bytes", "gauge"),
        ("qraft_process_open_fds", "gauge"),
    ] {
        assert_eq!(
            families.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    for sample in [
        "qraft_server_has_leader 1\n",
        "qraft_server_proposals_committed_total 17\n",
        "qraft_lease_granted_total 1\n",
        "qraft_disk_backend_commit_duration_seconds_bucket{le=\"0.001\"} 1\n",
        "qraft_network_peer_received_bytes_total{From=\"2a\"} 512\n",
        "qraft_network_peer_sent_bytes_total{To=\"3\"} 1\n",
        "qraft_server_client_requests_total{type=\"put\"} 1\n",
        "qraft_network_client_grpc_received_bytes_total 20\n",
    ] {
        assert!(a.body.contains(sample), "missing {sample:?}");
    }
    let rss_line = a
        .body
        .lines()
        .find(|l| l.starts_with("qraft_process_resident_memory_bytes "))
        .unwrap();
    let rss: f64 = rss_line.rsplit_once(' ').unwrap().1.parse().unwrap();
    assert!(rss > 1_000_000.0, "implausible RSS {rss}");
}
