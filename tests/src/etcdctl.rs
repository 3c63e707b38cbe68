//! Runs the real etcdctl (Debian's `etcd-client` package, 3.4, `ETCDCTL_API=3`), with outputs
//! as `-w json` and everything that legitimately differs between two clusters masked (ids,
//! cluster/member ids, raft terms and indexes, sizes, timings, URLs, version strings). The
//! command script itself is in [`crate::etcdctl_script`].

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const ETCDCTL: &str = "/usr/bin/etcdctl";

/// Fails the test when etcd or etcdctl is missing: the test compares qraft with them, and
/// without its oracle it must not pass (`.ci/test` installs both).
pub fn require_etcdctl(test: &str) {
    crate::etcd::require_etcd(test);
    assert!(
        Path::new(ETCDCTL).exists(),
        "{test}: {ETCDCTL} is not installed, and this test compares qraft with it; \
         install it (apt-get install etcd-client, or run .ci/test as root)"
    );
}

/// etcdctl aimed at a cluster's endpoints.
#[derive(Debug, Clone)]
pub struct Etcdctl {
    endpoints: Vec<String>,
    cacert: Option<PathBuf>,
}

impl Etcdctl {
    pub fn plaintext(endpoints: Vec<String>) -> Self {
        Etcdctl {
            endpoints,
            cacert: None,
        }
    }

    pub fn tls(endpoints: Vec<String>, cacert: PathBuf) -> Self {
        Etcdctl {
            endpoints,
            cacert: Some(cacert),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(ETCDCTL);
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints.join(",")))
            .arg("--command-timeout=10s")
            .arg("--dial-timeout=5s");
        if let Some(cacert) = &self.cacert {
            command.arg(format!("--cacert={}", cacert.display()));
        }
        command.args(args);
        command
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run etcdctl: {e}"));
        if let Some(mut pipe) = child.stdin.take() {
            let _ = pipe.write_all(stdin.unwrap_or_default().as_bytes());
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("etcdctl did not finish: {e}"))
    }

    /// Runs etcdctl for at most `wait`, killing it if it is still running then (a watch that
    /// was not refused): its exit code (`None` when killed), stdout and stderr.
    pub fn run_for(&self, args: &[&str], wait: Duration) -> (Option<i32>, String, String) {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run etcdctl: {e}"));
        let deadline = std::time::Instant::now() + wait;
        let mut code = None;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                code = Some(status.code().unwrap_or(-1));
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if code.is_none() {
            let _ = child.kill();
        }
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("etcdctl did not finish: {e}"));
        (
            code,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// etcdctl aimed at member `i` only (snapshot save needs exactly one endpoint).
    pub fn only(&self, i: usize) -> Etcdctl {
        Etcdctl {
            endpoints: vec![self.endpoints[i].clone()],
            cacert: self.cacert.clone(),
        }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn succeeds(&self, args: &[&str]) -> bool {
        self.run(args, None).status.success()
    }

    /// `-w json` output parsed, or etcdctl's error line (`Error: ...`).
    pub fn json(&self, args: &[&str], stdin: Option<&str>) -> Result<Value, String> {
        let mut all = vec!["-w", "json"];
        all.extend_from_slice(args);
        let output = self.run(&all, stdin);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let line = stderr
                .lines()
                .rev()
                .find(|l| l.starts_with("Error:"))
                .unwrap_or("Error: (no message)");
            return Err(line.to_owned());
        }
        // A few commands (compaction) print text even with `-w json`.
        Ok(serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        }))
    }

    /// The first JSON line `etcdctl watch` prints, then the watcher is killed.
    pub fn watch_first(&self, args: &[&str], wait: Duration) -> Result<Value, String> {
        self.watch_while(args, wait, || {})
    }

    /// Starts `etcdctl watch`, runs `action` (e.g. a put the watch should see), and returns
    /// the first JSON line the watcher prints; the watcher is then killed.
    pub fn watch_while(
        &self,
        args: &[&str],
        wait: Duration,
        action: impl FnOnce(),
    ) -> Result<Value, String> {
        let mut all = vec!["-w", "json", "watch"];
        all.extend_from_slice(args);
        let mut child = self
            .command(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run etcdctl watch: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        action();
        let line = rx.recv_timeout(wait);
        let _ = child.kill();
        let _ = child.wait();
        let line = line.map_err(|_| format!("no watch output within {wait:?}"))?;
        serde_json::from_str(line.trim()).map_err(|e| format!("not JSON ({e}): {line}"))
    }
}

/// Number-valued fields that differ between two clusters fed the same commands.
const MASKED_NUMBERS: &[&str] = &[
    "cluster_id",
    "member_id",
    "raft_term",
    "raftTerm",
    "raftIndex",
    "raftAppliedIndex",
    "leader",
    "ID",
    "id",
    "lease",
    "dbSize",
    "dbSizeInUse",
    "dbSizeQuota",
];
/// Fields masked whatever their value.
const MASKED_ANY: &[&str] = &[
    "took",
    "peerURLs",
    "clientURLs",
    "Endpoint",
    "endpoint",
    "storageVersion",
];

/// Replaces what legitimately differs between clusters with `"<masked>"`. A zero number stays
/// zero (a lease of 0 means "no lease" and must match); `version` is masked only as a string
/// (the server version), never as a key's version counter.
pub fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                let masked_number =
                    MASKED_NUMBERS.contains(&key.as_str()) && field.as_i64() != Some(0);
                let masked_string = key == "version" && field.is_string();
                if masked_number || masked_string || MASKED_ANY.contains(&key.as_str()) {
                    *field = Value::String("<masked>".into());
                } else {
                    mask(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_revisions_and_key_versions() {
        let mut value: Value = serde_json::from_str(
            r#"{"header":{"cluster_id":9,"member_id":8,"revision":3,"raft_term":2},
                "kvs":[{"key":"YQ==","version":2,"lease":0,"mod_revision":3}],
                "Status":{"version":"3.4.23","leader":5}}"#,
        )
        .expect("json");
        mask(&mut value);
        assert_eq!(value["header"]["revision"], 3);
        assert_eq!(value["header"]["cluster_id"], "<masked>");
        assert_eq!(value["kvs"][0]["version"], 2);
        assert_eq!(value["kvs"][0]["lease"], 0);
        assert_eq!(value["Status"]["version"], "<masked>");
        assert_eq!(value["Status"]["leader"], "<masked>");
    }
}
