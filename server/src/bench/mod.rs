//! qraft-bench: etcd's benchmark workloads against any [`Target`], so qraft and etcd are
//! measured by the same generator and the same histograms.

mod budget;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod keys;
mod list;
mod mixed;
mod progress;
pub mod qraft;
mod range_watch;
mod runner;
pub mod stats;
pub mod target;
mod watch;
pub mod workload;

pub use runner::run;
pub use stats::Summary;
pub use target::{BoxFut, Conn, EventStream, KeepAlive, Page, Target, TargetError, WatchedEvent};
pub use watch::WatchTally;
pub use workload::{Load, Workload};

#[cfg(test)]
mod tests;
