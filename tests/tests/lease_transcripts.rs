//! Transcript tests of the lessor: each script in `testdata/lease/` drives one `Lessor` with an
//! explicit clock; every command's output is recorded and snapshotted.

// Test harness: reading the scripts is the runner's IO, and a failed write to a String is a bug.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

use std::fmt::Write as _;

use qraft_core::backend::{Backend, MemBackend, WriteTxn};
use qraft_core::lease::{Lessor, LessorConfig, load_leases};
use qraft_proto::Bytes;

/// The lessor under test, and the backend its replicated changes are persisted to, as the
/// state machine does in its apply transaction.
struct Runner {
    lessor: Lessor,
    backend: MemBackend,
    now_ms: u64,
}

impl Runner {
    fn new() -> Self {
        Runner {
            lessor: Lessor::new(LessorConfig::default()),
            backend: MemBackend::new(),
            now_ms: 0,
        }
    }

    fn persist(&self, ids: &[i64]) {
        let mut txn = self.backend.write_txn().unwrap();
        for &id in ids {
            self.lessor.persist(&mut txn, id).unwrap();
        }
        txn.commit().unwrap();
    }

    fn run(&mut self, words: &[&str]) -> String {
        let num = |i: usize| -> i64 { words[i].parse().expect("number argument") };
        match words[0] {
            "config" => {
                let mut config = LessorConfig::default();
                for word in &words[1..] {
                    let (name, value) = word.split_once('=').expect("name=value");
                    let value: u64 = value.parse().expect("number");
                    match name {
                        "seed" => config.seed = value,
                        "min-ttl" => config.min_ttl_secs = value as i64,
                        "checkpoint-interval-ms" => config.checkpoint_interval_ms = value,
                        "checkpoints" => config.checkpoints_enabled = value != 0,
                        "max-revokes" => config.max_revokes_per_call = value as usize,
                        "max-checkpoints" => config.max_checkpoints_per_request = value as usize,
                        "retry-ms" => config.expired_retry_ms = value,
                        other => panic!("unknown config {other}"),
                    }
                }
                self.lessor = Lessor::new(config);
                self.backend = MemBackend::new();
                "ok".into()
            }
            "now" => {
                self.now_ms = num(1) as u64;
                format!("now={}", self.now_ms)
            }
            "advance" => {
                self.now_ms += num(1) as u64;
                format!("now={}", self.now_ms)
            }
            "assign-id" => format!("id={}", self.lessor.assign_id()),
            "grant" => match self.lessor.grant(num(1), num(2), self.now_ms) {
                Ok(lease) => {
                    let (id, ttl) = (lease.id, lease.ttl);
                    self.persist(&[id]);
                    format!("granted id={id} ttl={ttl}")
                }
                Err(err) => format!("error: {err}"),
            },
            "revoke" => match self.lessor.revoke(num(1)) {
                Ok(keys) => {
                    self.persist(&[num(1)]);
                    format!("revoked; delete keys {}", show_keys(&keys))
                }
                Err(err) => format!("error: {err}"),
            },
            "attach" => {
                let mut out = String::new();
                for key in &words[2..] {
                    match self.lessor.attach(num(1), Bytes::from(key.to_string())) {
                        Ok(()) => writeln!(out, "attached {key}").unwrap(),
                        Err(err) => writeln!(out, "{key}: error: {err}").unwrap(),
                    }
                }
                out.trim_end().to_string()
            }
            "detach" => {
                self.lessor.detach(words[1].as_bytes());
                "ok".into()
            }
            "owner" => format!("{:?}", self.lessor.lease_of_key(words[1].as_bytes())),
            "keepalive" => match self.lessor.keep_alive(num(1), self.now_ms) {
                Ok(resp) => format!("id={} ttl={}", resp.id, resp.ttl),
                Err(err) => format!("error: {err}"),
            },
            "ttl" => {
                let resp =
                    self.lessor
                        .time_to_live(num(1), words.get(2) == Some(&"keys"), self.now_ms);
                format!(
                    "id={} ttl={} granted={} keys={}",
                    resp.id,
                    resp.ttl,
                    resp.granted_ttl,
                    show_keys(&resp.keys)
                )
            }
            "list" => {
                let ids: Vec<String> = self
                    .lessor
                    .leases()
                    .leases
                    .iter()
                    .map(|l| l.id.to_string())
                    .collect();
                format!("[{}]", ids.join(" "))
            }
            "promote" => {
                self.lessor.promote(num(1) as u64, self.now_ms);
                "primary".into()
            }
            "demote" => {
                self.lessor.demote();
                "not primary".into()
            }
            "expired" => format!("{:?}", self.lessor.expired(self.now_ms)),
            // Takes the due checkpoints and applies them, as their replication would.
            "checkpoints" => match self.lessor.due_checkpoints(self.now_ms) {
                None => "none".into(),
                Some(request) => {
                    self.lessor.apply_checkpoints(&request, self.now_ms);
                    let ids: Vec<i64> = request.checkpoints.iter().map(|c| c.id).collect();
                    self.persist(&ids);
                    let parts: Vec<String> = request
                        .checkpoints
                        .iter()
                        .map(|c| format!("{}:{}", c.id, c.remaining_ttl))
                        .collect();
                    format!("applied [{}]", parts.join(" "))
                }
            },
            // A member restart: only what was persisted survives; keys are re-attached from
            // the key space (here: the keys the old lessor knew).
            "restart" => {
                let records = load_leases(&self.backend.read_txn().unwrap()).unwrap();
                let keys: Vec<(i64, Bytes)> = records
                    .iter()
                    .filter_map(|r| self.lessor.get(r.id))
                    .flat_map(|lease| lease.keys.iter().map(move |k| (lease.id, k.clone())))
                    .collect();
                let mut lessor = Lessor::new(self.lessor.config().clone());
                lessor.restore(records.iter().copied());
                for (id, key) in keys {
                    lessor.attach(id, key).unwrap();
                }
                self.lessor = lessor;
                format!("restarted with {} leases", records.len())
            }
            "dump" => {
                let mut out = String::new();
                for record in self.lessor.records() {
                    let lease = self.lessor.get(record.id).expect("lease of record");
                    writeln!(
                        out,
                        "lease {} ttl={} remaining_ttl={} expiry={} keys={}",
                        lease.id,
                        lease.ttl,
                        lease.remaining_ttl,
                        lease.expiry_ms().map_or("-".into(), |e| e.to_string()),
                        show_keys(&lease.keys.iter().cloned().collect::<Vec<_>>())
                    )
                    .unwrap();
                }
                if out.is_empty() {
                    "no leases".into()
                } else {
                    out.trim_end().to_string()
                }
            }
            other => panic!("unknown command {other}"),
        }
    }
}

fn show_keys(keys: &[Bytes]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    format!("[{}]", keys.join(" "))
}

#[test]
fn lease_transcripts() {
    insta::glob!("../testdata/lease", "*.txt", |path| {
        let script = std::fs::read_to_string(path).unwrap();
        let mut runner = Runner::new();
        let transcript = qraft_tests::transcript::run_script(&script, |line, out| {
            let words: Vec<&str> = line.split_whitespace().collect();
            writeln!(out, "{}", runner.run(&words)).unwrap();
        });
        insta::assert_snapshot!(transcript);
    });
}
