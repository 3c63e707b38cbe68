//! etcdctl's simple output of `role get`, `user get` and `role revoke-permission`: keys and
//! ranges printed as raw text, `[key, end)` for a range, `[key, <open ended>` for one ending
//! at `\0`, and ` (prefix key)` after a range that is exactly a prefix. With `-w json` the
//! responses print as etcdctl's JSON: the header, then the response's non-empty fields
//! (byte strings base64, a zero permission type left out).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use qraft_proto::authpb::Permission;
use qraft_proto::authpb::permission::Type as PermType;
use qraft_proto::etcdserverpb::ResponseHeader;
use serde_json::{Value, json};

use super::kv::prefix_end;
use super::output::header_json;

/// etcd's fixed name of the user and role that may do everything.
pub const ROOT: &str = "root";

/// `role get ROLE`: the role's name, then its readable and its writable keys.
pub fn role(name: &str, perms: &[Permission]) -> String {
    let mut out = format!("Role {name}\n");
    // etcd answers the root role with no permissions: it may access every key.
    if name == ROOT && perms.is_empty() {
        out.push_str("KV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n");
        return out;
    }
    let section = |title: &str, wanted: PermType, out: &mut String| {
        out.push_str(title);
        out.push('\n');
        for perm in perms {
            let kind = perm.perm_type();
            if kind == wanted || kind == PermType::Readwrite {
                out.push('\t');
                out.push_str(&describe(perm));
                out.push('\n');
            }
        }
    };
    section("KV Read:", PermType::Read, &mut out);
    section("KV Write:", PermType::Write, &mut out);
    out
}

/// One permission's keys: `key`, `[key, end)`, `[key, <open ended>`, with ` (prefix key)`.
fn describe(perm: &Permission) -> String {
    let key = text(&perm.key);
    if perm.range_end.is_empty() {
        return key;
    }
    let mut line = if perm.range_end[..] == [0] {
        format!("[{key}, <open ended>")
    } else {
        format!("[{key}, {})", text(&perm.range_end))
    };
    if !perm.key.is_empty() && prefix_end(&perm.key) == perm.range_end[..] {
        line.push_str(&format!(" (prefix {key})"));
    }
    line
}

/// `user get NAME`: `User: NAME` and the granted roles on one line.
pub fn user(name: &str, roles: &[String]) -> String {
    let mut out = format!("User: {name}\nRoles:");
    for role in roles {
        out.push(' ');
        out.push_str(role);
    }
    out.push('\n');
    out
}

/// `role revoke-permission`'s confirmation; `key` as typed, `range_end` as sent.
pub fn revoked(role: &str, key: &str, range_end: &[u8]) -> String {
    if range_end.is_empty() {
        format!("Permission of key {key} is revoked from role {role}\n")
    } else if range_end == [0] {
        format!("Permission of range [{key}, <open ended> is revoked from role {role}\n")
    } else {
        format!(
            "Permission of range [{key}, {}) is revoked from role {role}\n",
            text(range_end)
        )
    }
}

/// A response that carries nothing but its header (every auth change).
pub fn header_only(header: Option<&ResponseHeader>) -> Value {
    json!({ "header": header_json(header) })
}

/// A response with one list of names (`users`, `roles`), left out when empty.
pub fn names_json(header: Option<&ResponseHeader>, field: &str, names: &[String]) -> Value {
    let mut value = header_only(header);
    if !names.is_empty() {
        value[field] = json!(names);
    }
    value
}

/// `role get`'s response: `perm` entries with `permType`, `key`, `range_end`.
pub fn role_json(header: Option<&ResponseHeader>, perms: &[Permission]) -> Value {
    let mut value = header_only(header);
    if perms.is_empty() {
        return value;
    }
    let perms: Vec<Value> = perms
        .iter()
        .map(|perm| {
            let mut m = serde_json::Map::new();
            if perm.perm_type != 0 {
                m.insert("permType".into(), json!(perm.perm_type));
            }
            if !perm.key.is_empty() {
                m.insert("key".into(), json!(B64.encode(&perm.key)));
            }
            if !perm.range_end.is_empty() {
                m.insert("range_end".into(), json!(B64.encode(&perm.range_end)));
            }
            Value::Object(m)
        })
        .collect();
    value["perm"] = json!(perms);
    value
}

/// `auth status`'s response: `enabled` and `authRevision`, each left out when zero.
pub fn status_json(header: Option<&ResponseHeader>, enabled: bool, revision: u64) -> Value {
    let mut value = header_only(header);
    if enabled {
        value["enabled"] = json!(true);
    }
    if revision != 0 {
        value["authRevision"] = json!(revision);
    }
    value
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(kind: PermType, key: &[u8], end: &[u8]) -> Permission {
        Permission {
            perm_type: kind as i32,
            key: key.to_vec().into(),
            range_end: end.to_vec().into(),
        }
    }

    #[test]
    fn roles_print_as_etcdctl_does() {
        let perms = [
            perm(PermType::Read, b"/app/", b"/app0"),
            perm(PermType::Readwrite, b"a", b"c"),
            perm(PermType::Read, b"k1", b""),
            perm(PermType::Write, b"z", b"\0"),
        ];
        assert_eq!(
            role("ro", &perms),
            "Role ro\nKV Read:\n\t[/app/, /app0) (prefix /app/)\n\t[a, c)\n\tk1\n\
             KV Write:\n\t[a, c)\n\t[z, <open ended>\n"
        );
        assert_eq!(role("empty", &[]), "Role empty\nKV Read:\nKV Write:\n");
        assert_eq!(
            role("root", &[]),
            "Role root\nKV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n"
        );
    }

    #[test]
    fn json_as_etcdctl_prints_it() {
        let perms = [
            perm(PermType::Read, b"/app/", b"/app0"),
            perm(PermType::Readwrite, b"a", b""),
        ];
        assert_eq!(
            role_json(None, &perms).to_string(),
            r#"{"header":{},"perm":[{"key":"L2FwcC8=","range_end":"L2FwcDA="},{"permType":2,"key":"YQ=="}]}"#
        );
        assert_eq!(
            names_json(None, "users", &[]).to_string(),
            r#"{"header":{}}"#
        );
        assert_eq!(
            status_json(None, true, 3).to_string(),
            r#"{"header":{},"enabled":true,"authRevision":3}"#
        );
    }

    #[test]
    fn users_and_revocations() {
        assert_eq!(user("u", &[]), "User: u\nRoles:\n");
        assert_eq!(
            user("u", &["a".into(), "b".into()]),
            "User: u\nRoles: a b\n"
        );
        assert_eq!(
            revoked("r", "k", b""),
            "Permission of key k is revoked from role r\n"
        );
        assert_eq!(
            revoked("r", "a", b"c"),
            "Permission of range [a, c) is revoked from role r\n"
        );
        assert_eq!(
            revoked("r", "z", b"\0"),
            "Permission of range [z, <open ended> is revoked from role r\n"
        );
    }
}
