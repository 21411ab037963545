//! `health_check`: one GET of the environment's health URL.

use super::outcome::Evidence;
use super::outcome::Outcome;
use super::Diagnoser;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Environment;
use std::time::Duration as StdDuration;

/// Whether the health URL answers below `expect_status_below` within `timeout_secs`.
pub(super) async fn run(
    dx: &Diagnoser,
    name: &str,
    env: &Environment,
    timeout_secs: &u64,
    expect_status_below: &u16,
    now: DateTime<Utc>,
) -> Outcome {
    let Some(url) = &env.health_url else {
        return Outcome::new(name, true, "no health_url configured".into(), vec![], now);
    };
    let request = dx
        .http
        .get(url)
        .timeout(StdDuration::from_secs(*timeout_secs))
        .send()
        .await;
    let (ok, summary) = match request {
        Ok(r) => {
            let status = r.status().as_u16();
            (
                status < *expect_status_below,
                format!("health check answered HTTP {status}"),
            )
        }
        Err(e) => (
            false,
            format!(
                "health check failed: {}",
                if e.is_timeout() {
                    "timeout"
                } else {
                    "no answer"
                }
            ),
        ),
    };
    let mut o = Outcome::new(name, true, summary, vec![], now);
    o.evidence = Evidence::Health { ok };
    o
}
