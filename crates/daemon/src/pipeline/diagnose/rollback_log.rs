//! `rollback_log`: the tail of the rollback function's log (runbook Incident 2).

use super::outcome::{aws_reason, Outcome};
use super::Diagnoser;
use chrono::{DateTime, Duration, Utc};
use pipeline_responder_core::config::{Environment, LogSearch};
use pipeline_responder_core::logscan;

/// The last `max_lines` lines of the rollback log group in the window, scrubbed.
pub(super) async fn run(
    dx: &Diagnoser,
    name: &str,
    s: &LogSearch,
    env: &Environment,
    now: DateTime<Utc>,
) -> Outcome {
    let start = now - Duration::seconds(s.window_secs as i64);
    match dx
        .aws
        .log_lines(&env.rollback_log_group, None, start, now)
        .await
    {
        Ok(lines) => {
            let tail: Vec<String> = lines
                .iter()
                .rev()
                .take(s.max_lines as usize)
                .rev()
                .map(|l| logscan::scrub(l).into_owned())
                .collect();
            let summary = if lines.is_empty() {
                "no rollback log lines in the window".into()
            } else {
                format!("{} line(s)", lines.len())
            };
            Outcome::new(name, true, summary, tail, now)
        }
        Err(e) => Outcome::failed(name, aws_reason(&e), now),
    }
}
