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

/// Where `script` (util-linux) lives: it runs a command on a pseudo-terminal of its own.
pub const SCRIPT: &str = "/usr/bin/script";

/// Runs qraftctl against member `i` on a pseudo-terminal (through `script`), answering each
/// prompt in `dialog` once it has appeared: `(prompt, answer)`. Returns the exit code and
/// everything the terminal showed (prompts, echoed input, output; `\r\n` line ends).
///
/// An answer is sent a second after its prompt shows: the prompt is written just before the
/// terminal's echo is switched off, and typing into that gap would echo it.
pub fn ctl_on_terminal(
    c: &Cluster,
    i: usize,
    args: &[&str],
    dialog: &[(&str, &str)],
) -> (Option<i32>, String) {
    use std::io::Read;
    use std::sync::mpsc;

    let mut words = vec![
        binary("qraftctl").display().to_string(),
        "--endpoints".into(),
        c.nodes[i].client_url(),
        "--cacert".into(),
        c.ca_dir.join("ca.crt").display().to_string(),
    ];
    words.extend(args.iter().map(|a| a.to_string()));
    let line = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(SCRIPT)
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for (at, (prompt, answer)) in dialog.iter().enumerate() {
        // Each prompt counts from the answers before it (the same text may come twice).
        let wanted = dialog[..=at].iter().filter(|(p, _)| p == prompt).count();
        while String::from_utf8_lossy(&shown).matches(prompt).count() < wanted {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => shown.extend(chunk),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "no prompt {prompt:?} in time; the terminal showed {:?}",
                        String::from_utf8_lossy(&shown)
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .expect("type into the terminal");
    }
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("qraftctl {args:?} on a terminal did not exit in time: {outcome:?}");
            }
        }
    };
    drop(stdin);
    while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(5)) {
        shown.extend(chunk);
    }
    (code, String::from_utf8_lossy(&shown).into_owned())
}
