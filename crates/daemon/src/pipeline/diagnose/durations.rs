//! `stage_durations`: runbook Incident 3 steps 2–4, for a slow or stuck execution.

use super::outcome::{aws_reason, Outcome};
use super::Diagnoser;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Environment;
use pipeline_responder_core::record::Incident;

/// Runbook Incident 3 steps 2–4: the slowest stage, and whether an action looks stuck.
pub(super) async fn run(
    dx: &Diagnoser,
    name: &str,
    incident: &Incident,
    env: &Environment,
    now: DateTime<Utc>,
) -> Outcome {
    let Some(execution) = &incident.execution_id else {
        return Outcome::new(name, true, "no execution known yet".into(), vec![], now);
    };
    let stuck_after = dx.config.thresholds.stuck_after_secs as i64;
    let durations = match dx
        .aws
        .stage_durations(&env.pipeline, execution, now, stuck_after)
        .await
    {
        Ok(d) => d,
        Err(e) => return Outcome::failed(name, aws_reason(&e), now),
    };
    let minutes = |s: i64| format!("{} min", s / 60);
    // How long the execution has run against the threshold: the first thing Incident 3 asks.
    let running = incident
        .execution_start
        .map(|start| {
            format!(
                "execution running {} (threshold {}); ",
                minutes((now - start).num_seconds().max(0)),
                minutes(dx.config.thresholds.deployment_duration_secs as i64)
            )
        })
        .unwrap_or_default();
    let mut summary = match durations.stages.iter().max_by_key(|s| s.1) {
        Some((stage, secs, running)) => {
            format!(
                "slowest stage {stage}: {}{}",
                minutes(*secs),
                if *running { " and running" } else { "" }
            )
        }
        None => "no action has run yet".to_string(),
    };
    match &durations.stuck_action {
        Some((stage, action, idle)) => summary.push_str(&format!(
            "; {stage} › {action} looks stuck (no progress for {})",
            minutes(*idle)
        )),
        None => summary.push_str("; progressing"),
    }
    let line = durations
        .stages
        .iter()
        .map(|(s, secs, _)| format!("{s}: {}", minutes(*secs)))
        .collect::<Vec<_>>()
        .join(" · ");
    Outcome::new(name, true, format!("{running}{summary}"), vec![line], now)
}
