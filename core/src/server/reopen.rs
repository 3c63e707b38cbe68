//! Reopening the in-memory state after a snapshot from the leader, off the shell's loop.
//!
//! Installing a snapshot replaces the whole key space, and the in-memory state (the key
//! index, leases, auth, members) is rebuilt from it in one pass over the key history: seconds
//! at millions of keys. Done on the thread that drives raft, the member would send no
//! heartbeat response, answer no vote and append nothing for as long. So the core drops the
//! old state at once (never two key indexes at once: an install is when a member holds the most
//! data), asks the shell to open the new one with [`Output::OpenState`], and raft goes on. The
//! shell runs the [`StateOpenJob`] on a worker thread over a read of its backend as last
//! committed, and hands the [`OpenedState`] back with [`Server::state_opened`]; the core checks
//! it is the one it asked for and swaps it in.
//!
//! Invariants while the state reopens (`Server::reopening` is set exactly then, and
//! `Server::state` is an empty placeholder at the snapshot's index):
//! - raft runs: ticks, heartbeats, votes, entries appended and persisted, messages, ReadIndex
//!   rounds; requests already proposed time out as usual;
//! - committed entries wait in the apply queue (as during a defragmentation, `super::defragment`), with the
//!   answers to their writes and the linearizable reads that need them;
//! - every input that reads the state waits here, in arrival order, and goes its normal way
//!   once the state is back: client requests, admissions, forwarded requests (and this
//!   member's own forwarded requests once it leads), health reads, watch requests, finished
//!   bcrypt work. Beyond [`MAX_HELD_REQUESTS`] client requests are refused with "too many
//!   requests";
//! - the periodic work that reads the state waits (lease expiry and checkpoints, token sweeps,
//!   version and attribute publishing, the corruption and quota checks, auto compaction): raft
//!   ticks, request deadlines and forwarding go on;
//! - the shell sees no state ([`Server::state`] is `None`), so nothing it drives (a watch hub's
//!   catch-up and progress, status reports) reads the placeholder;
//! - a further snapshot from the leader is refused ([`Output::SnapshotRefused`]): the worker
//!   reads the installed one, which must stay in place. The leader offers it again later.

use qraft_proto::etcdserverpb::WatchRequest;
use qraft_proto::qraftpb::{ClientRequest, TokenClaims};

use crate::auth::AuthConfig;
use crate::backend::{Backend, BackendError, ReadTxn, Table};
use crate::error::{Error, Result};
use crate::lease::LessorConfig;
use crate::mvcc::KeyIndexBuilder;
use crate::raft::Storage;
use crate::watch::{StreamId, WatchHub};

use super::output::{Output, RequestId};
use super::passwords::PasswordDone;
use super::state::AppState;
use super::state_machine::Server;

/// Client requests that may wait for the state at once; more are refused ("too many
/// requests"), so a burst during a long reopening costs bounded memory.
pub const MAX_HELD_REQUESTS: usize = 10_000;

/// The largest key index of its own with which a member still builds the index of a snapshot
/// while it arrives ([`Server::index_while_receiving`]): a new member's is empty. At a few
/// hundred bytes per indexed key (the key, its revisions, the tree), this many cost tens of MB
/// at most on top of the new index.
pub const INDEX_WHILE_RECEIVING_MAX_KEYS: usize = 100_000;

/// The work of reopening the state at a snapshot's index, for the shell to run off its loop
/// thread ([`Output::OpenState`]). `Send`: it carries only the index and the settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StateOpenJob {
    index: u64,
    lessor: LessorConfig,
    auth: AuthConfig,
}

/// A reopened state (or why it could not be opened), for [`Server::state_opened`]. Opaque.
#[derive(Debug)]
pub struct OpenedState {
    index: u64,
    /// The state, and the number of keys live in it (counted off the loop too: one walk of
    /// the key index).
    state: Result<(AppState, usize)>,
}

impl StateOpenJob {
    /// The raft index of the snapshot whose state this opens.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Opens the state from `txn`, a read of the backend as last committed (it holds the
    /// installed snapshot; on any thread). O(keys): run it on a worker thread. `indexed`: the
    /// key index built from the snapshot's history as it arrived (see
    /// [`Server::index_while_receiving`]), if the shell has it for this job's snapshot; the
    /// key space is then not read again. The state is the same either way.
    pub fn run<T: ReadTxn + ?Sized>(
        &self,
        txn: &T,
        indexed: Option<KeyIndexBuilder>,
    ) -> OpenedState {
        let state = AppState::open_with(txn, self.lessor.clone(), self.auth.clone(), indexed);
        OpenedState {
            index: self.index,
            state: state.map(|state| {
                let live_keys = state.mvcc.live_keys();
                (state, live_keys)
            }),
        }
    }

    /// The shell could not read its backend for this job: the failure goes back to the core,
    /// for which it is fatal.
    pub fn failed(&self, err: impl Into<Error>) -> OpenedState {
        OpenedState {
            index: self.index,
            state: Err(err.into()),
        }
    }
}

impl OpenedState {
    /// The raft index of the snapshot it was opened for.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// An input that reads the state, waiting for it (see the module documentation).
#[derive(Debug)]
enum HeldInput {
    Request(RequestId, ClientRequest),
    Admit(RequestId, ClientRequest),
    Forwarded(RequestId, u64, ClientRequest),
    /// A request already past the learner rule and forwarding (`Server::serve_here`).
    ServeHere(RequestId, ClientRequest),
    HealthRead(RequestId, bool),
    Watch {
        stream: StreamId,
        token: String,
        cert_common_name: String,
        claims: Option<TokenClaims>,
        request: WatchRequest,
    },
    PasswordDone(PasswordDone),
}

/// The state being reopened at `index`, and the inputs waiting for it.
#[derive(Debug)]
pub(super) struct Reopening {
    index: u64,
    held: Vec<HeldInput>,
    held_requests: usize,
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Drops the state and asks the shell to reopen it at `index` (the backend holds the
    /// snapshot installed there, committed). Inputs held for an earlier reopening keep waiting.
    pub(super) fn begin_reopen(&mut self, index: u64, term: u64) {
        // The old key index goes before the new one is built: both at once would double the
        // member's largest structure at the moment it installs the most data.
        self.state = AppState::placeholder(index, term, &self.config);
        let (held, held_requests) = self
            .reopening
            .take()
            .map_or((Vec::new(), 0), |r| (r.held, r.held_requests));
        self.reopening = Some(Reopening {
            index,
            held,
            held_requests,
        });
        self.apply_queue.hold_for_reopen(true);
        self.outputs.push(Output::OpenState(StateOpenJob {
            index,
            lessor: self.config.lessor.clone(),
            auth: self.config.auth.clone(),
        }));
    }

    /// The shell ran the [`StateOpenJob`] of an [`Output::OpenState`]. The state the core
    /// asked for last is swapped in: the reads it makes possible are served, the inputs that
    /// waited go their way (watch requests into `hub`, whose watchers then catch up from the
    /// new key space), and `Output::SnapshotInstalled` says the install is complete. Then, as
    /// after [`Server::defragment_done`], the committed entries that waited are applied at the next
    /// advance ([`Server::has_entries_to_apply`] says whether to turn for them). A state for an
    /// earlier request (a newer snapshot replaced it) is dropped. An error is fatal for the
    /// member, as any failure to read its backend.
    pub fn state_opened(&mut self, opened: OpenedState, hub: &mut WatchHub) -> Result<()> {
        if self.reopening.as_ref().map(|r| r.index) != Some(opened.index) {
            return Ok(());
        }
        let (state, live_keys) = opened.state?;
        if state.applied_index != opened.index {
            return Err(BackendError::Corrupt {
                table: Table::Meta,
                reason: format!(
                    "the state opened for the snapshot at index {} is at index {}",
                    opened.index, state.applied_index
                ),
            }
            .into());
        }
        let Some(reopening) = self.reopening.take() else {
            return Ok(());
        };
        self.state = state;
        self.apply_queue.hold_for_reopen(false);
        let members: Vec<u64> = self.state.members.keys().copied().collect();
        self.versions = super::version::open_versions(&self.config, &self.backend, members)?;
        if self.is_leader() {
            self.state
                .lessor
                .promote(self.config.election_timeout_ms(), self.now_ms);
        }
        self.outputs.push(Output::SnapshotInstalled {
            index: reopening.index,
            revision: self.state.mvcc.current_revision(),
            live_keys,
        });
        // Changes the snapshot skipped produced no events: every watcher catches up from the
        // key space, as after a restart.
        hub.resync();
        self.after_apply();
        for input in reopening.held {
            self.replay(input, hub);
        }
        Ok(())
    }

    /// Whether the shell should build the key index of a snapshot from the leader while its
    /// records arrive, and hand it to the [`StateOpenJob`] that reopens the state after the
    /// install (which then does not read the key space again: seconds at millions of keys,
    /// on a join's critical path). Only while this member's own index is small
    /// (at most [`INDEX_WHILE_RECEIVING_MAX_KEYS`] keys): the old state stays in place while
    /// a snapshot arrives, and two large key indexes at once would raise the member's peak
    /// memory at the moment it holds the most data (the index is O(keys) — a member catching up
    /// over a large old state reopens by scanning instead). Never while the state reopens: a
    /// further snapshot is refused then.
    pub fn index_while_receiving(&self) -> bool {
        !self.is_reopening() && self.state.mvcc.indexed_keys() <= INDEX_WHILE_RECEIVING_MAX_KEYS
    }

    /// Whether the state is being reopened (inputs that read it wait).
    pub(super) fn is_reopening(&self) -> bool {
        self.reopening.is_some()
    }

    /// Keeps a client request that came while the state reopens; refuses it past
    /// [`MAX_HELD_REQUESTS`].
    pub(super) fn hold_request(&mut self, id: RequestId, input: HeldRequest) {
        let Some(reopening) = self.reopening.as_mut() else {
            return;
        };
        if reopening.held_requests >= MAX_HELD_REQUESTS {
            return self.respond_error(id, &Error::TooManyRequests, 0);
        }
        reopening.held_requests += 1;
        reopening.held.push(input.0);
    }

    pub(super) fn hold_watch(
        &mut self,
        stream: StreamId,
        (token, cert_common_name, claims): (&str, &str, Option<&TokenClaims>),
        request: WatchRequest,
    ) {
        if let Some(reopening) = self.reopening.as_mut() {
            reopening.held.push(HeldInput::Watch {
                stream,
                token: token.to_string(),
                cert_common_name: cert_common_name.to_string(),
                claims: claims.cloned(),
                request,
            });
        }
    }

    pub(super) fn hold_password_done(&mut self, done: PasswordDone) {
        if let Some(reopening) = self.reopening.as_mut() {
            reopening.held.push(HeldInput::PasswordDone(done));
        }
    }

    fn replay(&mut self, input: HeldInput, hub: &mut WatchHub) {
        match input {
            HeldInput::Request(id, request) => self.request(id, request),
            HeldInput::Admit(id, request) => self.admit(id, request),
            HeldInput::Forwarded(id, from, request) => self.forwarded_request(id, from, request),
            HeldInput::ServeHere(id, request) => self.serve_here(id, request),
            HeldInput::HealthRead(id, serializable) => self.health_read(id, serializable),
            HeldInput::Watch {
                stream,
                token,
                cert_common_name,
                claims,
                request,
            } => self.watch_request(
                hub,
                stream,
                (&token, &cert_common_name, claims.as_ref()),
                request,
            ),
            HeldInput::PasswordDone(done) => self.password_done(done),
        }
    }
}

/// A client request to hold (see [`Server::hold_request`]).
pub(super) struct HeldRequest(HeldInput);

impl HeldRequest {
    pub fn request(id: RequestId, request: ClientRequest) -> Self {
        HeldRequest(HeldInput::Request(id, request))
    }

    pub fn admit(id: RequestId, request: ClientRequest) -> Self {
        HeldRequest(HeldInput::Admit(id, request))
    }

    pub fn forwarded(id: RequestId, from: u64, request: ClientRequest) -> Self {
        HeldRequest(HeldInput::Forwarded(id, from, request))
    }

    pub fn serve_here(id: RequestId, request: ClientRequest) -> Self {
        HeldRequest(HeldInput::ServeHere(id, request))
    }

    pub fn health_read(id: RequestId, serializable: bool) -> Self {
        HeldRequest(HeldInput::HealthRead(id, serializable))
    }
}
