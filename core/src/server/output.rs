//! What the state machine asks the shell to do.

use qraft_proto::mvccpb::Event;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};
use qraft_proto::raftpb::{ConfState, Entry, HardState, Message, Snapshot};

/// The shell's handle on one client request: any number the shell chooses, echoed back in
/// the response.
pub type RequestId = u64;

/// Raft work to carry out, in this order:
/// 1. send `messages` (may go out at once, in parallel with 2);
/// 2. persist `snapshot` (first), `entries` (append, replacing a conflicting suffix) and
///    `hard_state` to the raft log storage — durably (fsync) when `must_sync`;
/// 3. only then send `persisted_messages`;
/// 4. call [`super::Server::advance`], which applies committed entries to the backend.
#[derive(Debug, Default, Clone)]
pub struct RaftWork {
    pub messages: Vec<Message>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    pub must_sync: bool,
    pub persisted_messages: Vec<Message>,
}

/// Results for the shell, taken with [`super::Server::take_outputs`].
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The answer to client request `id` (a response or an error).
    Respond {
        id: RequestId,
        response: ClientResponse,
    },
    /// Changes of one applied revision, in order, for the watchers (`prev_kv` always set).
    Events { revision: i64, events: Vec<Event> },
    /// The raft configuration changed; persist it with the raft log storage.
    ConfState(ConfState),
    /// A snapshot of the applied state at `index`: store it as the raft snapshot (with
    /// `conf_state`), then compact the raft log up to `compact_to` (entries after it stay for
    /// slow followers). `data` is empty unless `ServerConfig::snapshot_images` is on.
    Snapshot {
        index: u64,
        conf_state: ConfState,
        data: prost::bytes::Bytes,
        compact_to: u64,
    },
    /// The state was replaced by a snapshot from the leader at raft `index`; the key space is
    /// now at `revision`, with `live_keys` keys (counted off the loop). Changes it skipped produced no `Events`; the watchers catch up from
    /// the key space (as after a restart: [`super::Server::state_opened`] told the hub).
    SnapshotInstalled {
        index: u64,
        revision: i64,
        live_keys: usize,
    },
    /// The snapshot from the leader at the job's index is installed in the backend and the
    /// old state is gone: open the new one off the loop thread
    /// ([`super::StateOpenJob::run`] over a read of the backend as last committed) and hand
    /// the result to [`super::Server::state_opened`] — always, or the member serves nothing
    /// again. Raft goes on meanwhile; whatever reads the state waits (`super::reopen`).
    OpenState(super::StateOpenJob),
    /// A snapshot from the leader at raft `index` was refused (its entries are applied or
    /// committed already): whatever the shell stored of it beside the member's state goes.
    SnapshotRefused { index: u64 },
    /// The leader this member knows changed (0 = none known), at `term`: once per change of
    /// the leader's ID, never twice for the same leader in a row. Informational (logs,
    /// gauges); [`super::ServerStats::leader_changes`] counts the changes to a known leader.
    LeaderChanged { leader: u64, term: u64 },
    /// This member is no longer part of the cluster: a configuration it applied leaves it out,
    /// or a peer refused it as removed ([`super::Server::refused_as_removed`]). Stop the
    /// member, as etcd stops one that "has been permanently removed from the cluster"; it must
    /// not campaign or serve again under its ID.
    Removed,
    /// bcrypt work for a request (`super::passwords`): run it off the loop thread
    /// ([`super::PasswordWork::run`]) and hand the result to [`super::Server::password_done`]
    /// — always, or the request never gets its answer.
    PasswordWork(super::PasswordWork),
    /// Send client request `id` to member `to` (the leader) as a forwarded request, which its
    /// shell hands to [`super::Server::forwarded_request`]; give up after `timeout_ms`. Hand
    /// the outcome — the leader's answer, or none — to [`super::Server::forward_answered`]
    /// with `attempt` (`super::forward`). The client's answer comes as `Respond { id, .. }`.
    Forward {
        id: RequestId,
        attempt: u64,
        to: u64,
        request: ClientRequest,
        timeout_ms: u64,
    },
    /// Client request `id` asked for a defragmentation (`super::defragment`): rewrite the
    /// backend without its free space, off the core's thread (it grows with the data), and
    /// hand the end to [`super::Server::defragment_done`] — always, or applying stays paused.
    /// The backend's batch is already committed; the core applies nothing until then.
    Defragment { id: RequestId },
}
