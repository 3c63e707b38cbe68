//! qraft-core: everything qraft decides, with no IO.
//!
//! The core is a set of synchronous state machines. Inputs are messages, client requests,
//! `tick()`s and acknowledgements that something was persisted; outputs are values describing
//! what to persist, send, apply and answer. The IO shell (`qraft-io`) carries them out. Because
//! nothing here touches a clock, a socket, a file or a global RNG, every transition is
//! reproducible from its inputs, which is what the transcript and simulation tests rely on.
//! `clippy.toml` in this crate forbids the IO APIs; CI runs clippy with `-D warnings`.

pub mod auth;
pub mod backend;
pub mod error;
pub mod lease;
pub mod mvcc;
pub mod raft;
pub mod server;
pub mod version;
pub mod watch;
