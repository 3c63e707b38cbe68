//! Reports of what the members hold, for the transcripts: versions and member attributes.

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
}
