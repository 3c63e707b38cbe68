//! qraftctl: the command line client (etcdctl's commands, flags and output).

use clap::Parser;
use qraft_server::ctl::{self, Cli};

fn main() {
    let cli = Cli::parse();
    if let Err(err) = qraft_io::runtime::block_on(ctl::run(cli)) {
        eprintln!("Error: {err:#}");
        std::process::exit(ctl::exit_code(&err));
    }
}
