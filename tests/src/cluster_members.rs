//! Membership helpers for the multi-process tests: adding members to a running [`Cluster`],
//! reading `qraftctl member list -w json` from each member, and waiting for conditions.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Cluster, Node};

impl Cluster {
    /// Adds a member named `name` to the test cluster (fresh ports, the cluster's CA); it is
    /// not started. Returns its index.
    pub fn add_node(&mut self, name: &str) -> usize {
        self.nodes.push(Node::new(&self.root, name));
        let i = self.nodes.len() - 1;
        self.install_ca(i);
        i
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
