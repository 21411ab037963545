//! Tests of the `pipeline-responder` binary (one test binary, modules per command).

mod cli;
