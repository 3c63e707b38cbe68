//! Reports of what the members hold, for the transcripts: versions, member attributes, the
//! peer directory and the leader changes each member counted.

use std::fmt::Write as _;

use super::cluster::Cluster;

impl Cluster {
    /// The version fields of Maintenance.Status, and the replicated version state, per member.
    pub(super) fn report_versions(&mut self) {
        for (id, member) in &self.members {
            let Some(server) = &member.server else {
                writeln!(self.out, "n{id}: down").unwrap();
                continue;
            };
            let report = server.versions().report();
            let members: Vec<String> = server
                .versions()
                .state()
                .members()
                .map(|(m, v)| match v {
                    Some(v) => format!(
                        "{m}:{}/{}",
                        v.server,
                        v.storage.map_or("-".into(), |s| s.minor_string())
                    ),
                    None => format!("{m}:?"),
                })
                .collect();
            writeln!(
                self.out,
                "n{id}: server={} cluster={} storage={} downgrade={:?} members=[{}]",
                report.server,
                report.cluster.map_or("-".into(), |c| c.minor_string()),
                report.storage.map_or("-".into(), |s| s.minor_string()),
                report.downgrade_proto(),
                members.join(" ")
            )
            .unwrap();
        }
    }

    /// The member records member `id` holds: name and client URLs as applied.
    pub(super) fn report_member_attrs(&mut self, id: u64) {
        let server = self.server(id);
        let lines: Vec<String> = server
            .state()
            .expect("the state is open")
            .members
            .values()
            .map(|m| {
                let attrs = m.member_attrs.clone().unwrap_or_default();
                format!(
                    "{} name={:?} client_urls={:?}",
                    m.id, attrs.name, attrs.client_urls
                )
            })
            .collect();
        let published = server.attributes_published();
        writeln!(self.out, "{}\npublished={published}", lines.join("\n")).unwrap();
    }

    /// What member `id`'s core tells its shell about peers: whom to dial, the members a joining
    /// member is told about, the removed members whose connections are refused.
    pub(super) fn report_peers(&mut self, id: u64) {
        let server = self.server(id);
        let line = match server.peer_directory() {
            None => "no directory (keep the peers there are)".to_string(),
            Some(directory) => {
                let dial: Vec<String> = directory
                    .peers_to_dial()
                    .iter()
                    .map(|(id, url)| format!("{id}={url}"))
                    .collect();
                let told = directory.members_response();
                let members: Vec<String> = told.members.iter().map(|m| m.id.to_string()).collect();
                format!(
                    "dial [{}]\nmembers of cluster {:x}: [{}]\nremoved [{}]",
                    dial.join(" "),
                    told.cluster_id,
                    members.join(" "),
                    directory
                        .removed()
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        };
        writeln!(self.out, "{line}").unwrap();
    }

    /// The changes to a known leader each member counted (etcd's leader_changes_seen).
    pub(super) fn report_leader_changes(&mut self) {
        for (id, member) in &self.members {
            match &member.server {
                None => writeln!(self.out, "n{id}: down").unwrap(),
                Some(server) => writeln!(
                    self.out,
                    "n{id}: leader={} leader changes={}",
                    server.leader(),
                    server.stats().leader_changes
                )
                .unwrap(),
            }
        }
    }
}
