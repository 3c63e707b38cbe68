//! The driver: one async task that owns a member's core state machine
//! ([`qraft_core::server::Server`]) and carries out everything it asks for.
//!
//! Inputs are gathered from three places — raft messages from the peer transport, client
//! commands from [`DriverHandle`]s, and the tick timer — and every input that is available in
//! one loop turn is fed to the core before any output is carried out. That is the **group
//! commit**: whatever a turn gathered becomes one raft journal record (one fsync), and the
//! committed entries are applied into an LMDB transaction the loop keeps open for a few
//! milliseconds across turns (`held`), whose commit is off the path of the next request. See
//! [`run`] for the exact order, which follows the rules documented on `RaftWork`/`Ready`
//! (messages that acknowledge persisted state go out only after the fsync).
//!
//! The driver is runtime-agnostic apart from [`crate::runtime`] (spawn, sleep).

mod client_calls;
mod config;
mod defrag;
mod directory;
mod handle;
mod held;
mod info;
mod leader_forwarding;
mod metrics;
mod outputs;
mod password_pool;
mod peer_resolver;
mod persist;
mod run;
mod secrets;
mod state_open;
mod storage_contract;
mod watch;
mod watch_queue;

pub use config::DriverConfig;
pub use handle::{DriverError, DriverHandle};
pub use info::NodeInfo;
pub use run::{Driver, start};
pub use secrets::os_secret_rng;
pub use storage_contract::{DriverBatch, DriverStorage, SnapshotChunks};
pub use watch_queue::{STREAM_ROOM_BYTES, WatchResponses};
