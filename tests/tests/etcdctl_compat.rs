//! The real etcdctl against qraft's etcd gRPC listener and against a real etcd: the same
//! commands, outputs as `-w json`, masked, compared line by line.

use std::path::PathBuf;

use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::etcd_cluster::{EtcdCluster, scratch_dir};
use qraft_tests::etcdctl::require_etcdctl;
use qraft_tests::etcdctl_script::run_script;

/// Two etcd clusters fed the same script give the same masked transcript: the masking hides
/// exactly what differs between clusters, so a difference against qraft is a real one.
#[test]
fn etcd_transcripts_agree_across_two_clusters() {
    require_etcdctl("etcd_transcripts_agree_across_two_clusters");
    let first = {
        let cluster = EtcdCluster::start();
        let scratch = Scratch::new("etcd-1");
        run_script(&cluster.etcdctl(), &scratch.0)
    };
    let second = {
        let cluster = EtcdCluster::start();
        let scratch = Scratch::new("etcd-2");
        run_script(&cluster.etcdctl(), &scratch.0)
    };
    assert_eq!(first, second);
    for expected in [
        "etcdserver: mvcc: required revision has been compacted",
        "etcdserver: mvcc: required revision is a future revision",
        "etcdserver: requested lease not found",
        "\"succeeded\":true",
        "\"health\":true",
        "etcdserver: permission denied",
        "etcdserver: authentication failed, invalid user ID or password",
        "Error: invalid permission type: bogus",
    ] {
        assert!(first.contains(expected), "{expected} in:\n{first}");
    }
}

/// etcdctl drives a 3-member qraft cluster (over `--listen-grpc-urls`) through the same
/// script as a 3-member etcd; the masked transcripts must be identical, errors included.
#[test]
fn qraft_answers_etcdctl_like_etcd() {
    require_etcdctl("qraft_answers_etcdctl_like_etcd");
    let expected = {
        let cluster = EtcdCluster::start();
        let scratch = Scratch::new("etcd");
        run_script(&cluster.etcdctl(), &scratch.0)
    };
    let actual = {
        let cluster = GrpcCluster::start(3, GrpcCluster::etcd_timing());
        let scratch = Scratch::new("qraft");
        run_script(&cluster.etcdctl(), &scratch.0)
    };
    let differences: Vec<String> = expected
        .lines()
        .zip(actual.lines())
        .filter(|(e, a)| e != a)
        .map(|(e, a)| format!("etcd:  {e}\nqraft: {a}"))
        .collect();
    assert!(
        differences.is_empty() && expected.lines().count() == actual.lines().count(),
        "qraft differs from etcd:\n{}\n\nqraft's whole transcript:\n{actual}",
        differences.join("\n")
    );
    // The lease calls a follower forwarded to the leader were answered, not refused.
    let answer_to = |command: &str| {
        let command = format!("$ etcdctl {command}");
        actual
            .lines()
            .skip_while(|line| *line != command)
            .nth(1)
            .unwrap_or_default()
    };
    assert!(
        answer_to("lease keep-alive --once <lease> (on the follower)").contains("\"TTL\":60"),
        "{actual}"
    );
    assert!(
        answer_to("lease timetolive <lease> --keys (on the follower)")
            .contains("\"ttl\":\"<remaining>\""),
        "{actual}"
    );
    for expected in [
        "snapshot file: ends with the sha256 of its data",
        "etcdserver: requested lease not found",
        "\"TTL\":2",
        "Finished defragmenting etcd member[<endpoint>]",
        "etcdserver: permission denied",
        "etcdserver: role is not granted to the user",
    ] {
        assert!(actual.contains(expected), "{expected} in:\n{actual}");
    }
}

/// A directory for snapshot files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Self {
        let dir = scratch_dir(&format!("etcdctl-{label}"));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
