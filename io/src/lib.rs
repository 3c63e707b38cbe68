//! qraft-io: the IO shell that drives qraft-core with real disks, sockets and clocks.

pub mod metrics;
pub mod storage;
