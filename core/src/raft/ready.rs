//! What the node asks the embedder to do: the `Ready` value.

use super::machine::StateRole;
use super::read_only::ReadState;
use qraft_proto::raftpb::{Entry, HardState, Message, Snapshot};

/// Volatile state worth reporting (not persisted): who leads and our role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoftState {
    pub leader_id: u64,
    pub role: StateRole,
}

/// Work for the embedder. Handle it in this order, then call `RawNode::advance`:
///
/// 1. Send `messages` — they may go out at once, in parallel with step 2 (a leader replicates
///    to followers while it writes its own log).
/// 2. Persist, atomically if possible: `snapshot` (if any, first), then `entries` (appending,
///    replacing any conflicting suffix), then `hard_state` (if any). Sync to disk when
///    `must_sync`.
/// 3. Only after step 2 is durable, send `persisted_messages` (acknowledgements of appended
///    entries and votes: sending them earlier could lose an acknowledged entry or let this node
///    vote twice in a term after a crash).
/// 4. Install `snapshot` into the state machine, then apply `committed_entries` in order (they
///    may include entries from `entries` of this same `Ready`, which step 2 made durable). Conf
///    change entries are applied with `RawNode::apply_conf_change`.
/// 5. Serve `read_states` whose index is `<=` the applied index.
#[derive(Debug, Default, Clone)]
pub struct Ready {
    pub soft_state: Option<SoftState>,
    pub hard_state: Option<HardState>,
    pub read_states: Vec<ReadState>,
    pub entries: Vec<Entry>,
    pub snapshot: Option<Snapshot>,
    pub committed_entries: Vec<Entry>,
    pub messages: Vec<Message>,
    pub persisted_messages: Vec<Message>,
    pub must_sync: bool,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.read_states.is_empty()
            && self.entries.is_empty()
            && self.snapshot.is_none()
            && self.committed_entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
    }
}
