//! etcd's `--strict-reconfig-check` side by side with the real etcd, three members each, one
//! killed: with the check (etcd's default) `etcdctl member add` is refused with etcd's
//! `etcdserver: unhealthy cluster` (adding a voter would need three of four connected), and
//! removing the killed member is allowed (it is not part of the active quorum); with
//! `--strict-reconfig-check=false` the add is accepted.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use qraft_tests::cluster::ClusterOptions;
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::etcd::require_etcd;
use qraft_tests::etcd_cluster::{EtcdCluster, free_port};
use qraft_tests::etcdctl::{Etcdctl, require_etcdctl};

/// Longer than etcd's 5 s health interval: every link counts as connected afterwards.
const SETTLE: Duration = Duration::from_secs(6);
/// Longer than qraft's peer idle timeout (2 s): the killed member's link is down afterwards
/// (etcd sees the TCP connection close at once).
const NOTICE_DOWN: Duration = Duration::from_secs(3);

/// etcdctl's answer: success, or its `Error:` line.
fn answer(output: &std::process::Output) -> String {
    if output.status.success() {
        return "ok".to_owned();
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    (stderr.lines().rev())
        .find(|l| l.starts_with("Error:"))
        .unwrap_or("Error: (no message)")
        .to_owned()
}

/// The ID of the member named `name`, from `member list -w json`.
fn member_id(etcdctl: &Etcdctl, name: &str) -> String {
    let list = etcdctl.json(&["member", "list"], None).unwrap();
    let members = list["members"].as_array().unwrap();
    let member = members.iter().find(|m| m["name"] == name).unwrap();
    format!("{:x}", member["ID"].as_u64().unwrap())
}

/// With member 2 down, asked through member 0: adding a voter, then removing member 2.
fn reconfigure_with_one_down(etcdctl: &Etcdctl, down_name: &str, down_id: &str) -> Vec<String> {
    let new_peer = format!("--peer-urls=http://127.0.0.1:{}", free_port());
    let add = etcdctl.run(&["member", "add", "new", &new_peer], None);
    let remove = etcdctl.run(&["member", "remove", down_id], None);
    vec![
        format!("add: {}", answer(&add)),
        format!("remove {down_name}: {}", answer(&remove)),
    ]
}

fn qraft_cluster(flags: &[&str]) -> GrpcCluster {
    let options = ClusterOptions {
        extra_args: flags.iter().map(|f| f.to_string()).collect(),
        ..GrpcCluster::etcd_timing()
    };
    GrpcCluster::start(3, options)
}

#[test]
fn strict_reconfig_check_refuses_what_etcd_refuses() {
    require_etcd("strict_reconfig_check_refuses_what_etcd_refuses");
    require_etcdctl("strict_reconfig_check_refuses_what_etcd_refuses");

    let mut qraft = qraft_cluster(&[]);
    let down_name = qraft.cluster.nodes[2].name.clone();
    let down_id = member_id(&qraft.etcdctl(), &down_name);
    std::thread::sleep(SETTLE);
    qraft.cluster.kill(2);
    std::thread::sleep(NOTICE_DOWN);
    let qraft_seen = reconfigure_with_one_down(&qraft.etcdctl().only(0), &down_name, &down_id);
    drop(qraft);

    let mut etcd = EtcdCluster::start();
    let down_id = member_id(&etcd.etcdctl(), "m2");
    std::thread::sleep(SETTLE);
    etcd.kill(2);
    std::thread::sleep(NOTICE_DOWN);
    let etcd_seen = reconfigure_with_one_down(&etcd.etcdctl().only(0), "m2", &down_id);
    drop(etcd);

    assert_eq!(
        etcd_seen,
        ["add: Error: etcdserver: unhealthy cluster", "remove m2: ok"]
    );
    assert_eq!(qraft_seen, etcd_seen);
}

#[test]
fn without_the_check_a_member_is_added_with_one_down() {
    require_etcd("without_the_check_a_member_is_added_with_one_down");
    require_etcdctl("without_the_check_a_member_is_added_with_one_down");
    let flags = ["--strict-reconfig-check=false"];

    let mut qraft = qraft_cluster(&flags);
    qraft.cluster.kill(2);
    std::thread::sleep(NOTICE_DOWN);
    let new_peer = format!("--peer-urls=http://127.0.0.1:{}", free_port());
    let qraft_add = qraft
        .etcdctl()
        .only(0)
        .run(&["member", "add", "new", &new_peer], None);
    drop(qraft);

    let mut etcd = EtcdCluster::start_with_flags(&flags);
    etcd.kill(2);
    std::thread::sleep(NOTICE_DOWN);
    let new_peer = format!("--peer-urls=http://127.0.0.1:{}", free_port());
    let etcd_add = etcd
        .etcdctl()
        .only(0)
        .run(&["member", "add", "new", &new_peer], None);
    drop(etcd);

    assert_eq!(answer(&etcd_add), "ok");
    assert_eq!(answer(&qraft_add), "ok");
}
