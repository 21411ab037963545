//! `pipeline-responder`: the daemon that runs the CD pipeline runbook's incident response, and its
//! command-line tools.

/// `println!`, `print!` and `eprintln!` for what the CLI shows an operator: terminal control
/// sequences are removed (`redact::strip_controls`), because that text comes from build logs,
/// events and the API, and must not drive the operator's terminal.
macro_rules! outln {
    ($($arg:tt)*) => {
        println!("{}", pipeline_responder_core::redact::strip_controls(&format!($($arg)*)))
    };
}
macro_rules! out {
    ($($arg:tt)*) => {
        print!("{}", pipeline_responder_core::redact::strip_controls(&format!($($arg)*)))
    };
}
macro_rules! errln {
    ($($arg:tt)*) => {
        eprintln!("{}", pipeline_responder_core::redact::strip_controls(&format!($($arg)*)))
    };
}

mod actions;
mod app;
mod cli;
mod health;
mod http;
mod metrics;
mod notify;
mod pipeline;
mod sources;
mod store;
mod wakeups;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::run(cli)
}
