//! `qraft_process_*`: figures of the member's process, read from `/proc/self` at scrape time.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

/// On systems without `/proc` the families are left out rather than reported as zero.
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl ProcessCollector {
    fn resident_memory_bytes() -> Option<i64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    fn open_fds() -> Option<i64> {
        let count = std::fs::read_dir("/proc/self/fd").ok()?.count();
        i64::try_from(count).ok()
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = [
            (
                "resident_memory_bytes",
                "Resident memory size in bytes.",
                Self::resident_memory_bytes(),
            ),
            (
                "open_fds",
                "Number of open file descriptors.",
                Self::open_fds(),
            ),
        ];
        for (name, help, value) in figures {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
                gauge.encode(metric)?;
            }
        }
        Ok(())
    }
}
