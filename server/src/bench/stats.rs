//! Latency recording and the summary every workload prints: qps, average, p50/p90/p99/p99.9,
//! max and errors, as text or JSON.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::watch::WatchTally;

/// How many distinct error messages a summary keeps (the count covers all of them).
const KEPT_ERRORS: usize = 5;

/// Latencies (in microseconds) and errors of one requester; merged at the end of a run.
#[derive(Debug, Clone)]
pub struct Recorder {
    latencies: Histogram<u64>,
    errors: u64,
    error_samples: Vec<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            // 1 µs .. 1 hour at 3 significant digits; `saturating_record` clamps outliers.
            latencies: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            errors: 0,
            error_samples: Vec::new(),
        }
    }

    pub fn success(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latencies.saturating_record(micros);
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.errors += 1;
        let message = message.into();
        if self.error_samples.len() < KEPT_ERRORS && !self.error_samples.contains(&message) {
            self.error_samples.push(message);
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latencies.add(&other.latencies);
        self.errors += other.errors;
        for message in &other.error_samples {
            if self.error_samples.len() < KEPT_ERRORS && !self.error_samples.contains(message) {
                self.error_samples.push(message.clone());
            }
        }
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    pub fn count(&self) -> u64 {
        self.latencies.len()
    }

    pub fn summary(&self, workload: &str, target: &str, elapsed: Duration) -> Summary {
        let h = &self.latencies;
        let ms = |micros: u64| micros as f64 / 1000.0;
        let secs = elapsed.as_secs_f64().max(1e-9);
        Summary {
            workload: workload.to_owned(),
            target: target.to_owned(),
            ok: h.len(),
            errors: self.errors,
            elapsed_s: secs,
            qps: h.len() as f64 / secs,
            avg_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            error_samples: self.error_samples.clone(),
            items: None,
            reads: None,
            watch: None,
        }
    }
}

/// The result of one run. Latencies in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub workload: String,
    pub target: String,
    pub ok: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub qps: f64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub error_samples: Vec<String>,
    /// Items a workload counts besides requests (the keys a paged list returned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    /// The reads of a mixed run (this summary is its writes').
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads: Option<Box<Summary>>,
    /// The watch workload's accounting of late and missing events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchTally>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Summary ({} on {}):", self.workload, self.target)?;
        writeln!(f, "  Total:     {:.4} s", self.elapsed_s)?;
        writeln!(f, "  Requests:  {} ok, {} errors", self.ok, self.errors)?;
        writeln!(f, "  Rate:      {:.1} req/s", self.qps)?;
        writeln!(f, "  Average:   {:.3} ms", self.avg_ms)?;
        writeln!(f, "  p50:       {:.3} ms", self.p50_ms)?;
        writeln!(f, "  p90:       {:.3} ms", self.p90_ms)?;
        writeln!(f, "  p99:       {:.3} ms", self.p99_ms)?;
        writeln!(f, "  p99.9:     {:.3} ms", self.p999_ms)?;
        write!(f, "  Max:       {:.3} ms", self.max_ms)?;
        if let Some(reads) = &self.reads {
            write!(f, "\n{reads}")?;
        }
        if let Some(items) = self.items {
            write!(f, "\n  Items:     {items}")?;
        }
        if let Some(w) = &self.watch {
            write!(
                f,
                "\n  Events:    {} late (the last {} ms after the last put), {} missing in {} \
                 watchers, {} out of order, {} streams resumed",
                w.late,
                w.last_event_after_ms,
                w.missing,
                w.incomplete_watchers,
                w.out_of_order,
                w.resumed_streams
            )?;
        }
        for message in &self.error_samples {
            write!(f, "\n  error:     {message}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_recorders_report_percentiles_and_errors_of_both() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for ms in 1..=50 {
            a.success(Duration::from_millis(ms));
        }
        for ms in 51..=100 {
            b.success(Duration::from_millis(ms));
        }
        b.error("timeout");
        b.error("timeout");
        a.merge(&b);
        let s = a.summary("put", "x", Duration::from_secs(2));
        assert_eq!((s.ok, s.errors), (100, 2));
        assert_eq!(s.error_samples, vec!["timeout".to_owned()]);
        assert!((s.qps - 50.0).abs() < 1e-9);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{}", s.p50_ms);
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{}", s.p99_ms);
        assert!((s.max_ms - 100.0).abs() < 0.1, "{}", s.max_ms);
    }
}
