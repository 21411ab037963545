//! End-to-end tests (one binary, modules per area).

mod daemon;
mod fakes;
mod operability;
mod replicas;
mod runbook;
mod support;
