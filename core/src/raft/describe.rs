//! Compact, stable text forms of raft values, for logs, transcripts and failing-test output.

use super::confchange::ConfChangeProposal;
use qraft_proto::raftpb::{ConfChangeType, ConfState, Entry, EntryType, Message, Snapshot};
use std::fmt::Write as _;

fn ids(list: &[u64]) -> String {
    list.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Voters:[1 2 3] VotersOutgoing:[..] Learners:[..] LearnersNext:[..] AutoLeave:true`, the
/// empty parts omitted.
pub fn describe_conf_state(cs: &ConfState) -> String {
    let mut s = format!("Voters:[{}]", ids(&cs.voters));
    if !cs.voters_outgoing.is_empty() {
        let _ = write!(s, " VotersOutgoing:[{}]", ids(&cs.voters_outgoing));
    }
    if !cs.learners.is_empty() {
        let _ = write!(s, " Learners:[{}]", ids(&cs.learners));
    }
    if !cs.learners_next.is_empty() {
        let _ = write!(s, " LearnersNext:[{}]", ids(&cs.learners_next));
    }
    if cs.auto_leave {
        s.push_str(" AutoLeave:true");
    }
    s
}

/// `v4 l5 r2` for a conf change's changes; `leave-joint` for the empty one.
pub fn describe_conf_change(cc: &ConfChangeProposal) -> String {
    let v2 = cc.as_v2();
    if v2.changes.is_empty() {
        return "leave-joint".to_string();
    }
    v2.changes
        .iter()
        .map(|c| {
            let prefix = match ConfChangeType::try_from(c.r#type) {
                Ok(ConfChangeType::ConfChangeAddNode) => "v",
                Ok(ConfChangeType::ConfChangeAddLearnerNode) => "l",
                Ok(ConfChangeType::ConfChangeRemoveNode) => "r",
                Ok(ConfChangeType::ConfChangeUpdateNode) => "u",
                Err(_) => "?",
            };
            format!("{prefix}{}", c.node_id)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `term/index Type data`.
pub fn describe_entry(e: &Entry) -> String {
    let kind = EntryType::try_from(e.r#type).map_or("Unknown", |t| t.as_str_name());
    let data = match ConfChangeProposal::from_entry(e) {
        Ok(Some(cc)) => describe_conf_change(&cc),
        Ok(None) => format!("{:?}", String::from_utf8_lossy(&e.data)),
        Err(err) => format!("<{err}>"),
    };
    format!("{}/{} {kind} {data}", e.term, e.index)
}

pub fn describe_snapshot(s: &Snapshot) -> String {
    let meta = s.metadata.clone().unwrap_or_default();
    format!(
        "Index:{} Term:{} ConfState:{}",
        meta.index,
        meta.term,
        describe_conf_state(&meta.conf_state.unwrap_or_default())
    )
}

/// `1->2 MsgApp Term:2 Log:1/5 Commit:5 Entries:[2/6 EntryNormal "x"]`, zero fields omitted.
pub fn describe_message(m: &Message) -> String {
    let kind = m.r#type().as_str_name();
    let mut s = format!("{}->{} {kind} Term:{}", m.from, m.to, m.term);
    if m.log_term != 0 || m.index != 0 {
        let _ = write!(s, " Log:{}/{}", m.log_term, m.index);
    }
    if m.commit != 0 {
        let _ = write!(s, " Commit:{}", m.commit);
    }
    if m.vote != 0 {
        let _ = write!(s, " Vote:{}", m.vote);
    }
    if m.reject {
        let _ = write!(s, " Rejected (Hint: {})", m.reject_hint);
    }
    if !m.entries.is_empty() {
        let es: Vec<String> = m.entries.iter().map(describe_entry).collect();
        let _ = write!(s, " Entries:[{}]", es.join(", "));
    }
    if let Some(snap) = &m.snapshot {
        let _ = write!(s, " Snapshot: {}", describe_snapshot(snap));
    }
    if !m.context.is_empty() {
        let _ = write!(s, " Context:{:?}", String::from_utf8_lossy(&m.context));
    }
    s
}
