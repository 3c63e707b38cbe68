//! Client histories for fault tests: register clients over the QUIC client library and over
//! etcd's gRPC API (the `etcd-client` crate), a resuming watcher, and the checks run on what
//! they recorded.
//!
//! Register keys live under `lin/{epoch}/{k}`: each fault round starts a new epoch, and a key
//! takes at most [`OPS_PER_KEY`] operations, which keeps every key's history within reach of
//! the simulation's Wing–Gong checker ([`crate::raft_sim::linearizability`]). Values are unique
//! per write (`client * 1_000_000 + seq`), so a read names the write it saw.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use qraft_io::client::{Client, ClientConfig};
use qraft_io::runtime;
use qraft_proto::etcdserverpb::{PutRequest, RangeRequest, WatchCreateRequest};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::raft_sim::linearizability::{Op, OpKind, is_linearizable};

/// Operations one register key takes at most (the checker's limit is 128).
pub const OPS_PER_KEY: usize = 100;
/// Register keys per epoch.
pub const KEYS_PER_EPOCH: usize = 24;

/// How a client reached the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Quic,
    Grpc,
}

/// One register operation as a client saw it; times in microseconds since the history began.
#[derive(Debug, Clone)]
pub struct Record {
    pub client: usize,
    pub api: Api,
    pub key: String,
    pub kind: OpKind,
    pub call: u64,
    /// `None`: the outcome is unknown (a write that failed or timed out).
    pub ret: Option<u64>,
}

/// What every client shares: the clock, the records, when operations succeeded, the epoch and
/// each key's operation count.
pub struct Shared {
    pub start: Instant,
    pub records: Mutex<Vec<Record>>,
    /// Microsecond times of every successful operation (of any client), for the liveness check.
    pub oks: Mutex<Vec<u64>>,
    pub epoch: AtomicUsize,
    budget: Mutex<HashMap<String, usize>>,
    pub stop: AtomicBool,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            start: Instant::now(),
            records: Mutex::new(Vec::new()),
            oks: Mutex::new(Vec::new()),
            epoch: AtomicUsize::new(0),
            budget: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        })
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Records a successful operation of any kind at this instant.
    pub fn ok(&self) {
        let t = self.now();
        self.oks.lock().expect("oks").push(t);
    }

    /// A key of the current epoch with operations left, or `None` when all are used up.
    fn pick_key(&self, rng: &mut SmallRng) -> Option<String> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut budget = self.budget.lock().expect("budget");
        let first = rng.random_range(0..KEYS_PER_EPOCH);
        (0..KEYS_PER_EPOCH).find_map(|d| {
            let key = format!("lin/{epoch:03}/{:02}", (first + d) % KEYS_PER_EPOCH);
            let used = budget.entry(key.clone()).or_default();
            (*used < OPS_PER_KEY).then(|| {
                *used += 1;
                key
            })
        })
    }

    fn record(&self, r: Record) {
        if r.ret.is_some() {
            self.ok();
        }
        self.records.lock().expect("records").push(r);
    }

    /// The longest stretch in `[from, to]` (microseconds) without a successful operation.
    pub fn longest_gap(&self, from: u64, to: u64) -> u64 {
        let mut oks: Vec<u64> = self
            .oks
            .lock()
            .expect("oks")
            .iter()
            .copied()
            .filter(|&t| t >= from && t <= to)
            .collect();
        oks.sort_unstable();
        let mut last = from;
        let mut worst = 0;
        for t in oks.into_iter().chain([to]) {
            worst = worst.max(t.saturating_sub(last));
            last = t;
        }
        worst
    }
}

/// One register step: a linearizable read or a write of a unique value.
enum Step {
    Read,
    Write(u64),
}

fn next_step(rng: &mut SmallRng, client: usize, seq: &mut u64) -> Step {
    if rng.random_bool(0.5) {
        Step::Read
    } else {
        *seq += 1;
        Step::Write(client as u64 * 1_000_000 + *seq)
    }
}

fn parse_value(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Starts a register client over the QUIC client library.
pub fn start_quic_client(
    shared: Arc<Shared>,
    config: ClientConfig,
    client: usize,
    seed: u64,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        runtime::block_on(async move {
            let mut rng = SmallRng::seed_from_u64(seed ^ client as u64);
            let Some(c) = connect_quic(&shared, config).await else {
                return;
            };
            let mut seq = 0;
            while !shared.stop.load(Ordering::SeqCst) {
                let Some(key) = shared.pick_key(&mut rng) else {
                    runtime::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let call = shared.now();
                let (kind, ret) = match next_step(&mut rng, client, &mut seq) {
                    Step::Read => {
                        let r = c
                            .range(RangeRequest {
                                key: key.clone().into_bytes().into(),
                                ..Default::default()
                            })
                            .await;
                        match r {
                            Ok(r) => (
                                OpKind::Read(r.kvs.first().and_then(|kv| parse_value(&kv.value))),
                                Some(shared.now()),
                            ),
                            // A failed read constrains nothing.
                            Err(_) => {
                                runtime::sleep(Duration::from_millis(20)).await;
                                continue;
                            }
                        }
                    }
                    Step::Write(v) => {
                        let r = c
                            .put(PutRequest {
                                key: key.clone().into_bytes().into(),
                                value: v.to_string().into_bytes().into(),
                                ..Default::default()
                            })
                            .await;
                        (OpKind::Write(v), r.ok().map(|_| shared.now()))
                    }
                };
                if ret.is_none() {
                    runtime::sleep(Duration::from_millis(20)).await;
                }
                shared.record(Record {
                    client,
                    api: Api::Quic,
                    key,
                    kind,
                    call,
                    ret,
                });
            }
            c.close();
        })
    })
}

async fn connect_quic(shared: &Shared, config: ClientConfig) -> Option<Client> {
    loop {
        match Client::connect(config.clone()).await {
            Ok(c) => return Some(c),
            Err(_) if shared.stop.load(Ordering::SeqCst) => return None,
            Err(_) => runtime::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Starts a register client over etcd's gRPC API (`http://host:port` endpoints).
pub fn start_grpc_client(
    shared: Arc<Shared>,
    endpoints: Vec<String>,
    client: usize,
    seed: u64,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        tokio.block_on(async move {
            let mut rng = SmallRng::seed_from_u64(seed ^ (client as u64).rotate_left(17));
            let options = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(2));
            let mut c = loop {
                match etcd_client::Client::connect(&endpoints, Some(options.clone())).await {
                    Ok(c) => break c,
                    Err(_) if shared.stop.load(Ordering::SeqCst) => return,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            let mut seq = 0;
            while !shared.stop.load(Ordering::SeqCst) {
                let Some(key) = shared.pick_key(&mut rng) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let call = shared.now();
                let (kind, ret) = match next_step(&mut rng, client, &mut seq) {
                    Step::Read => match c.get(key.as_str(), None).await {
                        Ok(r) => (
                            OpKind::Read(r.kvs().first().and_then(|kv| parse_value(kv.value()))),
                            Some(shared.now()),
                        ),
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    },
                    Step::Write(v) => {
                        let r = c.put(key.as_str(), v.to_string(), None).await;
                        (OpKind::Write(v), r.ok().map(|_| shared.now()))
                    }
                };
                if ret.is_none() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                shared.record(Record {
                    client,
                    api: Api::Grpc,
                    key,
                    kind,
                    call,
                    ret,
                });
            }
        })
    })
}

/// Checks every key's history with the Wing–Gong search; returns the keys that are not
/// linearizable.
pub fn non_linearizable_keys(records: &[Record]) -> Vec<String> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    for r in records {
        by_key.entry(&r.key).or_default().push(Op {
            kind: r.kind.clone(),
            call: r.call,
            ret: r.ret,
        });
    }
    by_key
        .into_iter()
        .filter(|(_, ops)| !is_linearizable(ops))
        .map(|(k, _)| k.to_string())
        .collect()
}

/// The history as text, one operation a line, by key and call time.
pub fn format_history(records: &[Record]) -> String {
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by(|a, b| (&a.key, a.call).cmp(&(&b.key, b.call)));
    let mut out = String::new();
    for r in sorted {
        let ret = r.ret.map_or("?".to_string(), |t| t.to_string());
        let _ = writeln!(
            out,
            "{} client {} {:?} call {} ret {} {:?}",
            r.key, r.client, r.api, r.call, ret, r.kind
        );
    }
    out
}

/// One event the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub key: Vec<u8>,
    pub mod_revision: i64,
    pub delete: bool,
}

/// A watcher on a prefix from a revision on; the client library resumes it across failures.
pub struct Watcher {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<String>>,
}

impl Watcher {
    pub fn start(config: ClientConfig, prefix: &str, start_revision: i64) -> Watcher {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (into, halt) = (seen.clone(), stop.clone());
        let key = prefix.as_bytes().to_vec();
        let mut end = key.clone();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let thread = std::thread::spawn(move || {
            runtime::block_on(async move {
                let mut errors = Vec::new();
                let client = loop {
                    match Client::connect(config.clone()).await {
                        Ok(c) => break c,
                        Err(_) if halt.load(Ordering::SeqCst) => return errors,
                        Err(_) => runtime::sleep(Duration::from_millis(100)).await,
                    }
                };
                let create = WatchCreateRequest {
                    key: key.into(),
                    range_end: end.into(),
                    start_revision,
                    ..Default::default()
                };
                let mut watch = loop {
                    match client.watch(create.clone()).await {
                        Ok(w) => break w,
                        Err(_) if halt.load(Ordering::SeqCst) => return errors,
                        Err(_) => runtime::sleep(Duration::from_millis(100)).await,
                    }
                };
                while !halt.load(Ordering::SeqCst) {
                    match runtime::timeout(Duration::from_millis(200), watch.next()).await {
                        Err(_) => {}
                        Ok(None) => {
                            errors.push("watch stream ended".to_string());
                            break;
                        }
                        Ok(Some(Err(e))) => {
                            // The library resumes on the next call; note it and go on.
                            errors.push(format!("watch error (resumed): {e}"));
                            runtime::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(Some(Ok(resp))) => {
                            if resp.canceled {
                                errors.push(format!("watch canceled: {}", resp.cancel_reason));
                                break;
                            }
                            let mut seen = into.lock().expect("seen");
                            for ev in resp.events {
                                if let Some(kv) = ev.kv {
                                    seen.push(Seen {
                                        key: kv.key.to_vec(),
                                        mod_revision: kv.mod_revision,
                                        delete: ev.r#type != 0,
                                    });
                                }
                            }
                        }
                    }
                }
                watch.close();
                client.close();
                errors
            })
        });
        Watcher { seen, stop, thread }
    }

    /// The highest revision delivered so far.
    pub fn last_revision(&self) -> i64 {
        self.seen
            .lock()
            .expect("seen")
            .last()
            .map_or(0, |s| s.mod_revision)
    }

    /// Stops the watcher; returns what it saw and the errors it met.
    pub fn stop(self) -> (Vec<Seen>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let errors = self.thread.join().expect("watcher thread panicked");
        let seen = self.seen.lock().expect("seen").clone();
        (seen, errors)
    }
}

/// Checks the watcher's events against the final content of its prefix (`expected`: every
/// `(key, mod_revision)` of a put since the watch began, from the writers' keys, which are
/// written once each): revisions never go backwards, no event is delivered twice, and every
/// expected put was delivered. Returns the problems found.
pub fn check_watch(seen: &[Seen], expected: &[(Vec<u8>, i64)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut last = 0;
    let mut delivered = std::collections::HashSet::new();
    for s in seen {
        if s.mod_revision < last {
            problems.push(format!(
                "watch went back from revision {last} to {} ({})",
                s.mod_revision,
                String::from_utf8_lossy(&s.key)
            ));
        }
        last = last.max(s.mod_revision);
        if !delivered.insert((s.key.clone(), s.mod_revision)) {
            problems.push(format!(
                "watch delivered {} at revision {} twice",
                String::from_utf8_lossy(&s.key),
                s.mod_revision
            ));
        }
    }
    for (key, rev) in expected {
        if !delivered.contains(&(key.clone(), *rev)) {
            problems.push(format!(
                "watch missed {} at revision {rev}",
                String::from_utf8_lossy(key)
            ));
        }
    }
    problems.truncate(20);
    problems
}
