//! Pure core of pipeline-responder: the event model, the configuration, and the rule engine that
//! decides what the CD pipeline runbook says should happen. No I/O, no clock reads, no async.

pub mod actions;
pub mod config;
pub mod decision;
pub mod event;
pub mod finding;
pub mod incident;
pub mod logscan;
pub mod record;
pub mod redact;
pub mod report;
pub mod rules;
pub mod stats;
pub mod transition;
