//! qraftctl's own `user` and `role` output against etcdctl's: the same commands, qraftctl on a
//! qraft cluster and the real etcdctl (3.4) on a real etcd, simple output, stdout and the
//! `Error:` line and exit code compared line by line; then a few commands with `-w json`
//! (ids masked). Left out, covered against qraft alone in `cluster_auth_commands.rs`:
//! `auth status` (etcdctl 3.4 does not have it) and `role get root` (etcd 3.4 answers the
//! root role with no permissions and etcdctl 3.4 prints none; etcd 3.6 answers
//! `[, <open ended>` read-write, and etcdctl 3.6 prints that also for an empty answer, as
//! qraftctl does).

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ctl::{CtlRun, ctl_with_stdin};
use qraft_tests::etcd_cluster::EtcdCluster;
use qraft_tests::etcdctl::{mask, require_etcdctl};

/// Each command with the text it reads from standard input.
const SCRIPT: &[(&[&str], &str)] = &[
    (&["user", "add", "root:rootpw"], ""),
    (
        &["user", "add", "reader", "--interactive=false"],
        "readpw\n",
    ),
    (&["user", "add", "other", "--new-user-password=pw"], ""),
    (&["user", "add", "root:again"], ""),
    (&["user", "add", ":pw"], ""),
    (&["user", "add"], ""),
    (&["role", "add", "ro"], ""),
    (&["role", "add", "ro"], ""),
    (&["role", "add", "empty"], ""),
    (
        &[
            "role",
            "grant-permission",
            "ro",
            "read",
            "/app/",
            "--prefix",
        ],
        "",
    ),
    (
        &["role", "grant-permission", "ro", "readwrite", "a", "c"],
        "",
    ),
    (
        &["role", "grant-permission", "ro", "write", "z", "--from-key"],
        "",
    ),
    (&["role", "grant-permission", "ro", "READ", "k1"], ""),
    (
        &["role", "grant-permission", "ro", "write", "", "--prefix"],
        "",
    ),
    (&["role", "grant-permission", "ro", "bogus", "x"], ""),
    (&["role", "grant-permission", "ro", "read"], ""),
    (
        &[
            "role",
            "grant-permission",
            "ro",
            "read",
            "a",
            "b",
            "--prefix",
        ],
        "",
    ),
    (
        &[
            "role",
            "grant-permission",
            "ro",
            "read",
            "a",
            "b",
            "--from-key",
        ],
        "",
    ),
    (&["role", "grant-permission", "nope", "read", "x"], ""),
    (&["role", "get", "ro"], ""),
    (&["role", "get", "empty"], ""),
    (&["role", "get", "nope"], ""),
    (&["role", "list"], ""),
    (&["user", "grant-role", "reader", "ro"], ""),
    (&["user", "grant-role", "reader", "empty"], ""),
    (&["user", "grant-role", "reader", "nope"], ""),
    (&["user", "get", "reader"], ""),
    (&["user", "get", "reader", "--detail"], ""),
    (&["user", "get", "other"], ""),
    (&["user", "get", "nobody"], ""),
    (&["user", "list"], ""),
    (
        &["role", "revoke-permission", "ro", "/app/", "--prefix"],
        "",
    ),
    (&["role", "revoke-permission", "ro", "a", "c"], ""),
    (&["role", "revoke-permission", "ro", "z", "--from-key"], ""),
    (&["role", "revoke-permission", "ro", "k1"], ""),
    (&["role", "revoke-permission", "ro", "k1"], ""),
    (&["role", "revoke-permission", "ro"], ""),
    (&["role", "get", "ro"], ""),
    (&["user", "revoke-role", "reader", "ro"], ""),
    (&["user", "revoke-role", "reader", "ro"], ""),
    (&["user", "get", "reader"], ""),
    (
        &["user", "passwd", "reader", "--interactive=false"],
        "newpw\n",
    ),
    (&["user", "passwd", "nobody", "--interactive=false"], "pw\n"),
    (&["user", "delete", "reader"], ""),
    (&["user", "delete", "reader"], ""),
    (&["role", "delete", "ro"], ""),
    (&["role", "delete", "ro"], ""),
    (&["user", "list"], ""),
    (&["role", "list"], ""),
    // Enabling adds the root role the root user lacks (etcdctl's way), then root's view.
    (&["auth", "enable"], ""),
    (&["role", "list"], ""),
    (&["--user", "root:wrong", "role", "list"], ""),
    (&["--user", "root:rootpw", "role", "list"], ""),
    (&["--user", "root:rootpw", "user", "get", "root"], ""),
    (&["--user", "other:pw", "user", "list"], ""),
    (&["--user", "root:rootpw", "auth", "disable"], ""),
];

/// Run with `-w json` after [`SCRIPT`]: each response as etcdctl prints it, ids masked.
const JSON_SCRIPT: &[&[&str]] = &[
    &["user", "add", "jroot:pw"],
    &["role", "add", "jr"],
    &[
        "role",
        "grant-permission",
        "jr",
        "read",
        "/app/",
        "--prefix",
    ],
    &["role", "grant-permission", "jr", "readwrite", "a"],
    &["role", "get", "jr"],
    &["user", "grant-role", "jroot", "jr"],
    &["user", "get", "jroot"],
    &["user", "list"],
    &["role", "list"],
    &["role", "revoke-permission", "jr", "a"],
    &["user", "revoke-role", "jroot", "jr"],
    &["user", "get", "jroot"],
    &["user", "passwd", "jroot", "--interactive=false"],
    &["user", "delete", "jroot"],
    &["role", "delete", "jr"],
    &["role", "get", "jr"],
];

/// A `-w json` run's record: the masked JSON, or the `Error:` line.
fn record_json(transcript: &mut String, args: &[&str], run: &CtlRun) {
    let shown = match serde_json::from_str::<serde_json::Value>(&run.stdout) {
        Ok(mut value) if run.ok() => {
            mask(&mut value);
            value.to_string()
        }
        _ => format!(
            "{:?} {:?}",
            run.stdout,
            run.stderr.lines().find(|l| l.starts_with("Error:"))
        ),
    };
    transcript.push_str(&format!("$ -w json {}\n{shown}\n", args.join(" ")));
}

/// One command's record: the command, its stdout, and on failure its exit code and `Error:`
/// line (etcdctl 3.4 also logs retries on stderr; those lines are not compared).
fn record(transcript: &mut String, args: &[&str], run: &CtlRun) {
    transcript.push_str(&format!("$ {}\n", args.join(" ")));
    transcript.push_str(&run.stdout);
    if !run.ok() {
        let error = run
            .stderr
            .lines()
            .find(|l| l.starts_with("Error:"))
            .unwrap_or("(no Error: line)");
        transcript.push_str(&format!("exit {:?}: {error}\n", run.code));
    }
}

#[test]
fn qraftctl_prints_user_and_role_commands_as_etcdctl() {
    require_etcdctl("qraftctl_prints_user_and_role_commands_as_etcdctl");
    let expected = {
        let etcd = EtcdCluster::start();
        let etcdctl = etcd.etcdctl();
        let run = |args: &[&str], stdin: &str| {
            let out = etcdctl.run(args, Some(stdin));
            CtlRun {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        };
        // The qraft cluster's start-up wrote one key: the same store revision here.
        assert!(run(&["put", "__ready", "1"], "").ok());
        let mut transcript = String::new();
        for (args, stdin) in SCRIPT {
            record(&mut transcript, args, &run(args, stdin));
        }
        for args in JSON_SCRIPT {
            let json_args = [&["-w", "json"][..], args].concat();
            record_json(&mut transcript, args, &run(&json_args, "newpw\n"));
        }
        transcript
    };
    let actual = {
        let c = Cluster::start(3, ClusterOptions::default());
        let mut transcript = String::new();
        for (args, stdin) in SCRIPT {
            record(&mut transcript, args, &ctl_with_stdin(&c, 0, args, stdin));
        }
        for args in JSON_SCRIPT {
            let json_args = [&["-w", "json"][..], args].concat();
            record_json(
                &mut transcript,
                args,
                &ctl_with_stdin(&c, 0, &json_args, "newpw\n"),
            );
        }
        transcript
    };
    let differences: Vec<String> = expected
        .lines()
        .zip(actual.lines())
        .filter(|(e, a)| e != a)
        .map(|(e, a)| format!("etcdctl:  {e:?}\nqraftctl: {a:?}"))
        .collect();
    assert!(
        differences.is_empty() && expected.lines().count() == actual.lines().count(),
        "qraftctl differs from etcdctl:\n{}\n\netcdctl's transcript:\n{expected}\n\nqraftctl's:\n{actual}",
        differences.join("\n")
    );
    for shown in [
        "\t[/app/, /app0) (prefix /app/)\n",
        "Permission of range [z, <open ended> is revoked from role ro\n",
        "exit Some(128): Error: invalid permission type: bogus\n",
        "exit Some(1): Error: etcdserver: user name not found\n",
        // The order of keys in masked JSON depends on serde_json's features in the build (the
        // field order is checked in qraftctl's tests), so each permission is looked for alone.
        r#""perm":[{"key":"L2FwcC8=","range_end":"L2FwcDA="},{"#,
        r#""key":"YQ==""#,
        r#""permType":2"#,
        r#""users":["jroot","other","root"]"#,
    ] {
        assert!(actual.contains(shown), "{shown:?} in:\n{actual}");
    }
}
