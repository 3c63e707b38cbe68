//! Fault-injection helpers for the multi-process tests: who leads, per-member dumps of the key
//! space, waiting for convergence, and a bounded concurrent write load that records exactly
//! which writes were acknowledged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use qraft_io::client::{Client, ClientConfig};
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{
    PutRequest, RangeRequest, RangeResponse, RequestOp, StatusResponse, TxnRequest, request_op,
};
use qraft_proto::mvccpb::KeyValue;

use crate::cluster::Cluster;

/// A client config for fault tests: short request timeouts (a request to a killed member
/// fails fast instead of stalling the load) and a QUIC idle timeout of a few seconds, so a
/// connection to a killed member is noticed quickly (UDP gives no reset).
pub fn fault_config(c: &Cluster, endpoints: Vec<String>) -> ClientConfig {
    let mut config = c.client_config(endpoints);
    config.request_timeout = Duration::from_secs(2);
    config.dial_timeout = Duration::from_secs(1);
    config.quic.idle_timeout = Duration::from_secs(3);
    config.quic.keep_alive = Duration::from_millis(500);
    config
}

/// Every member's client URL.
pub fn all_endpoints(c: &Cluster) -> Vec<String> {
    c.nodes.iter().map(|n| n.client_url()).collect()
}

/// A client for member `i` alone, or `None` if it does not answer.
pub fn try_client(c: &Cluster, i: usize) -> Option<Client> {
    let config = fault_config(c, vec![c.nodes[i].client_url()]);
    runtime::block_on(Client::connect(config)).ok()
}

/// `endpoint status` of member `i`.
pub fn status(c: &Cluster, i: usize) -> Option<StatusResponse> {
    let client = try_client(c, i)?;
    let status = runtime::block_on(client.status(Default::default())).ok();
    client.close();
    status
}

/// The member that reports itself leader (highest term wins), among the running ones.
pub fn leader(c: &mut Cluster) -> Option<(usize, StatusResponse)> {
    let mut best: Option<(usize, StatusResponse)> = None;
    for i in 0..c.nodes.len() {
        if !c.nodes[i].is_running() {
            continue;
        }
        let Some(s) = status(c, i) else { continue };
        let me = s.header.as_ref().map_or(0, |h| h.member_id);
        if me != 0 && s.leader == me && best.as_ref().is_none_or(|(_, b)| b.raft_term < s.raft_term)
        {
            best = Some((i, s));
        }
    }
    best
}

/// Waits until a running member other than `not` leads; returns its index and member id.
pub fn wait_leader(c: &mut Cluster, not: Option<usize>, timeout: Duration) -> (usize, u64) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((i, s)) = leader(c)
            && Some(i) != not
        {
            return (i, s.leader);
        }
        if Instant::now() > deadline {
            panic!("no leader within {timeout:?}\n{}", logs(c));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The tails of every member's log, for failure messages.
pub fn logs(c: &Cluster) -> String {
    c.nodes
        .iter()
        .map(|n| format!("--- {} ---\n{}", n.name, n.log_tail()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A member's whole key space as it has applied it (serializable read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    pub revision: i64,
    pub kvs: BTreeMap<Vec<u8>, KeyValue>,
}

impl Dump {
    /// The revision and keys of one range answer.
    pub fn from_range(resp: RangeResponse) -> Dump {
        Dump {
            revision: resp.header.map_or(0, |h| h.revision),
            kvs: resp
                .kvs
                .into_iter()
                .map(|kv| (kv.key.to_vec(), kv))
                .collect(),
        }
    }
}

/// Serializable read of every key on member `i`.
pub fn dump(c: &Cluster, i: usize) -> Option<Dump> {
    let client = try_client(c, i)?;
    let resp = runtime::block_on(client.range(RangeRequest {
        key: vec![0].into(),
        range_end: vec![0].into(),
        serializable: true,
        ..Default::default()
    }))
    .ok();
    client.close();
    resp.map(Dump::from_range)
}

/// Waits until every member holds the same revision and the same keys and values (every
/// field of every key), and returns that content.
pub fn wait_converged(c: &mut Cluster, timeout: Duration) -> Dump {
    let deadline = Instant::now() + timeout;
    loop {
        let dumps: Vec<Option<Dump>> = (0..c.nodes.len()).map(|i| dump(c, i)).collect();
        if let Some(Some(first)) = dumps.first()
            && dumps.iter().all(|d| d.as_ref() == Some(first))
        {
            return first.clone();
        }
        if Instant::now() > deadline {
            let summary: Vec<String> = dumps
                .iter()
                .enumerate()
                .map(|(i, d)| match d {
                    Some(d) => format!("m{i}: revision {} keys {}", d.revision, d.kvs.len()),
                    None => format!("m{i}: unreachable"),
                })
                .collect();
            panic!(
                "members did not converge in {timeout:?}: {}\n{}",
                summary.join(", "),
                logs(c)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One acknowledged write: the key and the revision the response named.
#[derive(Debug, Clone)]
pub struct Ack {
    pub key: String,
    pub revision: i64,
    pub at: Instant,
}

/// What one writer did. `unknown` holds the keys whose write failed or timed out: the write
/// may or may not have been applied.
#[derive(Debug, Clone, Default)]
pub struct WriterLog {
    pub writer: usize,
    pub acked: Vec<Ack>,
    pub unknown: Vec<String>,
}

/// Concurrent writers, each on its own thread and client (over every endpoint). Writer `w`
/// writes keys `{prefix}/{w}/{seq:06}` (value = seq), each in one txn together with a put of
/// its counter key `{prefix}/ctr/{w}`: the counter's `version` therefore counts how many of
/// the writer's txns were applied, which exposes a txn applied twice even if its own key
/// were somehow rewritten identically.
pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<WriterLog>>,
}

impl WriteLoad {
    /// Starts `writers` writers; each stops after `max_per_writer` writes or at [`Self::stop`].
    pub fn start(
        config: ClientConfig,
        writers: usize,
        prefix: &str,
        max_per_writer: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let threads = (0..writers)
            .map(|w| {
                let config = config.clone();
                let shared = (stop.clone(), acked.clone());
                let prefix = prefix.to_string();
                std::thread::spawn(move || {
                    runtime::block_on(write_loop(config, w, prefix, max_per_writer, shared))
                })
            })
            .collect();
        Self {
            stop,
            acked,
            threads,
        }
    }

    /// Writes acknowledged so far by all writers.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }

    /// Waits until `more` further writes are acknowledged; false if `timeout` passed first.
    pub fn wait_for_more_acks(&self, more: usize, timeout: Duration) -> bool {
        let target = self.acked() + more;
        let deadline = Instant::now() + timeout;
        while self.acked() < target {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Stops the writers and returns their logs.
    pub fn stop(self) -> Vec<WriterLog> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .map(|t| t.join().expect("writer thread panicked"))
            .collect()
    }
}

async fn write_loop(
    config: ClientConfig,
    writer: usize,
    prefix: String,
    max: usize,
    (stop, acked): (Arc<AtomicBool>, Arc<AtomicUsize>),
) -> WriterLog {
    let mut log = WriterLog {
        writer,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        match Client::connect(config.clone()).await {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => panic!("writer {writer} cannot connect: {e}"),
            Err(_) => runtime::sleep(Duration::from_millis(100)).await,
        }
    };
    let counter = format!("{prefix}/ctr/{writer}");
    for seq in 0..max {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let key = format!("{prefix}/{writer}/{seq:06}");
        let put = |k: &str, v: String| RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: k.as_bytes().to_vec().into(),
                value: v.into_bytes().into(),
                ..Default::default()
            })),
        };
        let txn = TxnRequest {
            success: vec![put(&key, seq.to_string()), put(&counter, seq.to_string())],
            ..Default::default()
        };
        match client.txn(txn).await {
            Ok(resp) => {
                log.acked.push(Ack {
                    key,
                    revision: resp.header.map_or(0, |h| h.revision),
                    at: Instant::now(),
                });
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                log.unknown.push(key);
                // Do not spin while the cluster has no leader.
                runtime::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    client.close();
    log
}

/// Checks a converged dump against the writers' logs under `prefix`: every acknowledged write
/// is present at the revision it was acknowledged with; every present key was written by a
/// writer (acknowledged or in doubt); every key was applied exactly once (version 1, created
/// at its mod revision); each counter's version equals the number of its writer's keys.
/// Returns a description of every violation (empty = consistent).
pub fn check_writes(dump: &Dump, prefix: &str, logs: &[WriterLog]) -> Vec<String> {
    let mut problems = Vec::new();
    for log in logs {
        let w = log.writer;
        let own = format!("{prefix}/{w}/");
        let present: BTreeMap<&[u8], &KeyValue> = dump
            .kvs
            .iter()
            .filter(|(k, _)| k.starts_with(own.as_bytes()))
            .map(|(k, kv)| (k.as_slice(), kv))
            .collect();
        for ack in &log.acked {
            match present.get(ack.key.as_bytes()) {
                None => problems.push(format!(
                    "acknowledged {} (rev {}) lost",
                    ack.key, ack.revision
                )),
                Some(kv) if kv.mod_revision != ack.revision => problems.push(format!(
                    "{} acknowledged at rev {} but stored at rev {}",
                    ack.key, ack.revision, kv.mod_revision
                )),
                Some(_) => {}
            }
        }
        for (key, kv) in &present {
            let name = String::from_utf8_lossy(key);
            let known = log.acked.iter().any(|a| a.key.as_bytes() == *key)
                || log.unknown.iter().any(|u| u.as_bytes() == *key);
            if !known {
                problems.push(format!("{name} present but never written"));
            }
            if kv.version != 1 || kv.create_revision != kv.mod_revision {
                problems.push(format!(
                    "{name} applied more than once: version {} create {} mod {}",
                    kv.version, kv.create_revision, kv.mod_revision
                ));
            }
        }
        let counter = format!("{prefix}/ctr/{w}");
        let applied = dump.kvs.get(counter.as_bytes()).map_or(0, |kv| kv.version);
        if applied != present.len() as i64 {
            problems.push(format!(
                "{counter} version {applied} but {} of writer {w}'s keys are present",
                present.len()
            ));
        }
    }
    problems
}
