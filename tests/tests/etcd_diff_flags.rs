//! etcd's flags with behaviour a client sees, side by side with the real etcd started with the
//! same flags: `--max-txn-ops` (a txn over the limit refused with etcd's error, one at the limit
//! applied) and periodic `--auto-compaction-retention` (old revisions become "required revision
//! has been compacted" without anyone calling Compact).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use qraft_tests::cluster::ClusterOptions;
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::etcd::{EtcdProcess, require_etcd};
use qraft_tests::etcdctl::{Etcdctl, require_etcdctl};

const FLAGS: &[&str] = &[
    "--max-txn-ops=3",
    "--auto-compaction-mode=periodic",
    "--auto-compaction-retention=2s",
];

/// etcdctl's `txn` input: no compares, `ops` puts on success, no failure ops.
fn txn_of(ops: usize) -> String {
    let puts: String = (0..ops).map(|i| format!("put t{i} v\n")).collect();
    format!("\n{puts}\n\n")
}

/// etcdctl's answer: its output, or its `Error:` line (without the client's retry warnings,
/// which carry timestamps).
fn answer(output: &std::process::Output) -> String {
    if output.status.success() {
        return String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    (stderr.lines().rev())
        .find(|l| l.starts_with("Error:"))
        .unwrap_or("Error: (no message)")
        .to_owned()
}

/// What a client sees of the flags: the txn answers, then how long it took until a revision
/// written early reads as compacted.
fn observe(etcdctl: &Etcdctl) -> (Vec<String>, Duration) {
    let mut seen = Vec::new();
    for ops in [4, 3] {
        let output = etcdctl.run(&["txn"], Some(&txn_of(ops)));
        seen.push(format!("txn of {ops}: {}", answer(&output)));
    }
    // Revision 2 is the 3-op txn; later writes move the sampled revisions past it.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        assert!(etcdctl.succeeds(&["put", "k", "v"]));
        let output = etcdctl.run(&["get", "t0", "--rev=2"], None);
        if !output.status.success() {
            seen.push(format!("get --rev=2: {}", answer(&output)));
            return (seen, started.elapsed());
        }
        assert!(
            Instant::now() < deadline,
            "revision 2 still readable after 30 s: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn max_txn_ops_and_periodic_auto_compaction_as_etcd() {
    require_etcd("max_txn_ops_and_periodic_auto_compaction_as_etcd");
    require_etcdctl("max_txn_ops_and_periodic_auto_compaction_as_etcd");
    let options = ClusterOptions {
        extra_args: FLAGS.iter().map(|f| f.to_string()).collect(),
        ..GrpcCluster::etcd_timing()
    };
    let qraft = GrpcCluster::start(1, options);
    let (qraft_seen, qraft_took) = observe(&qraft.etcdctl());
    let etcd = EtcdProcess::start_with_flags(FLAGS);
    let (etcd_seen, etcd_took) = observe(&Etcdctl::plaintext(vec![etcd.client_addr.clone()]));
    println!("compacted after: qraft {qraft_took:?}, etcd {etcd_took:?}");
    assert_eq!(qraft_seen, etcd_seen);
    assert!(
        qraft_seen[0].contains("etcdserver: too many operations in txn request"),
        "{qraft_seen:?}"
    );
    assert!(
        qraft_seen[2].contains("required revision has been compacted"),
        "{qraft_seen:?}"
    );
    // The leader logs etcd's lines.
    let log = qraft.cluster.nodes[0].log_tail();
    assert!(
        log.contains("completed auto periodic compaction"),
        "no compaction in the log:\n{log}"
    );
}
