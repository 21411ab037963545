//! End-to-end tests (one binary, modules per area).

mod actions;
mod daemon;
mod deploy_image;
mod deploy_observability;
mod deploy_stack;
mod fakes;
mod faults;
mod operability;
mod pagers;
mod replicas;
mod runbook;
mod support;
mod watcher_economy;
