//! qraft-server: flags, wiring, HTTP endpoints, the CLI and the benchmark tool.

pub mod config;
pub mod grpc;
pub mod http;
pub mod logging;
pub mod shutdown;
