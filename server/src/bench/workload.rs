//! The workloads and the load shape, as command-line arguments (etcd's benchmark names where
//! they exist).

use std::time::Duration;

use super::keys::KeyOrder;

/// How much load and for how long. A run is always bounded by `--total`, `--duration` or both.
#[derive(Debug, Clone, clap::Args)]
pub struct Load {
    /// Concurrent requesters.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub clients: u64,
    /// Connections the requesters share (requester i uses connection i mod conns).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub conns: u64,
    /// Operations to run in all.
    #[arg(long)]
    pub total: Option<u64>,
    /// Wall-clock bound such as `10s`, `500ms` or `2m`.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Seed of the random keys.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Key size in bytes (at least 8).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Distinct keys the workload draws from.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    #[arg(long, value_enum, default_value_t = KeyOrder::Random)]
    pub key_order: KeyOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Consistency {
    /// Linearizable: the leader confirms it still leads before answering.
    L,
    /// Serializable: any member answers from its local state.
    S,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Workload {
    /// Puts keys.
    Put {
        #[command(flatten)]
        keys: KeyArgs,
        /// Value size in bytes.
        #[arg(long, default_value_t = 8)]
        val_size: usize,
        /// Watchers on disjoint ranges of the key space, open during the puts; the summary's
        /// `items` counts the events they received (see `range_watch`).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        range_watchers: u64,
    },
    /// Reads single keys.
    Range {
        #[command(flatten)]
        keys: KeyArgs,
        #[arg(long, value_enum, default_value_t = Consistency::L)]
        consistency: Consistency,
    },
    /// Puts keys through transactions (no compares, one put in the success branch).
    TxnPut {
        #[command(flatten)]
        keys: KeyArgs,
        #[arg(long, default_value_t = 8)]
        val_size: usize,
    },
    /// `--watchers` watch `--watch-keys` keys while `--total` puts write them in turn; measures
    /// put-to-event latency and events delivered (a fan-out: watchers spread over `--conns`).
    Watch {
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        watchers: u64,
        /// Distinct keys watched (watcher i watches key i mod this).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        watch_keys: u64,
        #[arg(long, default_value_t = 8)]
        key_size: usize,
        #[arg(long, default_value_t = 8)]
        val_size: usize,
        /// How long watchers wait for their remaining events after the last put was
        /// acknowledged; events still missing then are counted as missing (and as errors).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        grace: Duration,
    },
    /// Each requester grants a lease, then renews it over a keep-alive stream.
    LeaseKeepalive,
    /// `--writers` put and `--readers` read single keys of one key space at the same time
    /// (`--clients` is not used); the summary is the writes', with the reads' as `reads`.
    Mixed {
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        writers: u64,
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        readers: u64,
        #[command(flatten)]
        keys: KeyArgs,
        #[arg(long, default_value_t = 8)]
        val_size: usize,
        #[arg(long, value_enum, default_value_t = Consistency::L)]
        consistency: Consistency,
    },
    /// Lists the whole key space in pages (one walker; `--clients` is not used), every page at
    /// the first page's revision. The summary counts pages as requests and keys as `items`.
    List {
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
        page_size: i64,
    },
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Put { .. } => "put",
            Workload::Range {
                consistency: Consistency::L,
                ..
            } => "range-linearizable",
            Workload::Range { .. } => "range-serializable",
            Workload::TxnPut { .. } => "txn-put",
            Workload::Watch { .. } => "watch",
            Workload::LeaseKeepalive => "lease-keepalive",
            Workload::List { .. } => "list",
            Workload::Mixed { .. } => "mixed",
        }
    }
}

/// `10s`, `250ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?} (use ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("x").is_err());
    }
}
