//! `pipeline-responder`: the daemon that runs the CD pipeline runbook's incident response, and its
//! command-line tools.

mod cli;
mod diagnose;
mod digest;
mod digest_schedule;
mod escalate;
mod explain;
mod explain_log;
mod figures;
mod health;
mod http;
mod incidents_cli;
mod ingest;
mod listener;
mod metrics;
mod notify;
mod ops_cli;
mod runtime;
mod slack_interactions;
mod sources;
mod store;
mod supervise;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::run(cli)
}
