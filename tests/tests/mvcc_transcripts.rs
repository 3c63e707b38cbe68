//! Transcript tests of the MVCC store: each `tests/testdata/mvcc/*.txt` script runs against a
//! fresh store on a `MemBackend`; every command is recorded with its output and snapshotted.
//!
//! Commands besides the KV requests of `common` (`put`, `get`, `del`, `txn` blocks):
//! `compact REV`, `bigtxn N` (a txn of N puts), `reopen` (rebuild the store from the backend), `leases ID...` (the lease ids
//! that exist), `status` (current and compact revision, indexed keys), `size N` (check a
//! request of N bytes against the request size limit).

// Tests read their scripts from disk; the IO ban is for the library.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use common::*;
use qraft_core::backend::{Backend, MemBackend, WriteTxn};
use qraft_core::mvcc::{MvccStore, validate};
use qraft_proto::etcdserverpb::CompactionRequest;

struct Runner {
    backend: MemBackend,
    store: MvccStore,
    leases: Vec<i64>,
}

impl Runner {
    fn new() -> Self {
        let backend = MemBackend::new();
        let store = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
        Self {
            backend,
            store,
            leases: Vec::new(),
        }
    }

    fn run(&mut self, line: &str, lines: &mut dyn Iterator<Item = String>, out: &mut String) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let leases = self.leases.clone();
        let lease_exists = move |id: i64| leases.contains(&id);
        match words[0] {
            "get" => {
                let req = parse_range(&words[1..]);
                match self.store.range(&self.backend.read_txn().unwrap(), &req) {
                    Ok(r) => fmt_range(&r, "", out),
                    Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                }
            }
            "put" => {
                let req = parse_put(&words[1..]);
                let mut txn = self.backend.write_txn().unwrap();
                match self.store.put(&mut txn, &req, &lease_exists) {
                    Ok(a) => {
                        fmt_put(&a.response, "", out);
                        fmt_events(&a.events, out);
                    }
                    Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                }
                txn.commit().unwrap();
            }
            "del" => {
                let req = parse_delete(&words[1..]);
                let mut txn = self.backend.write_txn().unwrap();
                match self.store.delete_range(&mut txn, &req) {
                    Ok(a) => {
                        fmt_delete(&a.response, "", out);
                        fmt_events(&a.events, out);
                    }
                    Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                }
                txn.commit().unwrap();
            }
            "txn" | "txn_ro" => {
                let req = parse_txn_block(lines);
                if words[0] == "txn_ro" {
                    let r = self
                        .store
                        .txn_read_only(&self.backend.read_txn().unwrap(), &req);
                    match r {
                        Ok(r) => fmt_txn(&r, "", out),
                        Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                    }
                    return;
                }
                let mut txn = self.backend.write_txn().unwrap();
                match self.store.txn(&mut txn, &req, &lease_exists) {
                    Ok(a) => {
                        fmt_txn(&a.response, "", out);
                        fmt_events(&a.events, out);
                    }
                    Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                }
                txn.commit().unwrap();
            }
            "bigtxn" => {
                // A txn with N puts of distinct keys (for the op limit).
                let n: usize = words[1].parse().unwrap();
                let req = qraft_proto::etcdserverpb::TxnRequest {
                    success: (0..n)
                        .map(|i| {
                            parse_op(&["put", &format!("big{i}"), "v"], &mut std::iter::empty())
                        })
                        .collect(),
                    ..Default::default()
                };
                let mut txn = self.backend.write_txn().unwrap();
                match self.store.txn(&mut txn, &req, &lease_exists) {
                    Ok(a) => out.push_str(&format!(
                        "txn rev={} responses={} events={}\n",
                        a.response.header.unwrap().revision,
                        a.response.responses.len(),
                        a.events.len()
                    )),
                    Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                }
                txn.commit().unwrap();
            }
            "compact" => {
                let req = CompactionRequest {
                    revision: words[1].parse().unwrap(),
                    physical: false,
                };
                let mut txn = self.backend.write_txn().unwrap();
                match self.store.compact(&mut txn, &req) {
                    Ok(r) => {
                        out.push_str(&format!("compacted rev={}\n", r.header.unwrap().revision))
                    }
                    Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                }
                txn.commit().unwrap();
            }
            "reopen" => {
                self.store = MvccStore::open(&self.backend.read_txn().unwrap()).unwrap();
                out.push_str("reopened\n");
            }
            "leases" => {
                self.leases = words[1..].iter().map(|w| w.parse().unwrap()).collect();
            }
            "status" => out.push_str(&format!(
                "current={} compacted={} keys={} backend_revisions={}\n",
                self.store.current_revision(),
                self.store.compact_revision(),
                self.store.indexed_keys(),
                self.backend.len(qraft_core::backend::Table::Key)
            )),
            "size" => {
                let n: usize = words[1].parse().unwrap();
                match validate::check_request_size(n, validate::MAX_REQUEST_BYTES) {
                    Ok(()) => out.push_str("ok\n"),
                    Err(e) => out.push_str(&format!("{}\n", fmt_error(&e))),
                }
            }
            other => panic!("unknown command {other}"),
        }
    }
}

#[test]
fn mvcc_transcripts() {
    insta::glob!("../testdata/mvcc", "*.txt", |path| {
        let script = std::fs::read_to_string(path).unwrap();
        let mut runner = Runner::new();
        let out = qraft_tests::transcript::run_script_with_blocks(
            &script,
            &["txn", "txn_ro"],
            |line, block, out| runner.run(line, block, out),
        );
        insta::assert_snapshot!(out);
    });
}
