//! `lease grant|revoke|timetolive|list|keep-alive`, with etcdctl's messages.

use qraft_io::client::Client;
use qraft_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseLeasesRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
};
use serde_json::json;

use super::args::{LeaseCommand, parse_hex_id};
use super::output::{Printer, header_json};

pub async fn run(client: &Client, cmd: &LeaseCommand, p: &Printer) -> anyhow::Result<()> {
    match cmd {
        LeaseCommand::Grant { ttl } => {
            let r = client
                .lease_grant(LeaseGrantRequest { ttl: *ttl, id: 0 })
                .await?;
            if !r.error.is_empty() {
                anyhow::bail!("failed to grant lease ({})", r.error);
            }
            if p.is_json() {
                p.print_json(
                    &json!({"header": header_json(r.header.as_ref()), "ID": r.id, "TTL": r.ttl}),
                );
            } else {
                println!("lease {:016x} granted with TTL({}s)", r.id, r.ttl);
            }
        }
        LeaseCommand::Revoke { id } => {
            let id = parse_hex_id(id)? as i64;
            let r = client.lease_revoke(LeaseRevokeRequest { id }).await?;
            if p.is_json() {
                p.print_json(&json!({"header": header_json(r.header.as_ref())}));
            } else {
                println!("lease {id:016x} revoked");
            }
        }
        LeaseCommand::Timetolive { id, keys } => {
            let id = parse_hex_id(id)? as i64;
            let r = client
                .lease_time_to_live(LeaseTimeToLiveRequest { id, keys: *keys })
                .await?;
            if p.is_json() {
                let keys: Vec<String> = r
                    .keys
                    .iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect();
                p.print_json(
                    &json!({"header": header_json(r.header.as_ref()), "ID": r.id,
                    "TTL": r.ttl, "granted-ttl": r.granted_ttl, "keys": keys}),
                );
            } else if r.ttl == -1 {
                println!("lease {id:016x} already expired");
            } else {
                let mut line = format!(
                    "lease {id:016x} granted with TTL({}s), remaining({}s)",
                    r.granted_ttl, r.ttl
                );
                if *keys {
                    let names: Vec<String> = r.keys.iter().map(|k| p.bytes(k)).collect();
                    line += &format!(", attached keys([{}])", names.join(" "));
                }
                println!("{line}");
            }
        }
        LeaseCommand::List => {
            let r = client.lease_leases(LeaseLeasesRequest {}).await?;
            if p.is_json() {
                let ids: Vec<_> = r.leases.iter().map(|l| json!({"ID": l.id})).collect();
                p.print_json(&json!({"header": header_json(r.header.as_ref()), "leases": ids}));
            } else {
                println!("found {} leases", r.leases.len());
                for l in &r.leases {
                    println!("{:016x}", l.id);
                }
            }
        }
        LeaseCommand::KeepAlive { id, once } => {
            let id = parse_hex_id(id)? as i64;
            let mut stream = client.lease_keep_alive(id);
            loop {
                let r = stream.keep_alive().await?;
                if r.ttl <= 0 {
                    println!("lease {id:016x} expired or revoked.");
                    return Ok(());
                }
                if p.is_json() {
                    p.print_json(&json!({"header": header_json(r.header.as_ref()), "ID": r.id, "TTL": r.ttl}));
                } else {
                    println!("lease {id:016x} keepalived with TTL({})", r.ttl);
                }
                if *once {
                    return Ok(());
                }
                // etcd's client renews at a third of the TTL.
                let wait = std::time::Duration::from_millis((r.ttl as u64 * 1000 / 3).max(500));
                qraft_io::runtime::sleep(wait).await;
            }
        }
    }
    Ok(())
}
