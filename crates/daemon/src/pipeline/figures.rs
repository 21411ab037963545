//! The runbook's "check pipeline health" and "deployment summary" facts, fetched from AWS: used
//! by `status`, `summary` and the weekly digest. Each part that cannot be fetched says why
//! instead of failing the whole answer.

use chrono::{DateTime, Duration, Utc};
use pipeline_responder_aws::diagnostics::{
    AlarmFacts, DeploymentRecord, Diagnostics, ExecutionSummary,
};
use pipeline_responder_core::config::Environment;
use pipeline_responder_core::record::Incident;
use pipeline_responder_core::stats::{self, EnvironmentFigures, Window};
use serde_json::{json, Value};

/// Most executions read for one summary window.
const MAX_EXECUTIONS: usize = 2_000;
/// Deployments shown by `status` (the runbook's script shows 5).
const RECENT_DEPLOYMENTS: usize = 5;

/// Deployment records keep `startTime` in epoch milliseconds (the runbook's table).
fn epoch_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

fn execution(e: &ExecutionSummary) -> stats::Execution {
    stats::Execution {
        id: e.id.clone(),
        status: e.status.clone(),
        start_time: e.start_time,
        last_update_time: e.last_update_time,
    }
}

fn deployment(d: &DeploymentRecord) -> stats::Deployment {
    stats::Deployment {
        deployment_id: d.deployment_id.clone(),
        status: d.status.clone(),
        start_time: d.start_time.and_then(epoch_ms),
    }
}

/// One environment's figures over `window`; `problems` collects what could not be fetched
/// (those parts count as empty).
#[allow(clippy::too_many_arguments)]
pub async fn environment_figures(
    aws: &Diagnostics,
    env: &Environment,
    window: Window,
    incidents: &[Incident],
    flap_secs: i64,
    stale_secs: i64,
    problems: &mut Vec<String>,
) -> EnvironmentFigures {
    let since = window.start.min(window.end - Duration::seconds(stale_secs));
    let executions = match aws
        .executions_since(&env.pipeline, since, MAX_EXECUTIONS)
        .await
    {
        Ok(list) => list.iter().map(execution).collect(),
        Err(e) => {
            problems.push(format!("{}: executions: {e}", env.name));
            Vec::new()
        }
    };
    let deployments = match aws.deployments(&env.deployments_table, &env.name).await {
        Ok(list) => list.iter().map(deployment).collect(),
        Err(e) => {
            problems.push(format!("{}: deployments: {e}", env.name));
            Vec::new()
        }
    };
    stats::environment_figures(
        &env.name,
        &env.pipeline,
        window,
        &executions,
        &deployments,
        incidents,
        flap_secs,
        stale_secs,
    )
}

/// The runbook's check-pipeline-health script for one environment, as JSON: stage states,
/// alarms in ALARM, recent deployments, open incidents (each part either a list or an error).
pub async fn environment_status(
    aws: &Diagnostics,
    env: &Environment,
    incidents: &Result<Vec<Incident>, String>,
) -> Value {
    let stages = match aws.pipeline_state(&env.pipeline, None).await {
        Ok(state) => json!({
            "execution_id": state.execution_id,
            "stages": state.stages.iter().map(|(name, status)| json!({"stage": name, "status": status})).collect::<Vec<_>>(),
        }),
        Err(e) => json!({"error": e.to_string()}),
    };
    let alarms = match aws.alarms_in_alarm(&env.alarm_prefix).await {
        Ok(alarms) => json!(alarms.iter().map(alarm).collect::<Vec<_>>()),
        Err(e) => json!({"error": e.to_string()}),
    };
    let deployments = match aws.deployments(&env.deployments_table, &env.name).await {
        Ok(list) => json!(list
            .iter()
            .take(RECENT_DEPLOYMENTS)
            .map(|d| json!({
                "deployment_id": d.deployment_id,
                "status": d.status,
                "version": d.version,
                "start_time": d.start_time.and_then(epoch_ms),
                "commit_message": d.commit_message,
            }))
            .collect::<Vec<_>>()),
        Err(e) => json!({"error": e.to_string()}),
    };
    let incidents = match incidents {
        Ok(list) => json!(list
            .iter()
            .filter(|i| i.environment == env.name && i.status.is_active())
            .map(|i| json!({
                "key": i.key,
                "incident_type": i.incident_type,
                "severity": i.severity,
                "status": i.status,
                "opened_at": i.opened_at,
                "title": i.title,
            }))
            .collect::<Vec<_>>()),
        Err(e) => json!({"error": e}),
    };
    json!({
        "environment": env.name,
        "pipeline": env.pipeline,
        "pipeline_state": stages,
        "alarms_in_alarm": alarms,
        "recent_deployments": deployments,
        "open_incidents": incidents,
    })
}

fn alarm(a: &AlarmFacts) -> Value {
    json!({"name": a.name, "reason": a.reason, "since": a.since})
}

/// Whether any part of a status answer is an error.
pub fn status_has_errors(status: &Value) -> bool {
    [
        "pipeline_state",
        "alarms_in_alarm",
        "recent_deployments",
        "open_incidents",
    ]
    .iter()
    .any(|k| status[*k].get("error").is_some())
}

/// The status answer as the runbook's script prints it: one block per environment.
pub fn status_text(statuses: &[Value], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| {
                t.with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            })
            .unwrap_or_else(|| "-".into())
    };
    let section =
        |out: &mut String, title: &str, part: &Value, rows: &dyn Fn(&Value) -> Vec<String>| {
            out.push_str(&format!("  {title}\n"));
            if let Some(error) = part.get("error") {
                out.push_str(&format!(
                    "    unavailable: {}\n",
                    error.as_str().unwrap_or("")
                ));
                return;
            }
            let lines = rows(part);
            if lines.is_empty() {
                out.push_str("    none\n");
            }
            for line in lines {
                out.push_str(&format!("    {line}\n"));
            }
        };
    for st in statuses {
        out.push_str(&format!(
            "Pipeline health for {} ({})\n",
            s(&st["environment"]),
            s(&st["pipeline"])
        ));
        section(&mut out, "Pipeline state", &st["pipeline_state"], &|p| {
            let stages = p["stages"].as_array().cloned().unwrap_or_default();
            let width = stages
                .iter()
                .map(|x| s(&x["stage"]).len())
                .max()
                .unwrap_or(0);
            let mut rows: Vec<String> = stages
                .iter()
                .map(|x| format!("{:<width$}  {}", s(&x["stage"]), s(&x["status"])))
                .collect();
            if let Some(id) = p["execution_id"].as_str() {
                rows.push(format!("(execution {id})"));
            }
            rows
        });
        section(&mut out, "Alarms in ALARM", &st["alarms_in_alarm"], &|a| {
            a.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|x| {
                    format!(
                        "{}  since {}  {}",
                        s(&x["name"]),
                        time(&x["since"]),
                        s(&x["reason"])
                    )
                })
                .collect()
        });
        section(
            &mut out,
            "Recent deployments",
            &st["recent_deployments"],
            &|d| {
                d.as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|x| {
                        format!(
                            "{}  {}  {}  {}",
                            s(&x["deployment_id"]),
                            s(&x["status"]),
                            time(&x["start_time"]),
                            x["version"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            },
        );
        section(&mut out, "Open incidents", &st["open_incidents"], &|i| {
            i.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|x| {
                    let age = x["opened_at"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| stats::human_duration((now - t.with_timezone(&Utc)).num_seconds()))
                        .unwrap_or_default();
                    format!(
                        "{}  {}  {}  open for {}  {}",
                        s(&x["severity"]),
                        s(&x["status"]),
                        s(&x["incident_type"]),
                        age,
                        s(&x["key"])
                    )
                })
                .collect()
        });
        out.push('\n');
    }
    out
}
