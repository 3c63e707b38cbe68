//! qraft-server: flags, wiring, HTTP endpoints, the CLI and the benchmark tool.

pub mod bench;
pub mod config;
pub mod ctl;
pub mod grpc;
pub mod grpc_core;
pub mod grpc_snapshot;
pub mod health;
pub mod http;
pub mod join;
pub mod limits;
pub mod logging;
pub mod member;
pub mod shutdown;
