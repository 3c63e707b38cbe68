//! How the server transcripts show responses.

// Shared by several test crates; each uses a part of it.
#![allow(dead_code)]

use qraft_proto::qraftpb::ClientResponse;
use qraft_proto::qraftpb::client_response::Response as Out;

pub fn prefix_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn show_member(m: &qraft_proto::etcdserverpb::Member) -> String {
    format!(
        "{}{}{:?}",
        m.id,
        if m.is_learner { "(learner)" } else { "" },
        m.peer_ur_ls
    )
}

fn show_members(members: &[qraft_proto::etcdserverpb::Member]) -> String {
    let shown: Vec<String> = members.iter().map(show_member).collect();
    format!("[{}]", shown.join(" "))
}

pub fn show_response(response: &ClientResponse) -> String {
    let header = |h: &Option<qraft_proto::etcdserverpb::ResponseHeader>| {
        h.as_ref().map_or("no header".into(), |h| {
            format!(
                "[cluster={:#x} member={} rev={} term={}]",
                h.cluster_id, h.member_id, h.revision, h.raft_term
            )
        })
    };
    match &response.response {
        Some(Out::Error(e)) => format!(
            "error: {} (code {}, leader hint {})",
            e.message, e.code, e.leader_hint
        ),
        Some(Out::Put(r)) => format!(
            "put ok {}{}",
            header(&r.header),
            r.prev_kv.as_ref().map_or(String::new(), |kv| format!(
                " prev={}",
                String::from_utf8_lossy(&kv.value)
            ))
        ),
        Some(Out::Range(r)) => {
            let kvs: Vec<String> = r
                .kvs
                .iter()
                .map(|kv| {
                    format!(
                        "{}={}{}",
                        String::from_utf8_lossy(&kv.key),
                        String::from_utf8_lossy(&kv.value),
                        if kv.lease != 0 {
                            format!(" (lease {})", kv.lease)
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            format!(
                "range [{}] count={} {}",
                kvs.join(", "),
                r.count,
                header(&r.header)
            )
        }
        Some(Out::DeleteRange(r)) => format!("deleted {} {}", r.deleted, header(&r.header)),
        Some(Out::LeaseGrant(r)) => format!(
            "lease granted id={} ttl={} {}",
            r.id,
            r.ttl,
            header(&r.header)
        ),
        Some(Out::LeaseRevoke(r)) => format!("lease revoked {}", header(&r.header)),
        Some(Out::LeaseKeepAlive(r)) => format!("keepalive id={} ttl={}", r.id, r.ttl),
        Some(Out::LeaseTimeToLive(r)) => {
            let keys: Vec<String> = r
                .keys
                .iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            format!(
                "lease id={} ttl={} granted={} keys={keys:?}",
                r.id, r.ttl, r.granted_ttl
            )
        }
        Some(Out::LeaseLeases(r)) => {
            let ids: Vec<i64> = r.leases.iter().map(|l| l.id).collect();
            format!("leases {ids:?}")
        }
        Some(Out::MemberAdd(r)) => format!(
            "member added {} members={}",
            r.member.as_ref().map_or("?".into(), show_member),
            show_members(&r.members)
        ),
        Some(Out::MemberRemove(r)) => {
            format!("member removed members={}", show_members(&r.members))
        }
        Some(Out::MemberUpdate(r)) => {
            format!("member updated members={}", show_members(&r.members))
        }
        Some(Out::MemberPromote(r)) => {
            format!("member promoted members={}", show_members(&r.members))
        }
        Some(Out::MemberList(r)) => format!("members={}", show_members(&r.members)),
        Some(Out::Authenticate(r)) => {
            format!("authenticated token={} {}", r.token, header(&r.header))
        }
        Some(Out::AuthStatus(r)) => {
            format!("auth enabled={} revision={}", r.enabled, r.auth_revision)
        }
        Some(Out::Hash(r)) => format!("hash={:#010x} {}", r.hash, header(&r.header)),
        Some(Out::HashKv(r)) => format!(
            "hash={:#010x} compact_revision={} hash_revision={} {}",
            r.hash,
            r.compact_revision,
            r.hash_revision,
            header(&r.header)
        ),
        Some(Out::Alarm(r)) => {
            let alarms: Vec<String> = r
                .alarms
                .iter()
                .map(qraft_core::server::describe_alarm)
                .collect();
            format!("alarms [{}] {}", alarms.join(", "), header(&r.header))
        }
        Some(Out::Downgrade(r)) => format!("downgrade ok version={}", r.version),
        Some(Out::Status(r)) => {
            let info = r.downgrade_info.clone().unwrap_or_default();
            let errors = if r.errors.is_empty() {
                String::new()
            } else {
                format!(" errors={:?}", r.errors)
            };
            format!(
                "status version={} storageVersion={} downgradeInfo=(enabled={} target={:?}) leader={}{errors}",
                r.version, r.storage_version, info.enabled, info.target_version, r.leader
            )
        }
        Some(Out::UserGet(r)) => format!("user roles={:?}", r.roles),
        Some(Out::RoleGet(r)) => {
            let perms: Vec<String> = r
                .perm
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}..{}",
                        p.perm_type,
                        String::from_utf8_lossy(&p.key),
                        String::from_utf8_lossy(&p.range_end)
                    )
                })
                .collect();
            format!("role perms=[{}]", perms.join(", "))
        }
        Some(other) => {
            let debug = format!("{other:?}");
            let name = debug.split('(').next().unwrap_or("?").to_string();
            format!("{name} ok")
        }
        None => "empty response".into(),
    }
}
