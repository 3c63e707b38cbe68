//! The qraft server binary: flags → validated config → logs → the member, until SIGINT/SIGTERM.

use anyhow::Context;
use clap::Parser;
use qraft_server::config::{Config, Flags};
use qraft_server::{logging, shutdown::ShutdownSignal};

fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let (config, notes) = match Config::from_flags(flags) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("qraft: {e}");
            std::process::exit(2);
        }
    };
    qraft_io::runtime::size_pool_for_member();
    logging::init(config.log_level);
    for note in notes {
        tracing::warn!("{note}");
    }
    let shutdown = ShutdownSignal::install().context("installing signal handlers")?;
    // No IDs here: those computed from the flags are wrong for a member that joined an
    // existing cluster or restarts with stored ones; the "serving" line logs the IDs in force.
    tracing::info!(
        name = %config.name,
        data_dir = %config.data_dir.display(),
        "starting qraft"
    );
    qraft_server::member::run(config, shutdown)
}
