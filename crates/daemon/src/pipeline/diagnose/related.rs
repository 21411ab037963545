//! `related_environment`: how another environment is doing (runbook Task 2 step 3,
//! "verify staging deployment succeeded").

use super::outcome::{aws_reason, Outcome};
use super::Diagnoser;
use chrono::{DateTime, Utc};

/// The other environment's stages, alarms and last execution, with a verdict.
pub(super) async fn run(
    dx: &Diagnoser,
    name: &str,
    environment: &str,
    now: DateTime<Utc>,
) -> Outcome {
    let Some(other) = dx.config.environment(environment) else {
        return Outcome::failed(
            name,
            format!("environment {environment} is not configured"),
            now,
        );
    };
    let state = dx.aws.pipeline_state(&other.pipeline, None).await;
    let alarms = dx.aws.alarms_in_alarm(&other.alarm_prefix).await;
    // Runbook Task 2 step 3, "verify staging deployment succeeded": its last run.
    let last = dx.aws.latest_executions(&other.pipeline, 1).await;
    match (state, alarms, last) {
        (Ok(s), Ok(a), Ok(last)) => {
            let stages = s
                .stages
                .iter()
                .map(|(st, status)| format!("{st}: {status}"))
                .collect::<Vec<_>>()
                .join(" · ");
            let last = last.first();
            let status = last.map_or("", |e| e.status.as_str());
            let verdict = if s.failed_stage.is_some()
                || !a.is_empty()
                || !matches!(status, "" | "Succeeded" | "InProgress" | "Superseded")
            {
                "has problems"
            } else if status == "InProgress" {
                "is deploying"
            } else {
                "looks healthy"
            };
            let last = match last {
                Some(e) => {
                    let at = e
                        .last_update_time
                        .or(e.start_time)
                        .map(|t| format!(" at {}", t.format("%H:%M UTC")))
                        .unwrap_or_default();
                    format!(
                        "last execution {} {}{at}",
                        e.id.get(..8).unwrap_or(&e.id),
                        e.status
                    )
                }
                None => "no execution yet".to_string(),
            };
            Outcome::new(
                name,
                true,
                format!(
                    "{environment} {verdict}: {last}; {} alarm(s) in ALARM",
                    a.len()
                ),
                vec![stages],
                now,
            )
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            Outcome::failed(name, aws_reason(&e), now)
        }
    }
}
