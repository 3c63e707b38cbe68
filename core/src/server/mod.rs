//! The replicated state machine of a member, sans IO.
//!
//! [`Server`] owns a raft node, the application state (MVCC key space, leases, auth, members)
//! over a [`crate::backend::Backend`], and the requests in flight. The shell drives it:
//!
//! - `tick(now_ms)` every `tick_ms` (the heartbeat interval) with its monotonic clock — or
//!   sleep until `poll_timeout()` and call `handle_timeout(now_ms)` (`timer`);
//! - `step(msg)` for every raft message from a peer;
//! - `request(id, ClientRequest)` for every client request (`id` is the shell's handle);
//! - `ready()` → [`RaftWork`] to send / persist, then `advance()` which applies committed
//!   entries (one backend write transaction per batch, the applied index in that same
//!   transaction), serves linearizable reads whose read index is applied, and lets raft
//!   continue;
//! - `take_outputs()` → [`Output`]s: client responses by `id`, watch events per revision,
//!   configuration changes, leader changes, work to run off the loop (bcrypt, reopening the
//!   state after a snapshot from the leader: `state_opened`);
//! - `watch_request(hub, stream, token, request)` for every client watch request, and
//!   `recheck_watchers(hub)` before handing a batch's events to the hub: the auth decisions
//!   about watches (the shell owns the hub).
//!
//! Writes become `qraftpb::InternalRequest` proposals with an ID unique to this member
//! ([`IdGenerator`]); the member that proposed answers its client when it applies the entry.
//! Serializable reads are answered from the local state at once; linearizable reads wait for
//! a ReadIndex round and for the applied index to reach it. The leader proposes revokes of
//! expired leases and lease checkpoints from `tick`.

mod alarm;
mod applier;
mod apply;
mod apply_queue;
mod auto_compaction;
mod config;
mod corrupt;
mod defragment;
mod force_new_cluster_plan;
mod forward;
mod health_read;
mod ids;
mod initial_members;
mod leadership;
mod learner;
mod lease_auth;
mod membership;
mod output;
mod passwords;
mod peer_directory;
mod pending;
mod propose;
mod publish;
mod quota;
mod reads;
mod ready;
mod reconfig_check;
mod reopen;
mod request;
mod response;
mod shell;
mod snapshot;
mod snapshot_restore;
mod state;
mod state_machine;
mod stats;
mod stream_calls;
mod timer;
mod token_wait;
mod version;
mod watch_streams;

pub use alarm::{AlarmStore, describe_alarm};
pub use apply::{ApplyContext, Outcome, set_header};
pub use auto_compaction::{AutoCompaction, REVISION_MODE_INTERVAL_MS};
pub use config::ServerConfig;
pub use force_new_cluster_plan::{
    ForceNewClusterError, ForceNewClusterLog, ForceNewClusterPlan, plan_force_new_cluster,
};
pub use forward::is_leader_only;
pub use ids::IdGenerator;
pub use initial_members::{InitialMembers, initial_members};
pub use learner::served_by_learner;
pub use membership::{MemberChange, to_wire_member};
pub use output::{Output, RaftWork, RequestId};
pub use passwords::{MAX_PASSWORD_WORK, PasswordDone, PasswordOutcome, PasswordWork};
pub use peer_directory::PeerDirectory;
pub use reconfig_check::HEALTH_INTERVAL_MS;
pub use reopen::{INDEX_WHILE_RECEIVING_MAX_KEYS, MAX_HELD_REQUESTS, OpenedState, StateOpenJob};
pub use response::{error_response, header, ok_response};
pub use snapshot::{encode_image, install_image};
pub use snapshot_restore::kept_by_restore;
pub use state::AppState;
pub use state_machine::Server;
pub use stats::ServerStats;
pub use stream_calls::{NextOnStream, StreamCall};
