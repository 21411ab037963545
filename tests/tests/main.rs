//! End-to-end tests (one binary, modules per area).

mod daemon;
mod fakes;
mod replicas;
mod runbook;
mod support;
