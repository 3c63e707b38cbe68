//! qraft-io: the IO shell that drives qraft-core with real disks, sockets and clocks.

pub mod client;
pub mod data_dir;
pub mod driver;
pub mod error_responses;
pub mod jwt;
pub mod metrics;
pub mod runtime;
pub mod storage;
pub mod tls;
pub mod transport;
