//! `pipeline-responder`: the daemon that runs the CD pipeline runbook's incident response, and its
//! command-line tools.

mod cli;
mod explain;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::run(cli)
}
