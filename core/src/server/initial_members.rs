//! The members a member's store starts with, before raft has told it anything: a new
//! cluster's (`--initial-cluster`, or a data directory restored from a snapshot file) and a
//! joining member's (the list an existing member reported). The core says what they are on
//! disk — the same records applying a membership change writes, and the raft configuration
//! they form — and the runtime only persists that, in one write with the member's identity.

use prost::Message as _;
use qraft_proto::qraftpb::MemberRecord;
use qraft_proto::raftpb::ConfState;

use crate::backend::Table;

/// What a new store holds about its members (see [`initial_members`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InitialMembers {
    /// The raft configuration the members form: store it with the raft log
    /// (`raft::MemStorage::new_with_conf_state`, or the same in a durable log). A joining
    /// member stores none: the leader's snapshot brings it.
    pub conf_state: ConfState,
    /// Backend records (table, key, value) to write, in this order.
    pub records: Vec<(Table, Vec<u8>, Vec<u8>)>,
}

/// The initial state of a store whose members are `members` (voters, and learners for
/// members marked so). A store that already knows its members must not be given it again.
pub fn initial_members(members: &[MemberRecord]) -> InitialMembers {
    let is_learner = |m: &MemberRecord| m.raft_attrs.as_ref().is_some_and(|r| r.is_learner);
    let ids = |learners: bool| {
        members
            .iter()
            .filter(|m| is_learner(m) == learners)
            .map(|m| m.id)
            .collect()
    };
    InitialMembers {
        conf_state: ConfState {
            voters: ids(false),
            learners: ids(true),
            ..Default::default()
        },
        records: members
            .iter()
            .map(|m| {
                (
                    Table::Members,
                    m.id.to_be_bytes().to_vec(),
                    m.encode_to_vec(),
                )
            })
            .collect(),
    }
}
