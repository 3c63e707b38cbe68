//! etcdctl 3.4's per-endpoint commands (`endpoint status`, `endpoint hashkv`, `defrag`,
//! `move-leader`) with `http://` endpoints, as etcd's e2e suite gives them: etcdctl then sends
//! `:authority` = `http://127.0.0.1:PORT`, which etcd (grpc-go) accepts and the h2 crate
//! refuses with RST_STREAM PROTOCOL_ERROR unless qraft's listener fixes the header first.
//!
//! Needs the binaries of the same profile: `cargo build --release --workspace --bins`.

use serde_json::Value;

use qraft_tests::cluster::ClusterOptions;
use qraft_tests::cluster_grpc::GrpcCluster;
use qraft_tests::etcdctl::{Etcdctl, require_etcdctl};

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn per_endpoint_commands_accept_url_endpoints() {
    require_etcdctl("per_endpoint_commands_accept_url_endpoints");
    let cluster = GrpcCluster::start(3, ClusterOptions::default());
    let ctl = Etcdctl::plaintext(cluster.endpoints());
    assert!(ctl.endpoints()[0].starts_with("http://"));

    let status = ctl.run(&["endpoint", "status", "-w", "json"], None);
    assert!(
        status.status.success(),
        "endpoint status: {}",
        text(&status)
    );
    let statuses: Vec<Value> =
        serde_json::from_slice(&status.stdout).expect("endpoint status JSON");
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    let leader = statuses[0]["Status"]["leader"].as_u64().expect("leader id");
    let follower = statuses
        .iter()
        .map(|s| {
            s["Status"]["header"]["member_id"]
                .as_u64()
                .expect("member id")
        })
        .find(|id| *id != leader)
        .expect("a follower");

    let hashkv = ctl.run(&["endpoint", "hashkv"], None);
    assert!(
        hashkv.status.success(),
        "endpoint hashkv: {}",
        text(&hashkv)
    );
    assert_eq!(String::from_utf8_lossy(&hashkv.stdout).lines().count(), 3);

    let defrag = ctl.run(&["defrag"], None);
    assert!(defrag.status.success(), "defrag: {}", text(&defrag));
    for endpoint in ctl.endpoints() {
        assert!(
            String::from_utf8_lossy(&defrag.stdout)
                .contains(&format!("Finished defragmenting etcd member[{endpoint}]")),
            "defrag: {}",
            text(&defrag)
        );
    }

    let moved = ctl.run(&["move-leader", &format!("{follower:x}")], None);
    assert!(moved.status.success(), "move-leader: {}", text(&moved));
    assert!(
        String::from_utf8_lossy(&moved.stdout).contains(&format!(
            "Leadership transferred from {leader:x} to {follower:x}"
        )),
        "move-leader: {}",
        text(&moved)
    );
}
