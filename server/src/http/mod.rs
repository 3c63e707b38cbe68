//! The member's HTTP endpoints: `/livez`, `/readyz` (and `/livez/<check>`, `/readyz/<check>`),
//! `/health`, `/version` and `/metrics`, with etcd 3.6's semantics and texts.
//!
//! Mounting: implement [`HealthSource`] for the running member, keep one
//! [`qraft_io::metrics::Metrics`] per member, and call
//! `HttpServer::start(addr, Arc::new(source), metrics).await` on the runtime (`qraft_io::runtime`).
//! [`Endpoints::respond`] is the same logic without a socket.

mod checks;
mod futures_io;
mod listener;
mod query;
mod routes;
mod source;
mod timer;

pub use checks::{Check, LIVEZ, READYZ};
pub use futures_io::FuturesIo;
pub use listener::{HEADER_READ_TIMEOUT, HttpServer, into_response};
pub use routes::{Endpoints, Reply, Responder};
pub use source::HealthSource;
pub use timer::RuntimeTimer;
