//! Tests of the `pipeline-responder` binary (one test binary, modules per command).

mod check_config;
mod cli_output;
mod explain;
