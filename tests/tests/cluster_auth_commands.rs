//! Every `user`, `role` and `auth` command of qraftctl through the real binary against three
//! real members: etcdctl's output lines, its errors (`Error: etcdserver: ...`, exit code 1; bad
//! arguments exit 128), passwords from standard input, and the effects: a user with read
//! permission on a prefix reads there and is refused writes and other keys; after the
//! permission or the role is revoked it is refused; a changed password replaces the old one;
//! a deleted user cannot sign in.
//!
//! Needs the binaries of the same profile: `cargo build --release -p qraft-server --bins`.

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ctl::{
    SCRIPT, ctl_fails, ctl_ok, ctl_on_terminal, ctl_run, ctl_until, ctl_with_stdin,
};

const DENIED: &str = "etcdserver: permission denied";
const AUTH_FAILED: &str = "etcdserver: authentication failed, invalid user ID or password";
const ROOT: [&str; 2] = ["--user", "root:rootpw"];

/// `Authentication Status: ...` and the auth revision it reports.
fn auth_status(c: &Cluster, who: &[&str]) -> (String, u64) {
    let out = ctl_ok(c, 0, &[who, &["auth", "status"]].concat());
    let mut lines = out.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let revision = lines
        .next()
        .and_then(|l| l.strip_prefix("AuthRevision: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no AuthRevision line in {out:?}"));
    assert_eq!(lines.next(), None, "{out:?}");
    (status, revision)
}

fn as_root<'a>(command: &[&'a str]) -> Vec<&'a str> {
    [&ROOT[..], command].concat()
}

#[test]
fn user_role_and_auth_commands_work_like_etcdctl() {
    let c = Cluster::start(3, ClusterOptions::default());

    // Users: the password from a flag, NAME:PASSWORD, and standard input with and without
    // --interactive=false (a pipe is no terminal, so the first line is the password).
    assert_eq!(
        ctl_ok(
            &c,
            0,
            &["user", "add", "root", "--new-user-password", "rootpw"]
        ),
        "User root created\n"
    );
    let added = ctl_with_stdin(&c, 0, &["user", "add", "reader"], "readpw\n");
    assert_eq!(added.stdout, "User reader created\n", "{added:?}");
    let added = ctl_with_stdin(
        &c,
        0,
        &["user", "add", "alice", "--interactive=false"],
        "alice pw\n",
    );
    assert_eq!(added.stdout, "User alice created\n", "{added:?}");
    ctl_fails(&c, 0, &["user", "add", "bob"], 128, "empty password");
    ctl_fails(
        &c,
        0,
        &["user", "add", "root:again"],
        1,
        "etcdserver: user name already exists",
    );
    let (status, revision_before) = auth_status(&c, &[]);
    assert_eq!(status, "Authentication Status: false");

    // A role with every kind of range, printed as etcdctl prints it.
    assert_eq!(ctl_ok(&c, 0, &["role", "add", "ro"]), "Role ro created\n");
    for grant in [
        &["ro", "read", "/app/", "--prefix"][..],
        &["ro", "readwrite", "a", "c"],
        &["--from-key", "ro", "write", "z"],
        &["ro", "READ", "k1"],
    ] {
        let args = [&["role", "grant-permission"][..], grant].concat();
        assert_eq!(ctl_ok(&c, 0, &args), "Role ro updated\n", "{args:?}");
    }
    let ro = "Role ro\nKV Read:\n\t[/app/, /app0) (prefix /app/)\n\t[a, c)\n\tk1\n\
              KV Write:\n\t[a, c)\n\t[z, <open ended>\n";
    assert_eq!(ctl_ok(&c, 0, &["role", "get", "ro"]), ro);
    ctl_fails(
        &c,
        0,
        &["role", "grant-permission", "ro", "bogus", "x"],
        128,
        "invalid permission type: bogus",
    );
    ctl_fails(
        &c,
        0,
        &["role", "grant-permission", "ro", "read"],
        128,
        "role grant command requires role name, permission type, and key [endkey] as its argument",
    );
    ctl_fails(
        &c,
        0,
        &[
            "role",
            "grant-permission",
            "--prefix",
            "ro",
            "read",
            "a",
            "b",
        ],
        128,
        "unexpected endkey argument with --prefix flag",
    );
    ctl_fails(
        &c,
        0,
        &["role", "get", "nope"],
        1,
        "etcdserver: role name not found",
    );

    assert_eq!(
        ctl_ok(&c, 0, &["user", "grant-role", "reader", "ro"]),
        "Role ro is granted to user reader\n"
    );
    assert_eq!(
        ctl_ok(&c, 0, &["user", "get", "reader"]),
        "User: reader\nRoles: ro\n"
    );
    assert_eq!(
        ctl_ok(&c, 0, &["user", "get", "reader", "--detail"]),
        format!("User: reader\n\n{ro}")
    );
    assert_eq!(
        ctl_ok(&c, 0, &["user", "get", "alice"]),
        "User: alice\nRoles:\n"
    );
    assert_eq!(ctl_ok(&c, 0, &["user", "list"]), "alice\nreader\nroot\n");
    assert_eq!(ctl_ok(&c, 0, &["role", "list"]), "ro\n");
    ctl_fails(
        &c,
        0,
        &["user", "get", "nobody"],
        1,
        "etcdserver: user name not found",
    );

    assert_eq!(
        ctl_ok(&c, 0, &["auth", "enable"]),
        "Authentication Enabled\n"
    );
    let (status, revision_enabled) = auth_status(&c, &ROOT);
    assert_eq!(status, "Authentication Status: true");
    let json = ctl_ok(&c, 0, &as_root(&["-w", "json", "auth", "status"]));
    assert!(
        json.starts_with("{\"header\":{\"cluster_id\":")
            && json.ends_with(&format!(
                ",\"enabled\":true,\"authRevision\":{revision_enabled}}}\n"
            )),
        "{json}"
    );
    assert!(
        revision_enabled > revision_before,
        "auth revision {revision_before} -> {revision_enabled}"
    );
    assert_eq!(ctl_ok(&c, 0, &as_root(&["put", "/app/x", "1"])), "OK\n");
    assert_eq!(ctl_ok(&c, 0, &as_root(&["put", "other", "2"])), "OK\n");

    // The reader reads under /app/ on every member, and is refused writes and other keys.
    let reader = ["--user", "reader:readpw"];
    for i in 0..3 {
        let read = ctl_until(&c, i, &[&reader[..], &["get", "/app/x"]].concat(), Ok("1"));
        assert_eq!(read.stdout, "/app/x\n1\n");
        ctl_fails(
            &c,
            i,
            &[&reader[..], &["put", "/app/y", "v"]].concat(),
            1,
            DENIED,
        );
        ctl_fails(&c, i, &[&reader[..], &["get", "other"]].concat(), 1, DENIED);
    }
    // `--user NAME` alone reads the password (first line of a pipe); `--password` gives it.
    let prompted = ctl_with_stdin(&c, 1, &["--user", "reader", "get", "/app/x"], "readpw\n");
    assert_eq!(prompted.stdout, "/app/x\n1\n", "{prompted:?}");
    assert_eq!(
        ctl_ok(
            &c,
            2,
            &["--user", "reader", "--password", "readpw", "get", "/app/x"]
        ),
        "/app/x\n1\n"
    );
    // The new user's password is read first, then the sign-in password (etcdctl's order).
    let both = ctl_with_stdin(
        &c,
        0,
        &["--user", "root", "user", "add", "bob"],
        "bobpw\nrootpw\n",
    );
    assert_eq!(both.stdout, "User bob created\n", "{both:?}");
    ctl_fails(&c, 0, &["--user", "bob:bobpw", "get", "/app/x"], 1, DENIED);
    ctl_fails(
        &c,
        0,
        &["--user", "alice:alice pw", "get", "/app/x"],
        1,
        DENIED,
    );
    ctl_fails(
        &c,
        0,
        &["--user", "alice:alice", "get", "/app/x"],
        2,
        AUTH_FAILED,
    );

    // Revoking the permission: refused afterwards. Every range form prints etcdctl's line.
    assert_eq!(
        ctl_ok(
            &c,
            0,
            &as_root(&["role", "revoke-permission", "ro", "/app/", "--prefix"])
        ),
        "Permission of range [/app/, /app0) is revoked from role ro\n"
    );
    for i in 0..3 {
        ctl_until(
            &c,
            i,
            &[&reader[..], &["get", "/app/x"]].concat(),
            Err(DENIED),
        );
    }
    for (revoke, printed) in [
        (
            &["ro", "a", "c"][..],
            "Permission of range [a, c) is revoked from role ro\n",
        ),
        (
            &["--from-key", "ro", "z"],
            "Permission of range [z, <open ended> is revoked from role ro\n",
        ),
        (
            &["ro", "k1"],
            "Permission of key k1 is revoked from role ro\n",
        ),
    ] {
        let args = as_root(&[&["role", "revoke-permission"][..], revoke].concat());
        assert_eq!(ctl_ok(&c, 0, &args), printed, "{args:?}");
    }
    ctl_fails(
        &c,
        0,
        &as_root(&["role", "revoke-permission", "ro", "k1"]),
        1,
        "etcdserver: permission is not granted to the role",
    );
    assert_eq!(
        ctl_ok(&c, 0, &as_root(&["role", "get", "ro"])),
        "Role ro\nKV Read:\nKV Write:\n"
    );

    // Revoking the role: the reader, allowed again through the role, is refused afterwards.
    ctl_ok(
        &c,
        0,
        &as_root(&[
            "role",
            "grant-permission",
            "ro",
            "read",
            "/app/",
            "--prefix",
        ]),
    );
    ctl_until(&c, 0, &[&reader[..], &["get", "/app/x"]].concat(), Ok("1"));
    assert_eq!(
        ctl_ok(&c, 0, &as_root(&["user", "revoke-role", "reader", "ro"])),
        "Role ro is revoked from user reader\n"
    );
    ctl_until(
        &c,
        0,
        &[&reader[..], &["get", "/app/x"]].concat(),
        Err(DENIED),
    );
    ctl_fails(
        &c,
        0,
        &as_root(&["user", "revoke-role", "reader", "ro"]),
        1,
        "etcdserver: role is not granted to the user",
    );
    assert_eq!(
        ctl_ok(&c, 0, &as_root(&["user", "get", "reader"])),
        "User: reader\nRoles:\n"
    );

    // A new password replaces the old one.
    let changed = ctl_with_stdin(
        &c,
        0,
        &as_root(&["user", "passwd", "reader", "--interactive=false"]),
        "newpw\n",
    );
    assert_eq!(changed.stdout, "Password updated\n", "{changed:?}");
    ctl_until(
        &c,
        0,
        &[&reader[..], &["get", "/app/x"]].concat(),
        Err(AUTH_FAILED),
    );
    ctl_until(
        &c,
        0,
        &["--user", "reader:newpw", "get", "/app/x"],
        Err(DENIED),
    );

    // A deleted user cannot sign in; a deleted role is gone.
    assert_eq!(
        ctl_ok(&c, 0, &as_root(&["user", "delete", "reader"])),
        "User reader deleted\n"
    );
    for i in 0..3 {
        ctl_until(
            &c,
            i,
            &["--user", "reader:newpw", "get", "/app/x"],
            Err(AUTH_FAILED),
        );
    }
    ctl_fails(
        &c,
        0,
        &as_root(&["user", "delete", "reader"]),
        1,
        "etcdserver: user name not found",
    );
    assert_eq!(
        ctl_ok(&c, 0, &as_root(&["role", "delete", "ro"])),
        "Role ro deleted\n"
    );
    ctl_fails(
        &c,
        0,
        &as_root(&["role", "get", "ro"]),
        1,
        "etcdserver: role name not found",
    );
    // `auth enable` added the root role the root user lacked, as etcdctl does; it may access
    // every key (etcdctl 3.6's way of printing it).
    assert_eq!(ctl_ok(&c, 0, &as_root(&["role", "list"])), "root\n");
    assert_eq!(
        ctl_ok(&c, 0, &as_root(&["role", "get", "root"])),
        "Role root\nKV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n"
    );
    assert_eq!(
        ctl_ok(&c, 0, &as_root(&["user", "list"])),
        "alice\nbob\nroot\n"
    );

    assert_eq!(
        ctl_ok(&c, 0, &as_root(&["auth", "disable"])),
        "Authentication Disabled\n"
    );
    let (status, revision_disabled) = auth_status(&c, &[]);
    assert_eq!(status, "Authentication Status: false");
    assert!(revision_disabled > revision_enabled);

    // Missing arguments: etcdctl's messages and exit code, before any call.
    for (args, message) in [
        (
            &["user", "add"][..],
            "user add command requires user name as its argument",
        ),
        (
            &["user", "passwd"],
            "user passwd command requires user name as its argument",
        ),
        (
            &["user", "delete"],
            "user delete command requires user name as its argument",
        ),
        (
            &["role", "revoke-permission", "ro"],
            "role revoke-permission command requires",
        ),
    ] {
        ctl_fails(&c, 0, args, 128, message);
    }
    let run = ctl_run(&c, 0, &["user", "passwd", "alice", "--interactive=maybe"]);
    assert_eq!(
        run.code,
        Some(2),
        "a malformed flag is clap's usage error: {run:?}"
    );
}

/// On a terminal the passwords are typed after etcdctl's prompts and are not echoed; a new
/// password is asked twice and two different ones are refused.
#[test]
fn passwords_are_typed_on_the_terminal_without_echo() {
    assert!(
        std::path::Path::new(SCRIPT).exists(),
        "{SCRIPT} (util-linux) is not installed, and this test types on a terminal through it"
    );
    let c = Cluster::start(1, ClusterOptions::default());
    let (code, shown) = ctl_on_terminal(
        &c,
        0,
        &["user", "add", "root"],
        &[
            ("Password of root: ", "secret-root"),
            (
                "Type password of root again for confirmation: ",
                "secret-root",
            ),
        ],
    );
    assert_eq!(code, Some(0), "{shown:?}");
    assert!(shown.contains("User root created"), "{shown:?}");
    assert!(
        !shown.contains("secret-root"),
        "the password was echoed: {shown:?}"
    );

    let (code, shown) = ctl_on_terminal(
        &c,
        0,
        &["user", "passwd", "root"],
        &[
            ("Password of root: ", "first"),
            ("Type password of root again for confirmation: ", "second"),
        ],
    );
    assert_eq!(code, Some(128), "{shown:?}");
    assert!(
        shown.contains("Error: given passwords are different"),
        "{shown:?}"
    );

    assert_eq!(
        ctl_ok(&c, 0, &["auth", "enable"]),
        "Authentication Enabled\n"
    );
    let (code, shown) = ctl_on_terminal(
        &c,
        0,
        &["--user", "root", "auth", "status"],
        &[("Password: ", "secret-root")],
    );
    assert_eq!(code, Some(0), "{shown:?}");
    assert!(shown.contains("Authentication Status: true"), "{shown:?}");
    assert!(
        !shown.contains("secret-root"),
        "the password was echoed: {shown:?}"
    );
    ctl_fails(
        &c,
        0,
        &["--user", "root:first", "auth", "status"],
        2,
        AUTH_FAILED,
    );
}
