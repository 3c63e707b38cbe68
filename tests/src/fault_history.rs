//! Register histories for fault tests: clients over the QUIC client library and over etcd's
//! gRPC API (the `etcd-client` crate) that read, write and compare-and-set, and the
//! linearizability check run on what they recorded.
//!
//! Register keys live under `lin/{epoch}/{k}`: each fault round starts a new epoch, and a key
//! takes at most [`OPS_PER_KEY`] operations, which keeps every key's history within reach of
//! the simulation's Wing–Gong checker ([`crate::raft_sim::linearizability`]). Values are unique
//! per write (`client * 1_000_000 + seq`), so a read names the write it saw, and a compare on a
//! key's `mod_revision` is a compare on the value that revision wrote.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use qraft_io::client::{Client, ClientConfig};
use qraft_io::runtime;
use qraft_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use qraft_proto::etcdserverpb::{
    Compare, PutRequest, RangeRequest, RequestOp, ResponseHeader, TxnRequest, request_op,
    response_op,
};
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

/// What a register client last learned of a key: its value and `mod_revision` (`None`, 0: the
/// key did not exist). A compare on `mod_revision` is a compare on the value: every write puts
/// a value no other write puts, so the key holds that value exactly while its `mod_revision` is
/// the one that write made.
type Known = HashMap<String, (Option<u64>, i64)>;

/// One register step: a linearizable read, a write of a unique value, or a compare-and-set
/// (a txn comparing the value or the `mod_revision`, putting a unique value if equal, and
/// reading the key otherwise).
#[derive(Clone)]
enum Step {
    Read,
    Write(u64),
    Cas {
        expect: Option<u64>,
        on: CasOn,
        new: u64,
    },
}

/// What a compare-and-set compares.
#[derive(Clone, Copy)]
enum CasOn {
    /// `value == v` (etcd's compare on the value of a missing key is false, so `expect` is
    /// never `None` here).
    Value(u64),
    /// `mod_revision == r` (0: the key does not exist).
    ModRevision(i64),
}

/// What a step answered; a failed call (the outcome of a write unknown) is `None` instead.
enum Answer {
    Read(Option<u64>, i64),
    Written(i64),
    Swapped(i64),
    NotSwapped(Option<u64>, i64),
}

fn next_step(
    rng: &mut SmallRng,
    client: usize,
    seq: &mut u64,
    known: Option<&(Option<u64>, i64)>,
) -> Step {
    let roll = rng.random_range(0..10);
    if roll < 4 {
        return Step::Read;
    }
    *seq += 1;
    let new = client as u64 * 1_000_000 + *seq;
    match known {
        Some(&(expect, mod_revision)) if roll >= 7 => {
            let on = match expect {
                Some(v) if rng.random_bool(0.5) => CasOn::Value(v),
                _ => CasOn::ModRevision(mod_revision),
            };
            Step::Cas { expect, on, new }
        }
        _ => Step::Write(new),
    }
}

fn parse_value(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Turns a step and its answer into a record (`None` for a failed read, which constrains
/// nothing) and updates what the client knows of the key. Each executor answers a step with
/// the answer of its kind; any other pairing counts as an unknown outcome.
fn to_record(
    shared: &Shared,
    known: &mut Known,
    (client, api, key): (usize, Api, String),
    step: Step,
    call: u64,
    answer: Option<Answer>,
) -> Option<Record> {
    let now = shared.now();
    let (kind, ret) = match (step, answer) {
        (Step::Read, Some(Answer::Read(v, rev))) => {
            known.insert(key.clone(), (v, rev));
            (OpKind::Read(v), Some(now))
        }
        (Step::Read, _) => return None,
        (Step::Write(v), Some(Answer::Written(rev))) => {
            known.insert(key.clone(), (Some(v), rev));
            (OpKind::Write(v), Some(now))
        }
        (Step::Write(v), _) => (OpKind::Write(v), None),
        (Step::Cas { expect, new, .. }, Some(Answer::Swapped(rev))) => {
            known.insert(key.clone(), (Some(new), rev));
            (OpKind::Cas { expect, new }, Some(now))
        }
        (Step::Cas { expect, .. }, Some(Answer::NotSwapped(found, rev))) => {
            known.insert(key.clone(), (found, rev));
            (OpKind::CasFailed { expect, found }, Some(now))
        }
        (Step::Cas { expect, new, .. }, _) => (OpKind::Cas { expect, new }, None),
    };
    Some(Record {
        client,
        api,
        key,
        kind,
        call,
        ret,
    })
}

/// Runs register steps until [`Shared::stop`]: picks a key, chooses a step from what it knows
/// of the key, runs it with `exec` and records the outcome (pausing 20 ms after a failure).
async fn register_loop<F, Fut>(
    shared: &Shared,
    (client, api, seed): (usize, Api, u64),
    mut exec: F,
    sleep: impl Fn(Duration) -> Pin<Box<dyn Future<Output = ()>>>,
) where
    F: FnMut(String, &Step) -> Fut,
    Fut: Future<Output = Option<Answer>>,
{
    let mut rng = SmallRng::seed_from_u64(seed ^ (client as u64).rotate_left(17));
    let mut known = Known::new();
    let mut seq = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(key) = shared.pick_key(&mut rng) else {
            sleep(Duration::from_millis(50)).await;
            continue;
        };
        let step = next_step(&mut rng, client, &mut seq, known.get(&key));
        let call = shared.now();
        let answer = exec(key.clone(), &step).await;
        if answer.is_none() {
            sleep(Duration::from_millis(20)).await;
        }
        if let Some(record) = to_record(shared, &mut known, (client, api, key), step, call, answer)
        {
            shared.record(record);
        }
    }
}

/// A txn: if `on` holds for `key`, put `new`; otherwise read `key`.
fn cas_txn(key: &str, on: CasOn, new: u64) -> TxnRequest {
    let (target, target_union) = match on {
        CasOn::Value(v) => (
            CompareTarget::Value,
            TargetUnion::Value(v.to_string().into_bytes().into()),
        ),
        CasOn::ModRevision(r) => (CompareTarget::Mod, TargetUnion::ModRevision(r)),
    };
    let key: Vec<u8> = key.as_bytes().to_vec();
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: target as i32,
            key: key.clone().into(),
            target_union: Some(target_union),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: key.clone().into(),
                value: new.to_string().into_bytes().into(),
                ..Default::default()
            })),
        }],
        failure: vec![RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest {
                key: key.into(),
                ..Default::default()
            })),
        }],
    }
}

/// A step over the QUIC client library.
async fn quic_step(c: &Client, key: String, step: &Step) -> Option<Answer> {
    let revision = |h: Option<ResponseHeader>| h.map_or(0, |h| h.revision);
    match *step {
        Step::Read => {
            let r = c
                .range(RangeRequest {
                    key: key.into_bytes().into(),
                    ..Default::default()
                })
                .await
                .ok()?;
            let kv = r.kvs.first();
            Some(Answer::Read(
                kv.and_then(|kv| parse_value(&kv.value)),
                kv.map_or(0, |kv| kv.mod_revision),
            ))
        }
        Step::Write(v) => {
            let r = c
                .put(PutRequest {
                    key: key.into_bytes().into(),
                    value: v.to_string().into_bytes().into(),
                    ..Default::default()
                })
                .await
                .ok()?;
            Some(Answer::Written(revision(r.header)))
        }
        Step::Cas { on, new, .. } => {
            let r = c.txn(cas_txn(&key, on, new)).await.ok()?;
            if r.succeeded {
                return Some(Answer::Swapped(revision(r.header)));
            }
            let range = r.responses.into_iter().find_map(|op| match op.response {
                Some(response_op::Response::ResponseRange(range)) => Some(range),
                _ => None,
            })?;
            let kv = range.kvs.first();
            Some(Answer::NotSwapped(
                kv.and_then(|kv| parse_value(&kv.value)),
                kv.map_or(0, |kv| kv.mod_revision),
            ))
        }
    }
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
            let Some(c) = connect_quic(&shared, config).await else {
                return;
            };
            register_loop(
                &shared,
                (client, Api::Quic, seed),
                |key, step| {
                    let c = &c;
                    let step = step.clone();
                    async move { quic_step(c, key, &step).await }
                },
                |d| Box::pin(runtime::sleep(d)),
            )
            .await;
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

/// A step over etcd's gRPC API.
async fn grpc_step(c: &mut etcd_client::Client, key: String, step: &Step) -> Option<Answer> {
    use etcd_client::{Compare as GrpcCompare, CompareOp, Txn, TxnOp, TxnOpResponse};
    let revision = |h: Option<&etcd_client::ResponseHeader>| h.map_or(0, |h| h.revision());
    let read = |kv: Option<&etcd_client::KeyValue>| {
        (
            kv.and_then(|kv| parse_value(kv.value())),
            kv.map_or(0, |kv| kv.mod_revision()),
        )
    };
    match *step {
        Step::Read => {
            let r = c.get(key.as_str(), None).await.ok()?;
            let (v, rev) = read(r.kvs().first());
            Some(Answer::Read(v, rev))
        }
        Step::Write(v) => {
            let r = c.put(key.as_str(), v.to_string(), None).await.ok()?;
            Some(Answer::Written(revision(r.header())))
        }
        Step::Cas { on, new, .. } => {
            let compare = match on {
                CasOn::Value(v) => {
                    GrpcCompare::value(key.as_str(), CompareOp::Equal, v.to_string())
                }
                CasOn::ModRevision(r) => {
                    GrpcCompare::mod_revision(key.as_str(), CompareOp::Equal, r)
                }
            };
            let txn = Txn::new()
                .when([compare])
                .and_then([TxnOp::put(key.as_str(), new.to_string(), None)])
                .or_else([TxnOp::get(key.as_str(), None)]);
            let r = c.txn(txn).await.ok()?;
            if r.succeeded() {
                return Some(Answer::Swapped(revision(r.header())));
            }
            let range = r.op_responses().into_iter().find_map(|op| match op {
                TxnOpResponse::Get(range) => Some(range),
                _ => None,
            })?;
            let (v, rev) = read(range.kvs().first());
            Some(Answer::NotSwapped(v, rev))
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
            let options = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(2));
            let c = loop {
                match etcd_client::Client::connect(&endpoints, Some(options.clone())).await {
                    Ok(c) => break c,
                    Err(_) if shared.stop.load(Ordering::SeqCst) => return,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            register_loop(
                &shared,
                (client, Api::Grpc, seed),
                |key, step| {
                    // The client is a cheap handle over one channel.
                    let mut c = c.clone();
                    let step = step.clone();
                    async move { grpc_step(&mut c, key, &step).await }
                },
                |d| Box::pin(tokio::time::sleep(d)),
            )
            .await;
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
