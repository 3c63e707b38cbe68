//! qraft-io: the IO shell that drives qraft-core with real disks, sockets and clocks.

pub mod client;
pub mod driver;
pub mod jwt;
pub mod metrics;
pub mod runtime;
pub mod status;
pub mod storage;
pub mod tls;
pub mod transport;
