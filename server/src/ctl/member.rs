//! `member add|remove|update|list|promote`, with etcdctl's output.

use qraft_io::client::Client;
use qraft_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
    MemberUpdateRequest,
};
use serde_json::{Value, json};

use super::args::{MemberCommand, parse_hex_id};
use super::output::{Format, Printer, header_json, table};

fn urls(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect()
}

fn member_json(m: &Member) -> Value {
    json!({"ID": m.id, "name": m.name, "peerURLs": m.peer_ur_ls, "clientURLs": m.client_ur_ls,
        "isLearner": m.is_learner})
}

pub async fn run(client: &Client, cmd: &MemberCommand, p: &Printer) -> anyhow::Result<()> {
    match cmd {
        MemberCommand::Add {
            name,
            peer_urls,
            learner,
        } => {
            let r = client
                .member_add(MemberAddRequest {
                    peer_ur_ls: urls(peer_urls),
                    is_learner: *learner,
                })
                .await?;
            let h = r.header.unwrap_or_default();
            let added = r.member.clone().unwrap_or_default();
            if p.is_json() {
                let members: Vec<Value> = r.members.iter().map(member_json).collect();
                p.print_json(&json!({"header": header_json(r.header.as_ref()),
                    "member": member_json(&added), "members": members}));
                return Ok(());
            }
            println!(
                "Member {:16x} added to cluster {:16x}\n",
                added.id, h.cluster_id
            );
            let mut cluster = Vec::new();
            for m in &r.members {
                let member_name = if m.id == added.id {
                    name.as_str()
                } else {
                    m.name.as_str()
                };
                for u in &m.peer_ur_ls {
                    cluster.push(format!("{member_name}={u}"));
                }
            }
            println!("QRAFT_NAME=\"{name}\"");
            println!("QRAFT_INITIAL_CLUSTER=\"{}\"", cluster.join(","));
            println!(
                "QRAFT_INITIAL_ADVERTISE_PEER_URLS=\"{}\"",
                added.peer_ur_ls.join(",")
            );
            println!("QRAFT_INITIAL_CLUSTER_STATE=\"existing\"");
        }
        MemberCommand::Remove { id } => {
            let id = parse_hex_id(id)?;
            let r = client.member_remove(MemberRemoveRequest { id }).await?;
            let h = r.header.unwrap_or_default();
            println!("Member {id:16x} removed from cluster {:16x}", h.cluster_id);
        }
        MemberCommand::Update { id, peer_urls } => {
            let id = parse_hex_id(id)?;
            let r = client
                .member_update(MemberUpdateRequest {
                    id,
                    peer_ur_ls: urls(peer_urls),
                })
                .await?;
            let h = r.header.unwrap_or_default();
            println!("Member {id:16x} updated in cluster {:16x}", h.cluster_id);
        }
        MemberCommand::Promote { id } => {
            let id = parse_hex_id(id)?;
            let r = client.member_promote(MemberPromoteRequest { id }).await?;
            let h = r.header.unwrap_or_default();
            println!("Member {id:16x} promoted in cluster {:16x}", h.cluster_id);
        }
        MemberCommand::List => {
            let r = client
                .member_list(MemberListRequest { linearizable: true })
                .await?;
            if p.is_json() {
                let members: Vec<Value> = r.members.iter().map(member_json).collect();
                p.print_json(
                    &json!({"header": header_json(r.header.as_ref()), "members": members}),
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = r
                .members
                .iter()
                .map(|m| {
                    let status = if m.name.is_empty() {
                        "unstarted"
                    } else {
                        "started"
                    };
                    vec![
                        format!("{:x}", m.id),
                        status.to_string(),
                        m.name.clone(),
                        m.peer_ur_ls.join(","),
                        m.client_ur_ls.join(","),
                        m.is_learner.to_string(),
                    ]
                })
                .collect();
            if p.format == Format::Table {
                print!(
                    "{}",
                    table(
                        &[
                            "ID",
                            "STATUS",
                            "NAME",
                            "PEER ADDRS",
                            "CLIENT ADDRS",
                            "IS LEARNER"
                        ],
                        &rows
                    )
                );
            } else {
                for row in rows {
                    println!("{}", row.join(", "));
                }
            }
        }
    }
    Ok(())
}
