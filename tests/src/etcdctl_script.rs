//! The etcdctl compatibility script: the same commands against a real etcd and against
//! qraft's gRPC listener, each recorded with its masked `-w json` output or its `Error:` line,
//! so the two transcripts can be compared line by line.
//!
//! The script starts on an empty 3-member cluster (store revision 1) and only depends on what
//! the commands themselves do, so every revision in it is the same on both systems.

use std::path::Path;
use std::time::Duration;

use ring::digest::{SHA256, digest};
use serde_json::Value;

use crate::etcdctl::{Etcdctl, mask};

const TXN_SUCCEEDS: &str = "value(\"a\") = \"1\"\n\nput a 11\n\nput a 0\n\n";
const TXN_FAILS: &str = "value(\"a\") = \"1\"\n\nput a 12\n\nput b 22\n\n";
const WATCH_WAIT: Duration = Duration::from_secs(20);

/// Collects the transcript; hides the endpoint addresses and the scratch directory that
/// appear in plain-text outputs (defrag, snapshot save).
struct Transcript {
    text: String,
    hidden: Vec<(String, &'static str)>,
}

impl Transcript {
    fn record(&mut self, command: &str, outcome: Result<Value, String>) {
        self.text.push_str("$ etcdctl ");
        self.text.push_str(command);
        self.text.push('\n');
        let mut shown = match outcome {
            Ok(mut value) => {
                sort_members(&mut value);
                mask_remaining_ttl(&mut value);
                mask(&mut value);
                value.to_string()
            }
            Err(error) => error,
        };
        for (text, placeholder) in &self.hidden {
            shown = shown.replace(text.as_str(), placeholder);
        }
        self.text.push_str(&shown);
        self.text.push('\n');
    }

    fn note(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }
}

/// Sorts `members` by name so member lists compare independently of member ids. Client URLs
/// are masked whatever they are, also when absent: a qraft member lists other members' client
/// URLs only once they have published them through raft (and they are QUIC URLs anyway).
fn sort_members(value: &mut Value) {
    if let Some(Value::Array(members)) = value.get_mut("members") {
        members.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        for member in members.iter_mut().filter_map(Value::as_object_mut) {
            member.insert("clientURLs".into(), Value::String("<masked>".into()));
        }
    }
}

/// A lease's remaining TTL depends on how long the commands took: any value in
/// `1..=granted` is shown as `<remaining>`; -1 (not found) and 0 stay. etcdctl 3.4 prints
/// `ttl`/`granted-ttl` for `lease timetolive`.
fn mask_remaining_ttl(value: &mut Value) {
    let granted = value.get("granted-ttl").and_then(Value::as_i64);
    if let (Some(granted), Some(ttl)) = (granted, value.get("ttl").and_then(Value::as_i64))
        && ttl > 0
        && ttl <= granted
    {
        value["ttl"] = Value::String("<remaining>".into());
    }
}

/// Runs the script through `etcdctl` (aimed at all members of a 3-member cluster); snapshot
/// files go to `scratch`. Returns the transcript.
pub fn run_script(etcdctl: &Etcdctl, scratch: &Path) -> String {
    let mut hidden: Vec<(String, &'static str)> = etcdctl
        .endpoints()
        .iter()
        .map(|e| (e.clone(), "<endpoint>"))
        .collect();
    hidden.push((scratch.display().to_string(), "<scratch>"));
    let mut t = Transcript {
        text: String::new(),
        hidden,
    };
    kv_commands(etcdctl, &mut t);
    lease_commands(etcdctl, &mut t);
    compaction_and_watch(etcdctl, &mut t);
    cluster_commands(etcdctl, scratch, &mut t);
    auth_commands(etcdctl, &mut t);
    t.text
}

fn plain(etcdctl: &Etcdctl, t: &mut Transcript, script: &[&[&str]]) {
    for args in script {
        t.record(&args.join(" "), etcdctl.json(args, None));
    }
}

fn kv_commands(etcdctl: &Etcdctl, t: &mut Transcript) {
    plain(
        etcdctl,
        t,
        &[
            &["put", "foo", "bar"],
            &["get", "foo"],
            &["put", "foo", "baz", "--prev-kv"],
            &["get", "foo", "--rev=2"],
            &["get", "foo", "--rev=99"],
            &["put", "a", "1"],
            &["put", "b", "2"],
            &["get", "a", "c"],
            &["get", "", "--from-key", "--keys-only"],
            &["get", "a", "--prefix", "--limit=1"],
            &["get", "", "--prefix", "--sort-by=MODIFY", "--order=DESCEND"],
            &["put", "missing", "--ignore-value"],
            &["put", "k", "v", "--lease=1234"],
            &["del", "foo", "--prev-kv"],
            &["del", "nothing"],
        ],
    );
    t.record(
        "txn <<< value(a)=1 ? put a 11 : put a 0",
        etcdctl.json(&["txn"], Some(TXN_SUCCEEDS)),
    );
    t.record(
        "txn <<< value(a)=1 ? put a 12 : put b 22",
        etcdctl.json(&["txn"], Some(TXN_FAILS)),
    );
}

/// Keep-alive and time-to-live are answered by the leader, which alone tracks deadlines; a
/// follower forwards them to it (etcd's and qraft's alike). The lease script runs once through
/// the leader's endpoint and once through a follower's, each with a lease of its own.
fn lease_commands(etcdctl: &Etcdctl, t: &mut Transcript) {
    let leader = leader_index(etcdctl);
    let follower = (leader + 1) % etcdctl.endpoints().len();
    for (role, member) in [("leader", leader), ("follower", follower)] {
        lease_script(&etcdctl.only(member), role, t);
    }
    // Below the minimum TTL: granted as the minimum (2 s with etcd's default timing). Last, so
    // no later `lease list` depends on whether this short lease has expired yet.
    t.record(
        "lease grant 1",
        etcdctl.json(&["lease", "grant", "1"], None),
    );
}

/// Grant, list, attach, time-to-live, keep-alive, revoke, and the same calls on the revoked
/// lease, all through `member` (named `role` in the transcript).
fn lease_script(member: &Etcdctl, role: &str, t: &mut Transcript) {
    let grant = member.json(&["lease", "grant", "60"], None);
    let lease = grant
        .as_ref()
        .ok()
        .and_then(|v| v["ID"].as_i64())
        .map(|id| format!("{id:x}"))
        .unwrap_or_else(|| "0".into());
    t.record(&format!("lease grant 60 (on the {role})"), grant);
    let script: &[&[&str]] = &[
        &["lease", "list"],
        &["put", "k", "v", "--lease=LEASE"],
        &["lease", "timetolive", "LEASE", "--keys"],
        &["lease", "keep-alive", "--once", "LEASE"],
        &["lease", "revoke", "LEASE"],
        &["get", "k"],
        &["lease", "timetolive", "LEASE"],
        &["lease", "revoke", "LEASE"],
        &["lease", "keep-alive", "--once", "LEASE"],
    ];
    for args in script {
        let args: Vec<String> = args.iter().map(|a| a.replace("LEASE", &lease)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let shown = args.join(" ").replace(&lease, "<lease>");
        t.record(
            &format!("{shown} (on the {role})"),
            member.json(&args, None),
        );
    }
}

fn compaction_and_watch(etcdctl: &Etcdctl, t: &mut Transcript) {
    plain(
        etcdctl,
        t,
        &[
            &["compaction", "5"],
            &["compaction", "3"],
            &["compaction", "99"],
            &["get", "foo", "--rev=2"],
            &["get", "foo", "--rev=5"],
        ],
    );
    t.record(
        "watch a --rev=5 (first response)",
        etcdctl.watch_first(&["a", "--rev=5"], WATCH_WAIT),
    );
    t.record(
        "watch a --rev=2 (first response)",
        etcdctl.watch_first(&["a", "--rev=2"], WATCH_WAIT),
    );
    // A live event through a follower: the watch starts at the next revision, so it sees the
    // put whether it is created before or after the put lands.
    let follower = follower_index(etcdctl);
    let next = etcdctl
        .json(&["get", "live"], None)
        .ok()
        .and_then(|v| v["header"]["revision"].as_i64())
        .map_or(0, |r| r + 1);
    let through_follower = etcdctl.only(follower);
    let outcome = through_follower.watch_while(
        &["live", &format!("--rev={next}"), "--prev-kv"],
        WATCH_WAIT,
        || {
            let _ = etcdctl.json(&["put", "live", "v"], None);
        },
    );
    t.record(
        "watch live --rev=<next> --prev-kv on a follower, then put live v (first response)",
        outcome,
    );
}

fn cluster_commands(etcdctl: &Etcdctl, scratch: &Path, t: &mut Transcript) {
    plain(etcdctl, t, &[&["member", "list"]]);
    let first = etcdctl.only(0);
    plain(
        &first,
        t,
        &[&["endpoint", "status"], &["endpoint", "health"]],
    );
    // With no alarm raised (raising one takes a full backend; cluster_alarm.rs does that
    // against qraft): the list is empty, and disarming everything lists, finds nothing and
    // answers without asking again. The list's header is left out: etcd 3.4 (the reference
    // binary here) answers Alarm without one, 3.6 fills it in, as qraft does.
    let mut listed = etcdctl.json(&["alarm", "list"], None);
    if let Ok(Value::Object(fields)) = &mut listed {
        fields.remove("header");
    }
    t.record("alarm list (without its header)", listed);
    // `defrag` prints one plain line per endpoint, in order.
    plain(etcdctl, t, &[&["alarm", "disarm"], &["defrag"]]);
    let file = scratch.join("snapshot.db");
    let path = file.display().to_string();
    t.record(
        "snapshot save <scratch>/snapshot.db",
        first.json(&["snapshot", "save", &path], None),
    );
    t.note(&format!("snapshot file: {}", describe_snapshot(&file)));
}

/// Users, roles and permissions, then what they allow with auth enabled, ending with auth
/// disabled again. Everything goes through the leader alone, so each check sees the auth
/// change before it (a follower may answer a moment before it applied the change).
/// `auth status` is left out: etcdctl 3.4 (the reference binary) does not have it.
fn auth_commands(etcdctl: &Etcdctl, t: &mut Transcript) {
    let leader = etcdctl.only(leader_index(etcdctl));
    plain(
        &leader,
        t,
        &[
            &["user", "add", "root:rootpw"],
            &["user", "add", "reader:readpw"],
            &["user", "add", "reader:again"],
            &["role", "add", "ro"],
            &[
                "role",
                "grant-permission",
                "ro",
                "read",
                "/app/",
                "--prefix",
            ],
            &["role", "grant-permission", "ro", "readwrite", "a", "c"],
            &["role", "grant-permission", "ro", "write", "z", "--from-key"],
            &["role", "grant-permission", "ro", "read", "k1"],
            &["role", "grant-permission", "ro", "bogus", "x"],
            &["role", "grant-permission", "nope", "read", "x"],
            &["role", "get", "ro"],
            &["user", "grant-role", "reader", "ro"],
            &["user", "grant-role", "reader", "nope"],
            &["user", "get", "reader"],
            &["user", "get", "nobody"],
            &["user", "list"],
            &["role", "list"],
            &["auth", "enable"],
            &["--user", "root:rootpw", "put", "/app/x", "1"],
            &["--user", "reader:readpw", "get", "/app/x"],
            &["--user", "reader:readpw", "put", "/app/x", "2"],
            &["--user", "reader:readpw", "get", "other"],
            &["--user", "reader:wrong", "get", "/app/x"],
            &[
                "--user",
                "root:rootpw",
                "role",
                "revoke-permission",
                "ro",
                "/app/",
                "--prefix",
            ],
            &[
                "--user",
                "root:rootpw",
                "role",
                "revoke-permission",
                "ro",
                "k1",
            ],
            &[
                "--user",
                "root:rootpw",
                "role",
                "revoke-permission",
                "ro",
                "k1",
            ],
            &["--user", "root:rootpw", "role", "get", "ro"],
            &["--user", "reader:readpw", "get", "/app/x"],
            &[
                "--user",
                "root:rootpw",
                "user",
                "revoke-role",
                "reader",
                "ro",
            ],
            &[
                "--user",
                "root:rootpw",
                "user",
                "revoke-role",
                "reader",
                "ro",
            ],
            &["--user", "root:rootpw", "user", "get", "reader"],
        ],
    );
    t.record(
        "--user root:rootpw user passwd reader --interactive=false <<< newpw",
        leader.json(
            &[
                "--user",
                "root:rootpw",
                "user",
                "passwd",
                "reader",
                "--interactive=false",
            ],
            Some("newpw\n"),
        ),
    );
    plain(
        &leader,
        t,
        &[
            &["--user", "reader:readpw", "get", "/app/x"],
            &["--user", "reader:newpw", "get", "/app/x"],
            &["--user", "root:rootpw", "user", "delete", "reader"],
            &["--user", "root:rootpw", "user", "delete", "reader"],
            &["--user", "reader:newpw", "get", "/app/x"],
            &["--user", "root:rootpw", "role", "delete", "ro"],
            &["--user", "root:rootpw", "role", "delete", "ro"],
            &["--user", "root:rootpw", "user", "list"],
            &["--user", "root:rootpw", "auth", "disable"],
        ],
    );
}

/// etcd's snapshot file format as seen by `etcdctl snapshot restore`: the saved bytes end
/// with the SHA-256 of everything before them.
fn describe_snapshot(file: &Path) -> String {
    let Ok(bytes) = std::fs::read(file) else {
        return "missing".into();
    };
    let Some(split) = bytes.len().checked_sub(32) else {
        return format!("too short ({} bytes)", bytes.len());
    };
    let (data, trailer) = bytes.split_at(split);
    if data.is_empty() {
        return "no data before the trailer".into();
    }
    if digest(&SHA256, data).as_ref() == trailer {
        "ends with the sha256 of its data".into()
    } else {
        "no sha256 trailer".into()
    }
}

/// Which member leads, from member 0's `endpoint status` (its `leader` field) matched against
/// each member's own id.
fn leader_index(etcdctl: &Etcdctl) -> usize {
    let ids: Vec<Option<u64>> = (0..etcdctl.endpoints().len())
        .map(|i| {
            let status = etcdctl.only(i).json(&["endpoint", "status"], None).ok()?;
            let s = &status[0]["Status"];
            if s["header"]["member_id"] == s["leader"] {
                s["leader"].as_u64()
            } else {
                None
            }
        })
        .collect();
    ids.iter()
        .position(Option::is_some)
        .unwrap_or_else(|| panic!("no leader among {:?}", etcdctl.endpoints()))
}

/// A member that is not the leader.
fn follower_index(etcdctl: &Etcdctl) -> usize {
    (leader_index(etcdctl) + 1) % etcdctl.endpoints().len()
}
