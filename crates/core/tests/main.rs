//! Integration tests of the core crate (one binary, modules per area).

mod event_props;
mod support;

mod events;

mod config;
mod config_fuzz;
mod logscan;
mod readme;
mod redact;
mod rules;
mod views;
