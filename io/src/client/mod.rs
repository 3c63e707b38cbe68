//! The qraft client library: TLS connections to several endpoints, leader discovery through
//! `leader_hint`, safe retries, timeouts, and typed methods for every client call.
//!
//! Retry rule: a request is sent again only when it provably did not take effect — it never
//! left this process (dial, stream open or write failed), or the server refused it before
//! proposing it ("not leader", "no leader", "too many requests") — or when it is a read.
//! A write whose response was lost is reported, never replayed. A learner's refusal (`rpc not
//! supported for learner`) sends the request to each other endpoint once, as etcd's clientv3
//! moves on from a learner; when every endpoint refuses, the first refusal is reported.

mod api;
mod config;
mod core;
mod error;
mod streams;
mod watch;

pub use config::ClientConfig;
pub use core::Client;
pub use error::ClientError;
pub use streams::{LeaseKeepAlive, SnapshotStream};
pub use watch::Watch;
