//! A member serves clients only once its own record (name, client URLs) is applied, as etcd
//! serves only after "published local member to cluster". Member 0 restarts with one more
//! advertised client URL while the other two are down: until a quorum is back it cannot
//! publish, so it must not answer; its first answer then lists the new URL (before, it answered
//! at once with the record of its previous life).
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use std::time::Duration;

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::{restart_with, wait_until};

#[test]
fn a_restarted_member_serves_only_after_publishing_its_client_urls() {
    let mut c = Cluster::start(3, ClusterOptions::default());
    c.kill(1);
    c.kill(2);
    // A port nothing listens on: only the member list ever shows it.
    let extra = "https://127.0.0.1:1";
    let advertised = format!("{},{extra}", c.nodes[0].client_url());
    restart_with(&mut c, 0, &["--advertise-client-urls", &advertised]);
    // Alone, member 0 cannot publish; give it time to (wrongly) start serving.
    std::thread::sleep(Duration::from_secs(2));
    let early = c.ctl(0, &["member", "list"]);
    c.spawn(1, "new");
    let listed = wait_until(
        "m0 to answer member list",
        Duration::from_secs(30),
        || match c.ctl(0, &["member", "list"]) {
            (true, out, _) => Ok(out),
            (false, _, err) => Err(err),
        },
    );
    assert!(
        !early.0,
        "m0 answered before it could publish its client URLs: {}",
        early.1
    );
    assert!(
        listed.contains(extra),
        "m0's first member list lacks its new client URL: {listed}"
    );
}
