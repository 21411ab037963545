//! `pipeline_state`: where the execution stopped (runbook Incident 1 step 1: the failed
//! stage and action, and its error).

use super::outcome::{aws_reason, Outcome};
use super::Diagnoser;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Environment;
use pipeline_responder_core::decision::ErrorInfo;
use pipeline_responder_core::record::Incident;

/// The pipeline's stages and the failed one, with its error as a refinement of the incident.
pub(super) async fn run(
    dx: &Diagnoser,
    name: &str,
    incident: &Incident,
    env: &Environment,
    now: DateTime<Utc>,
) -> Outcome {
    match dx
        .aws
        .pipeline_state(&env.pipeline, incident.execution_id.as_deref())
        .await
    {
        Ok(f) => {
            let stages = f
                .stages
                .iter()
                .map(|(s, st)| format!("{s}: {st}"))
                .collect::<Vec<_>>()
                .join(" · ");
            let failed = match (&f.failed_stage, &f.failed_action) {
                (Some(s), Some(a)) => format!("failed at {s} › {a}"),
                (Some(s), None) => format!("failed at {s}"),
                _ => "no failed stage".to_string(),
            };
            let mut o = Outcome::new(name, true, failed, vec![stages], now);
            o.update.stage = f.failed_stage.clone();
            o.update.action = f.failed_action.clone();
            if f.summary.is_some() || f.error_message.is_some() {
                o.update.error = Some(ErrorInfo {
                    code: f.error_code.clone(),
                    summary: f.error_message.clone().or(f.summary.clone()),
                    external_url: f.external_url.clone(),
                });
            }
            o
        }
        Err(e) => Outcome::failed(name, aws_reason(&e), now),
    }
}
