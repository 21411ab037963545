//! Fault-injection suites (issue 7): kill -9 during an SQS run, AWS faults behind a proxy and in
//! the fakes, a Slack outage, hostile input over SQS. Each runs a small form inside `cargo test`;
//! `PR_FAULTS_FULL=1` runs the full-size form (docs/reliability.md lists both and the figures).
//! `PR_FAULTS_SEED=<n>` replays a run's random choices (each test prints its seed).

mod aws;
mod common;
mod flood;
mod hostile;
mod kill9;
mod proxy;
mod secrets;
mod slack_outage;
mod store_outage;
