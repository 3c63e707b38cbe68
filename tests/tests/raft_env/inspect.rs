//! Read-only commands: `status ID` and `log ID`.

use super::{Env, parse_id};
use qraft_core::raft::Storage;
use qraft_core::raft::describe::{describe_conf_state, describe_entry};
use std::fmt::Write as _;

impl Env {
    pub(crate) fn status(&mut self, args: &[&str]) -> Result<(), String> {
        let id = parse_id(args.first().ok_or("status ID")?)?;
        let st = self.raw(id)?.status();
        let mut s = format!(
            "{id}: {} Term:{} Vote:{} Lead:{} Commit:{} Applied:{} {}",
            st.soft_state.role,
            st.hard_state.term,
            st.hard_state.vote,
            st.soft_state.leader_id,
            st.hard_state.commit,
            st.applied,
            describe_conf_state(&st.conf_state)
        );
        for (pid, p) in &st.progress {
            let _ = write!(
                s,
                "\n  {pid}: {} match={} next={}{}{}{}",
                p.state,
                p.matched,
                p.next,
                if p.is_learner { " learner" } else { "" },
                if p.pending_snapshot > 0 {
                    format!(" pending_snap={}", p.pending_snapshot)
                } else {
                    String::new()
                },
                if p.inflights.count() > 0 {
                    format!(" inflight={}", p.inflights.count())
                } else {
                    String::new()
                }
            );
        }
        self.line(s);
        Ok(())
    }

    pub(crate) fn log(&mut self, args: &[&str]) -> Result<(), String> {
        let id = parse_id(args.first().ok_or("log ID")?)?;
        let node = self.nodes.get(&id).ok_or("no such node")?;
        let s = &node.storage;
        let (first, last) = (
            s.first_index().map_err(|e| e.to_string())?,
            s.last_index().map_err(|e| e.to_string())?,
        );
        let mut out = format!(
            "{id}: first={first} last={last} commit={} applied={} state={:?}",
            s.hard_state().commit,
            node.applied_index,
            node.applied
        );
        for e in s
            .entries(first, last + 1, u64::MAX)
            .map_err(|e| e.to_string())?
        {
            let _ = write!(out, "\n  {}", describe_entry(&e));
        }
        self.line(out);
        Ok(())
    }
}
