//! Membership helpers for the multi-process tests: adding members to a running [`Cluster`],
//! reading `qraftctl member list -w json` from each member, and waiting for conditions.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Cluster, Node, free_udp_port};

impl Cluster {
    /// Adds a member named `name` to the test cluster (fresh ports, the cluster's CA); it is
    /// not started. Returns its index.
    pub fn add_node(&mut self, name: &str) -> usize {
        self.nodes.push(Node::new(&self.root, name));
        let i = self.nodes.len() - 1;
        self.install_ca(i);
        i
    }

    /// Replaces member `slot` by a fresh one named `name` (new data dir, new peer port; the same
    /// host, namespace, client port and extra flags, so clients that knew the slot's endpoints
    /// reach the newcomer): `member remove` of the old one through `via`, kill -9 of its
    /// process (a removed member stops by itself; one already killed is gone), `member add`
    /// (as a learner if asked) and a start with `--initial-cluster-state existing`. Each
    /// membership call is retried until it succeeds or `timeout` passes — under faults a
    /// call can time out after it took effect, so "member not found" on a retried remove and
    /// "Peer URLs already exists" on a retried add count as done. Returns the new member's ID;
    /// panics after `timeout`.
    pub fn replace_node(
        &mut self,
        slot: usize,
        via: &[usize],
        name: &str,
        learner: bool,
        timeout: Duration,
    ) -> u64 {
        let deadline = Instant::now() + timeout;
        let old = self.nodes[slot].name.clone();
        let old_id = wait_for(timeout, &format!("the ID of {old}"), || {
            via.iter().find_map(|&i| self.member_id_by_name(i, &old))
        });
        let hex = format!("{old_id:x}");
        self.retry_ctl(via, &["member", "remove", &hex], deadline, |err| {
            err.contains("member not found")
        });
        self.kill(slot);

        let mut fresh = Node::new(&self.root, name);
        let prev = &self.nodes[slot];
        fresh.host = prev.host.clone();
        fresh.netns = prev.netns.clone();
        fresh.client_port = prev.client_port;
        fresh.extra_args = prev.extra_args.clone();
        // The port is probed in the test's namespace, not the member's: it may be the removed
        // member's. A fresh member on a removed member's peer URL could be taken for it by a
        // peer that has not applied the removal yet (joining finds itself by its peer URL).
        while fresh.peer_port == prev.peer_port {
            fresh.peer_port = free_udp_port();
        }
        self.nodes[slot] = fresh;
        self.install_ca(slot);
        let peer_urls = format!("--peer-urls={}", self.nodes[slot].peer_url());
        let mut add = vec!["member", "add", name, &peer_urls];
        if learner {
            add.push("--learner");
        }
        self.retry_ctl(via, &add, deadline, |err| {
            err.contains("Peer URLs already exists")
        });
        // Unstarted, it has no name yet in the member list: it is found by its peer URL.
        let peer_url = self.nodes[slot].peer_url();
        let id = wait_for(
            deadline.saturating_duration_since(Instant::now()),
            &format!("the ID of {name}"),
            || {
                via.iter()
                    .find_map(|&i| self.member_id_by_peer_url(i, &peer_url))
            },
        );
        self.spawn(slot, "existing");
        id
    }

    /// qraftctl through member `i` for a membership change, retried for up to `timeout` while
    /// the strict reconfiguration check answers `unhealthy cluster` (a link to a peer that is
    /// younger than etcd's 5 s health interval: the cluster, or a member, started just now), as
    /// an operator would retry. Returns the last (success, stdout, stderr).
    pub fn ctl_reconfigure(
        &self,
        i: usize,
        args: &[&str],
        timeout: Duration,
    ) -> (bool, String, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let (ok, out, err) = self.ctl(i, args);
            if ok || !err.contains("unhealthy cluster") || Instant::now() >= deadline {
                return (ok, out, err);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs qraftctl through each of `via` in turn until one succeeds or fails with an error
    /// that `done` accepts (the effect of an earlier try that timed out); panics at `deadline`.
    pub fn retry_ctl(
        &self,
        via: &[usize],
        args: &[&str],
        deadline: Instant,
        done: impl Fn(&str) -> bool,
    ) {
        let mut last = String::new();
        for i in via.iter().cycle() {
            let mut timed = vec!["--command-timeout=3s"];
            timed.extend_from_slice(args);
            let (ok, _, err) = self.ctl(*i, &timed);
            if ok || done(&err) {
                return;
            }
            last = err;
            assert!(
                Instant::now() < deadline,
                "qraftctl {} never succeeded: {last}",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        unreachable!("qraftctl {} through no member: {last}", args.join(" "));
    }

    /// `member list -w json` through member `i`: the members sorted by ID (the header, which
    /// names the answering member, left out). `None` if qraftctl failed.
    pub fn member_list(&self, i: usize) -> Option<Vec<Value>> {
        let (ok, out, _) = self.ctl(i, &["member", "list", "-w", "json"]);
        if !ok {
            return None;
        }
        let parsed: Value = serde_json::from_str(&out).ok()?;
        let mut members = parsed.get("members")?.as_array()?.clone();
        members.sort_by_key(|m| m.get("ID").and_then(Value::as_u64));
        Some(members)
    }

    /// The ID of the member named `name`, from member `via`'s list.
    pub fn member_id_by_name(&self, via: usize, name: &str) -> Option<u64> {
        self.member_list(via)?
            .iter()
            .find(|m| m.get("name").and_then(Value::as_str) == Some(name))?
            .get("ID")?
            .as_u64()
    }

    /// The ID of the member advertising `peer_url`, from member `via`'s list.
    pub fn member_id_by_peer_url(&self, via: usize, peer_url: &str) -> Option<u64> {
        self.member_list(via)?
            .iter()
            .find(|m| {
                m.get("peerURLs")
                    .and_then(Value::as_array)
                    .is_some_and(|urls| urls.iter().any(|u| u.as_str() == Some(peer_url)))
            })?
            .get("ID")?
            .as_u64()
    }

    /// Waits until every member in `members` returns the same member list and `check`
    /// accepts it; returns that list. Panics with the last lists seen after `timeout`.
    pub fn wait_member_lists_agree(
        &self,
        members: &[usize],
        timeout: Duration,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let lists: Vec<Option<Vec<Value>>> =
                members.iter().map(|&i| self.member_list(i)).collect();
            if let Some(Some(first)) = lists.first()
                && lists.iter().all(|l| l.as_ref() == Some(first))
                && check(first)
            {
                return first.clone();
            }
            if Instant::now() > deadline {
                let shown: Vec<String> = members
                    .iter()
                    .zip(&lists)
                    .map(|(i, l)| format!("member {i}: {l:?}"))
                    .collect();
                panic!(
                    "member lists did not agree within {timeout:?}:\n{}",
                    shown.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Polls `f` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
