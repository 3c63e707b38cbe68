//! qraft-bench: etcd's benchmark workloads against qraft or (feature `etcd`) a real etcd.
//!
//! `qraft-bench --target etcd --endpoints http://127.0.0.1:2379 --clients 64 --total 20000 put`

use clap::{Parser, ValueEnum};
use qraft_io::runtime;
use qraft_server::bench::{self, Load, Target, Workload};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetKind {
    Qraft,
    Etcd,
}

#[derive(Debug, Parser)]
#[command(
    name = "qraft-bench",
    about = "Load generator for qraft (and etcd, for comparison)"
)]
struct Cli {
    /// The system under test.
    #[arg(long, value_enum, default_value_t = TargetKind::Qraft)]
    target: TargetKind,
    /// Client URLs, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "https://127.0.0.1:2379")]
    endpoints: Vec<String>,
    /// CA certificate of the client listener [qraft's default:
    /// ./default.qraft/fixtures/client/ca.crt]; for etcd, given only with https endpoints.
    #[arg(long)]
    cacert: Option<std::path::PathBuf>,
    /// Print the summary as one JSON object (for scripts).
    #[arg(long)]
    json: bool,
    /// Never draw the progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Threads of the client runtime (qraft: async-std's pool; etcd: tokio's workers).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    #[command(flatten)]
    load: Load,
    #[command(subcommand)]
    workload: Workload,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    runtime::size_pool(cli.client_threads);
    let target = make_target(&cli)?;
    let progress = !cli.no_progress && !cli.json;
    // The requesters run on the runtime's pool, where the QUIC connection's tasks run: with
    // one thread (`--client-threads`), an answer is read by the thread that polled it off the
    // socket instead of being handed to the main thread.
    let (load, workload) = (cli.load.clone(), cli.workload.clone());
    let summary = runtime::block_on(
        runtime::spawn(
            async move { bench::run(target.as_ref(), &load, &workload, progress).await },
        )
        .join(),
    )?;
    if cli.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}

fn make_target(cli: &Cli) -> anyhow::Result<Box<dyn Target>> {
    match cli.target {
        TargetKind::Qraft => {
            let cacert = cli
                .cacert
                .clone()
                .unwrap_or_else(|| "default.qraft/fixtures/client/ca.crt".into());
            Ok(Box::new(bench::qraft::QraftTarget::new(
                cli.endpoints.clone(),
                cacert,
            )))
        }
        #[cfg(feature = "etcd")]
        TargetKind::Etcd => Ok(Box::new(bench::etcd::EtcdTarget::new(
            cli.endpoints.clone(),
            cli.client_threads,
            cli.cacert.as_deref(),
        )?)),
        #[cfg(not(feature = "etcd"))]
        TargetKind::Etcd => anyhow::bail!("built without the `etcd` feature"),
    }
}
