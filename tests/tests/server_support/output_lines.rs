//! How a member's outputs read in a transcript: one line per output the script can see,
//! nothing for the ones the cluster carries out silently (messages, persistence, forwards).

use std::fmt::Write as _;

use super::*;

impl Cluster {
    pub fn print_output(&mut self, id: u64, output: Output) {
        match output {
            Output::Respond {
                id: request,
                response,
            } if let Some((from, asked, attempt)) = self.forwarded.remove(&(id, request)) => {
                writeln!(
                    self.out,
                    "n{id} answers n{from}'s #{asked}: {}",
                    show_response(&response)
                )
                .unwrap();
                self.forward_answers
                    .push((from, asked, attempt, Some(response)));
            }
            Output::Respond {
                id: request,
                response,
            } => {
                if let (Some(alias), Some(Out::Authenticate(r))) =
                    (self.token_aliases.remove(&request), &response.response)
                {
                    self.tokens.insert(alias, r.token.clone());
                }
                writeln!(self.out, "n{id} #{request}: {}", show_response(&response)).unwrap();
                self.responses.push((request, response));
            }
            Output::Events { revision, events } => {
                for event in &events {
                    self.events_log.push((id, self.now_ms, event.clone()));
                }
                let shown: Vec<String> = events
                    .iter()
                    .map(|e| {
                        let kv = e.kv.clone().unwrap_or_default();
                        let key = String::from_utf8_lossy(&kv.key);
                        if e.r#type == EventType::Delete as i32 {
                            format!("DELETE {key}")
                        } else {
                            let mut value = String::from_utf8_lossy(&kv.value).into_owned();
                            if value.len() > 16 {
                                value = format!("<{} bytes>", value.len());
                            }
                            format!("PUT {key}={value}")
                        }
                    })
                    .collect();
                writeln!(
                    self.out,
                    "n{id} @{}ms events rev={revision}: {}",
                    self.now_ms,
                    shown.join(", ")
                )
                .unwrap();
            }
            Output::SnapshotInstalled {
                index, revision, ..
            } => {
                writeln!(
                    self.out,
                    "n{id} installed snapshot at index {index} (revision {revision})"
                )
                .unwrap();
            }
            Output::SnapshotRefused { index } => {
                writeln!(self.out, "n{id} refused snapshot at index {index}").unwrap();
            }
            Output::Removed => writeln!(self.out, "n{id} removed from the cluster").unwrap(),
            Output::LeaderChanged { .. }
            | Output::ConfState(_)
            | Output::Snapshot { .. }
            | Output::PasswordWork(_)
            | Output::OpenState(_)
            | Output::Defragment { .. }
            | Output::Forward { .. } => {}
        }
    }
}
