//! qraftctl against a test cluster with what [`Cluster::ctl`] does not give: standard input
//! (passwords read from a pipe) and the exit code (etcdctl's 128 for bad arguments).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cluster::{Cluster, binary};
use crate::cluster_ops::wait_until;

/// What one qraftctl run printed and how it ended.
#[derive(Debug)]
pub struct CtlRun {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CtlRun {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs qraftctl against member `i` with `stdin` as its standard input (a pipe, so never a
/// terminal; closed after `stdin` is written).
pub fn ctl_with_stdin(c: &Cluster, i: usize, args: &[&str], stdin: &str) -> CtlRun {
    let mut cmd = Command::new(binary("qraftctl"));
    cmd.arg("--endpoints")
        .arg(c.nodes[i].client_url())
        .arg("--cacert")
        .arg(c.ca_dir.join("ca.crt"));
    if let Some((cert, key)) = &c.client_cert {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qraftctl");
    if let Some(mut pipe) = child.stdin.take() {
        // qraftctl may exit before reading (bad arguments); a broken pipe is fine then.
        let _ = pipe.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("wait for qraftctl");
    CtlRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// qraftctl on member `i` with an empty standard input.
pub fn ctl_run(c: &Cluster, i: usize, args: &[&str]) -> CtlRun {
    ctl_with_stdin(c, i, args, "")
}

/// qraftctl on member `i` that must succeed at once: its stdout.
pub fn ctl_ok(c: &Cluster, i: usize, args: &[&str]) -> String {
    let run = ctl_run(c, i, args);
    assert!(run.ok(), "qraftctl {args:?} on m{i} failed: {run:?}");
    run.stdout
}

/// qraftctl on member `i` that must fail with exit code `code` and an `Error: ` line holding
/// `message`.
pub fn ctl_fails(c: &Cluster, i: usize, args: &[&str], code: i32, message: &str) {
    let run = ctl_run(c, i, args);
    assert_eq!(run.code, Some(code), "qraftctl {args:?} on m{i}: {run:?}");
    assert!(
        run.stderr.contains(&format!("Error: {message}")),
        "qraftctl {args:?} on m{i}: expected Error: {message:?}, got {run:?}"
    );
}

/// Waits (up to 30 s) until qraftctl on member `i` ends as `expect` says: `Ok(text)` = succeeds
/// printing something that contains `text`, `Err(message)` = fails with that error. For effects
/// of an auth change made through another member (or not yet applied where it is checked).
pub fn ctl_until(c: &Cluster, i: usize, args: &[&str], expect: Result<&str, &str>) -> CtlRun {
    wait_until(
        &format!("qraftctl {args:?} on m{i} to end as {expect:?}"),
        Duration::from_secs(30),
        || {
            let run = ctl_run(c, i, args);
            let matches = match expect {
                Ok(text) => run.ok() && run.stdout.contains(text),
                Err(message) => !run.ok() && run.stderr.contains(&format!("Error: {message}")),
            };
            if matches {
                Ok(run)
            } else {
                Err(format!("{run:?}"))
            }
        },
    )
}
