//! Deployment figures for `summary` and the weekly digest (runbook "Get Deployment Summary" and
//! "Weekly Maintenance"). Pure: callers fetch the facts, these functions count and render.
//!
//! Conventions:
//! - A window is half-open: `start <= t < end`.
//! - Execution and deployment statuses are compared case-insensitively, ignoring `_`/`-`/spaces
//!   (`InProgress`, `IN_PROGRESS` and `in-progress` are the same); `Canceled` and `Cancelled` too.
//! - Renderers never read the clock: every date they print comes from the figures.

use crate::incident::IncidentType;
use crate::record::Incident;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One pipeline execution (from CodePipeline ListPipelineExecutions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    /// `Succeeded`, `Failed`, `InProgress`, `Stopped`, `Stopping`, `Superseded`, `Cancelled`.
    pub status: String,
    pub start_time: Option<DateTime<Utc>>,
    pub last_update_time: Option<DateTime<Utc>>,
}

/// One record of the runbook's deployments table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub deployment_id: String,
    /// E.g. `SUCCEEDED`, `FAILED`, `ROLLED_BACK`, `IN_PROGRESS`; any status containing `ROLL`
    /// (case-insensitive) is a rollback.
    pub status: String,
    pub start_time: Option<DateTime<Utc>>,
}

/// The period the figures cover: `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// Whether `t` falls inside the window (start included, end excluded).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// Where the rollback count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbacksSource {
    /// Deployment records with a rollback status, started in the window.
    DeploymentsTable,
    /// No deployment record was given: `rollback_triggered` incidents opened in the window.
    Incidents,
}

impl RollbacksSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeploymentsTable => "deployments_table",
            Self::Incidents => "incidents",
        }
    }

    /// Human label for the renderers.
    fn label(self) -> &'static str {
        match self {
            Self::DeploymentsTable => "deployments table",
            Self::Incidents => "rollback incidents",
        }
    }
}

/// An alarm that went ALARM → OK by itself, quickly, with nobody acting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlappedAlarm {
    pub alarm: String,
    /// Incidents it opened or joined that resolved that way.
    pub count: u64,
}

/// An execution still running (or stopping) long after it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckExecution {
    pub id: String,
    /// Status as the source reported it.
    pub status: String,
    pub started: DateTime<Utc>,
    /// Seconds from `started` to the window's end.
    pub age_secs: i64,
}

/// The figures of one environment over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentFigures {
    pub environment: String,
    pub pipeline: String,
    pub window: Window,
    /// Executions started in the window, by status.
    pub executions_succeeded: u64,
    pub executions_failed: u64,
    /// `Stopped` and `Cancelled`.
    pub executions_stopped: u64,
    /// `InProgress` and `Stopping`.
    pub executions_in_progress: u64,
    /// Succeeded / (succeeded + failed), in percent; `None` when no execution finished.
    pub success_rate: Option<f64>,
    pub rollbacks: u64,
    pub rollbacks_source: RollbacksSource,
    /// Incidents opened in the window, by `IncidentType::as_str`; every type is present.
    pub incidents_by_type: BTreeMap<String, u64>,
    /// Incidents opened in the window.
    pub incidents_total: u64,
    /// Incidents of the environment still open or acknowledged, whenever they opened.
    pub incidents_open: u64,
    /// Mean opened → acknowledged, over incidents opened in the window and acknowledged.
    pub mtta_secs: Option<f64>,
    /// Mean opened → resolved, over incidents opened in the window and resolved.
    pub mttr_secs: Option<f64>,
    /// Alarms whose incidents resolved automatically (alarm back to OK) within `flap_secs` of
    /// opening, never acknowledged; most frequent first.
    pub flapped_alarms: Vec<FlappedAlarm>,
    /// The flap threshold used.
    pub flap_secs: i64,
    /// `InProgress`/`Stopping` executions started more than `stuck_after_secs` before the
    /// window's end (whenever they started); oldest first.
    pub stuck_executions: Vec<StuckExecution>,
    /// The stuck threshold used.
    pub stuck_after_secs: i64,
}

/// What an execution status means for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExecutionKind {
    Succeeded,
    Failed,
    Stopped,
    InProgress,
    Stopping,
    Other,
}

fn normalize(status: &str) -> String {
    status
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn execution_kind(status: &str) -> ExecutionKind {
    match normalize(status).as_str() {
        "succeeded" => ExecutionKind::Succeeded,
        "failed" => ExecutionKind::Failed,
        "stopped" | "cancelled" | "canceled" => ExecutionKind::Stopped,
        "inprogress" => ExecutionKind::InProgress,
        "stopping" => ExecutionKind::Stopping,
        _ => ExecutionKind::Other,
    }
}

fn is_rollback_status(status: &str) -> bool {
    status.to_ascii_uppercase().contains("ROLL")
}

/// The alarms an automatic, alarm-driven resolution says went back to OK, or `None` when the
/// resolution is of another kind (by a person, by a later execution, approved, ...).
///
/// The rules write two such resolutions: `alarm <name> returned to OK` (alarm rules) and
/// `rollback completed, all alarms OK...` (rollback re-check once the alarm cleared).
fn alarms_back_to_ok(incident: &Incident) -> Option<Vec<&str>> {
    let resolution = incident.resolution.as_deref()?;
    if let Some(alarm) = resolution
        .strip_prefix("alarm ")
        .and_then(|r| r.strip_suffix(" returned to OK"))
    {
        return Some(vec![alarm]);
    }
    if resolution.starts_with("rollback completed, all alarms OK") {
        return Some(incident.alarms.iter().map(String::as_str).collect());
    }
    None
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// Counts what happened to one environment during `window`.
///
/// Executions count when they started in the window; stuck ones are reported whenever they
/// started. Incidents are those of `environment` opened in the window, except `incidents_open`
/// (every active incident of the environment). Rollbacks come from `deployments` when any record
/// is given (even if none falls in the window), else from `rollback_triggered` incidents.
#[allow(clippy::too_many_arguments)]
pub fn environment_figures(
    environment: &str,
    pipeline: &str,
    window: Window,
    executions: &[Execution],
    deployments: &[Deployment],
    incidents: &[Incident],
    flap_secs: i64,
    stuck_after_secs: i64,
) -> EnvironmentFigures {
    let (mut succeeded, mut failed, mut stopped, mut in_progress) = (0u64, 0u64, 0u64, 0u64);
    let mut stuck_executions = Vec::new();
    for execution in executions {
        let kind = execution_kind(&execution.status);
        let Some(start) = execution.start_time else {
            continue;
        };
        if window.contains(start) {
            match kind {
                ExecutionKind::Succeeded => succeeded += 1,
                ExecutionKind::Failed => failed += 1,
                ExecutionKind::Stopped => stopped += 1,
                ExecutionKind::InProgress | ExecutionKind::Stopping => in_progress += 1,
                ExecutionKind::Other => {}
            }
        }
        let age_secs = (window.end - start).num_seconds();
        if matches!(kind, ExecutionKind::InProgress | ExecutionKind::Stopping)
            && age_secs > stuck_after_secs
        {
            stuck_executions.push(StuckExecution {
                id: execution.id.clone(),
                status: execution.status.clone(),
                started: start,
                age_secs,
            });
        }
    }
    stuck_executions.sort_by(|a, b| b.age_secs.cmp(&a.age_secs).then_with(|| a.id.cmp(&b.id)));

    let finished = succeeded + failed;
    let success_rate = (finished > 0).then(|| succeeded as f64 * 100.0 / finished as f64);

    let of_env: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.environment == environment)
        .collect();
    let incidents_open = of_env.iter().filter(|i| i.status.is_active()).count() as u64;
    let in_window: Vec<&Incident> = of_env
        .iter()
        .copied()
        .filter(|i| window.contains(i.opened_at))
        .collect();

    let mut incidents_by_type: BTreeMap<String, u64> = IncidentType::ALL
        .iter()
        .map(|t| (t.as_str().to_string(), 0))
        .collect();
    for incident in &in_window {
        *incidents_by_type
            .entry(incident.incident_type.as_str().to_string())
            .or_default() += 1;
    }

    let (rollbacks, rollbacks_source) = if deployments.is_empty() {
        let n = in_window
            .iter()
            .filter(|i| i.incident_type == IncidentType::RollbackTriggered)
            .count() as u64;
        (n, RollbacksSource::Incidents)
    } else {
        let n = deployments
            .iter()
            .filter(|d| d.start_time.is_some_and(|t| window.contains(t)))
            .filter(|d| is_rollback_status(&d.status))
            .count() as u64;
        (n, RollbacksSource::DeploymentsTable)
    };

    let ack_times: Vec<f64> = in_window
        .iter()
        .filter_map(|i| i.acknowledged_at.map(|a| seconds_between(i.opened_at, a)))
        .collect();
    let resolve_times: Vec<f64> = in_window
        .iter()
        .filter_map(|i| i.resolved_at.map(|r| seconds_between(i.opened_at, r)))
        .collect();

    let mut flaps: BTreeMap<&str, u64> = BTreeMap::new();
    for incident in &in_window {
        if incident.alarms.is_empty() || incident.acknowledged_at.is_some() {
            continue;
        }
        let Some(resolved_at) = incident.resolved_at else {
            continue;
        };
        let open_secs = (resolved_at - incident.opened_at).num_seconds();
        if !(0..=flap_secs).contains(&open_secs) {
            continue;
        }
        if let Some(alarms) = alarms_back_to_ok(incident) {
            for alarm in alarms {
                *flaps.entry(alarm).or_default() += 1;
            }
        }
    }
    let mut flapped_alarms: Vec<FlappedAlarm> = flaps
        .into_iter()
        .map(|(alarm, count)| FlappedAlarm {
            alarm: alarm.to_string(),
            count,
        })
        .collect();
    // Stable sort: equal counts keep the BTreeMap's alphabetical order.
    flapped_alarms.sort_by_key(|a| std::cmp::Reverse(a.count));

    EnvironmentFigures {
        environment: environment.to_string(),
        pipeline: pipeline.to_string(),
        window,
        executions_succeeded: succeeded,
        executions_failed: failed,
        executions_stopped: stopped,
        executions_in_progress: in_progress,
        success_rate,
        rollbacks,
        rollbacks_source,
        incidents_by_type,
        incidents_total: in_window.len() as u64,
        incidents_open,
        mtta_secs: mean(&ack_times),
        mttr_secs: mean(&resolve_times),
        flapped_alarms,
        flap_secs,
        stuck_executions,
        stuck_after_secs,
    }
}

/// A duration for people: `42 s`, `4 min 12 s`, `1 h 03 min`, `2 d 4 h` (truncated to the two
/// largest units; a zero second unit is left out: `5 min`, `2 h`, `3 d`). Negative durations get
/// a leading `-`.
pub fn human_duration(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    let body = if s < 60 {
        format!("{s} s")
    } else if s < 3_600 {
        match (s / 60, s % 60) {
            (m, 0) => format!("{m} min"),
            (m, r) => format!("{m} min {r:02} s"),
        }
    } else if s < 86_400 {
        match (s / 3_600, s % 3_600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m:02} min"),
        }
    } else {
        match (s / 86_400, s % 86_400 / 3_600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        }
    };
    format!("{sign}{body}")
}

fn optional_duration(secs: Option<f64>) -> String {
    // Float to integer seconds: `as` saturates, which is fine for display.
    secs.map_or_else(|| "n/a".to_string(), |s| human_duration(s.round() as i64))
}

fn rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_string(), |r| format!("{r:.1} %"))
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `7 days`, `1 day`, or a human duration when the window is not whole days.
fn window_length(window: &Window) -> String {
    let secs = (window.end - window.start).num_seconds();
    match (secs / 86_400, secs % 86_400) {
        (1, 0) => "1 day".to_string(),
        (d, 0) if d != 0 => format!("{d} days"),
        _ => human_duration(secs),
    }
}

/// Last day the window covers: the end is excluded, so a window ending at midnight covers the
/// day before.
fn last_day(window: &Window) -> String {
    let last = (window.end - Duration::seconds(1)).max(window.start);
    last.format("%Y-%m-%d").to_string()
}

/// Non-zero incident counts as `(type, count)`, in the runbook's order (`IncidentType::ALL`),
/// then any other key of the map.
fn nonzero_types(figures: &EnvironmentFigures) -> Vec<(&str, u64)> {
    let known = IncidentType::ALL.map(IncidentType::as_str);
    let others = figures
        .incidents_by_type
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k));
    known
        .into_iter()
        .chain(others)
        .filter_map(|t| {
            let (key, n) = figures.incidents_by_type.get_key_value(t)?;
            (*n > 0).then_some((key.as_str(), *n))
        })
        .collect()
}

/// The terminal output of `summary`: per environment, a header and aligned rows.
pub fn summary_table(figures: &[EnvironmentFigures]) -> String {
    if figures.is_empty() {
        return "No environment to summarize.\n".to_string();
    }
    let sections: Vec<(String, Vec<(String, String)>)> = figures
        .iter()
        .map(|f| {
            let header = format!(
                "Deployment summary for {} ({}), {} → {} ({})",
                f.environment,
                f.pipeline,
                timestamp(f.window.start),
                timestamp(f.window.end),
                window_length(&f.window)
            );
            let mut rows: Vec<(String, String)> = vec![
                (
                    "Executions succeeded".into(),
                    f.executions_succeeded.to_string(),
                ),
                ("Executions failed".into(), f.executions_failed.to_string()),
                (
                    "Executions stopped".into(),
                    f.executions_stopped.to_string(),
                ),
                (
                    "Executions in progress".into(),
                    f.executions_in_progress.to_string(),
                ),
                ("Success rate".into(), rate(f.success_rate)),
                (
                    "Rollbacks".into(),
                    format!("{} ({})", f.rollbacks, f.rollbacks_source.label()),
                ),
                ("Incidents opened".into(), f.incidents_total.to_string()),
            ];
            rows.extend(
                nonzero_types(f)
                    .into_iter()
                    .map(|(t, n)| (format!("  {t}"), n.to_string())),
            );
            rows.push(("Open incidents".into(), f.incidents_open.to_string()));
            rows.push(("MTTA".into(), optional_duration(f.mtta_secs)));
            rows.push(("MTTR".into(), optional_duration(f.mttr_secs)));
            (header, rows)
        })
        .collect();
    let width = sections
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(label, _)| label.chars().count()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, (header, rows)) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(header);
        out.push('\n');
        for (label, value) in rows {
            let _ = writeln!(out, "  {label:<width$}  {value}");
        }
    }
    out
}

/// Slack mrkdwn needs `&`, `<` and `>` escaped everywhere.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The weekly digest posted to Slack (mrkdwn).
pub fn digest_markdown(figures: &[EnvironmentFigures]) -> String {
    let mut out = String::new();
    let start = figures.iter().map(|f| f.window.start).min();
    let end = figures.iter().map(|f| f.window.end).max();
    match (start, end) {
        (Some(start), Some(end)) => {
            let span = Window { start, end };
            let _ = writeln!(
                out,
                "*Weekly pipeline digest {} – {}*",
                start.format("%Y-%m-%d"),
                last_day(&span)
            );
        }
        _ => {
            out.push_str("*Weekly pipeline digest*\n\nNo environment to report.\n");
        }
    }
    for f in figures {
        out.push('\n');
        let _ = writeln!(out, "*{}* (`{}`)", esc(&f.environment), esc(&f.pipeline));
        let _ = writeln!(
            out,
            "• Success rate: *{}* ({} succeeded, {} failed; {} stopped, {} in progress)",
            rate(f.success_rate),
            f.executions_succeeded,
            f.executions_failed,
            f.executions_stopped,
            f.executions_in_progress
        );
        let _ = writeln!(
            out,
            "• Rollbacks: {} ({})",
            f.rollbacks,
            f.rollbacks_source.label()
        );
        let types = nonzero_types(f);
        let by_type = if types.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = types.iter().map(|(t, n)| format!("{t} {n}")).collect();
            format!(" ({})", list.join(", "))
        };
        let _ = writeln!(
            out,
            "• Incidents opened: {}{by_type}; {} still open",
            f.incidents_total, f.incidents_open
        );
        let _ = writeln!(
            out,
            "• MTTA: {} · MTTR: {}",
            optional_duration(f.mtta_secs),
            optional_duration(f.mttr_secs)
        );
        let flap_head = format!(
            "*Alarms that flapped* (ALARM → OK within {}, nobody acted)",
            human_duration(f.flap_secs)
        );
        if f.flapped_alarms.is_empty() {
            let _ = writeln!(out, "{flap_head}: none");
        } else {
            let _ = writeln!(out, "{flap_head}:");
            for a in &f.flapped_alarms {
                let times = if a.count == 1 { "time" } else { "times" };
                let _ = writeln!(out, "• `{}`: {} {times}", esc(&a.alarm), a.count);
            }
        }
        let stuck_head = format!(
            "*Executions stuck or very old* (running over {})",
            human_duration(f.stuck_after_secs)
        );
        if f.stuck_executions.is_empty() {
            let _ = writeln!(out, "{stuck_head}: none");
        } else {
            let _ = writeln!(out, "{stuck_head}:");
            for s in &f.stuck_executions {
                let _ = writeln!(
                    out,
                    "• `{}` {} since {} ({})",
                    esc(&s.id),
                    esc(&s.status),
                    timestamp(s.started),
                    human_duration(s.age_secs)
                );
            }
        }
    }
    out.push_str(
        "\n_Still manual (runbook Weekly Maintenance, task 1): review the CloudWatch dashboard \
         for trends._\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::IncidentStatus;
    use std::path::Path;

    const PROD: &str = "prod";
    const PROD_PIPELINE: &str = "kiro-pipeline-prod";
    const FLAP_SECS: i64 = 600;
    const STUCK_SECS: i64 = 7_200;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339 time")
    }

    fn week() -> Window {
        Window {
            start: t("2026-03-02T00:00:00Z"),
            end: t("2026-03-09T00:00:00Z"),
        }
    }

    fn exec(id: &str, status: &str, start: Option<&str>) -> Execution {
        Execution {
            id: id.into(),
            status: status.into(),
            start_time: start.map(t),
            last_update_time: start.map(|s| t(s) + Duration::minutes(20)),
        }
    }

    fn deploy(id: &str, status: &str, start: Option<&str>) -> Deployment {
        Deployment {
            deployment_id: id.into(),
            status: status.into(),
            start_time: start.map(t),
        }
    }

    /// An incident as the store keeps it, open and unacknowledged.
    fn incident(key: &str, incident_type: IncidentType, env: &str, opened: &str) -> Incident {
        crate::record::tests_support::incident(key, incident_type, env, t(opened))
    }

    fn with_alarm(mut i: Incident, alarm: &str) -> Incident {
        i.alarms.push(alarm.into());
        i
    }

    fn acked(mut i: Incident, at: &str) -> Incident {
        i.status = IncidentStatus::Acknowledged;
        i.acknowledged_at = Some(t(at));
        i.acknowledged_by = Some("U024BE7LH".into());
        i
    }

    fn resolved(mut i: Incident, at: &str, why: &str) -> Incident {
        i.status = IncidentStatus::Resolved;
        i.resolved_at = Some(t(at));
        i.resolution = Some(why.into());
        i
    }

    fn prod_executions() -> Vec<Execution> {
        vec![
            // Before the window: not counted.
            exec("e00", "Failed", Some("2026-03-01T22:00:00Z")),
            // Started long before the window and still running: stuck, not counted.
            exec("e-old", "InProgress", Some("2026-02-27T06:00:00Z")),
            exec("e01", "Succeeded", Some("2026-03-02T10:00:00Z")),
            exec("e02", "Failed", Some("2026-03-03T11:00:00Z")),
            exec("e03", "Succeeded", Some("2026-03-03T14:00:00Z")),
            exec("e04", "Succeeded", Some("2026-03-04T09:30:00Z")),
            exec("e05", "Stopped", Some("2026-03-04T16:00:00Z")),
            exec("e06", "Succeeded", Some("2026-03-05T10:00:00Z")),
            // Superseded: none of the counters.
            exec("e07", "Superseded", Some("2026-03-05T10:05:00Z")),
            exec("e08", "Succeeded", Some("2026-03-06T12:00:00Z")),
            exec("e09", "Cancelled", Some("2026-03-06T13:00:00Z")),
            exec("e10", "Succeeded", Some("2026-03-07T15:00:00Z")),
            exec("e11", "Succeeded", Some("2026-03-08T09:00:00Z")),
            // Running 3 h 30 min at the window's end: stuck.
            exec("e12", "InProgress", Some("2026-03-08T20:30:00Z")),
            // Stopping for 3 h: stuck.
            exec("e15", "Stopping", Some("2026-03-08T21:00:00Z")),
            // Running 45 min: in progress, not stuck.
            exec("e13", "InProgress", Some("2026-03-08T23:15:00Z")),
            // Starts exactly at the window's end: excluded.
            exec("e14", "Succeeded", Some("2026-03-09T00:00:00Z")),
            // No start time: cannot be placed in the window.
            exec("e16", "Succeeded", None),
        ]
    }

    fn prod_deployments() -> Vec<Deployment> {
        vec![
            deploy("d0", "ROLLED_BACK", Some("2026-03-01T08:00:00Z")),
            deploy("d1", "SUCCEEDED", Some("2026-03-02T10:20:00Z")),
            deploy("d2", "FAILED", Some("2026-03-03T11:20:00Z")),
            deploy("d3", "ROLLED_BACK", Some("2026-03-05T10:30:00Z")),
            deploy("d4", "rolled_back", Some("2026-03-07T15:20:00Z")),
            deploy("d5", "ROLLING_BACK", Some("2026-03-08T09:10:00Z")),
            deploy("d6", "IN_PROGRESS", Some("2026-03-08T20:40:00Z")),
            deploy("d7", "ROLLED_BACK", None),
        ]
    }

    const DURATION_ALARM: &str = "kiro-pipeline-prod-deployment-duration";
    const LATENCY_ALARM: &str = "kiro-pipeline-prod-latency-p99";

    fn incidents() -> Vec<Incident> {
        use IncidentType as T;
        vec![
            // Acknowledged after 4 min 12 s, resolved by a later execution after 3 h 05 min.
            resolved(
                acked(
                    incident(
                        "i1",
                        T::PipelineExecutionFailure,
                        PROD,
                        "2026-03-03T11:25:00Z",
                    ),
                    "2026-03-03T11:29:12Z",
                ),
                "2026-03-03T14:30:00Z",
                "a later execution (e03) succeeded",
            ),
            // A rollback someone acknowledged (3 min): not a flap although it resolved in 30 min.
            resolved(
                acked(
                    with_alarm(
                        incident("i2", T::RollbackTriggered, PROD, "2026-03-05T10:28:00Z"),
                        "kiro-pipeline-prod-error-rate",
                    ),
                    "2026-03-05T10:31:00Z",
                ),
                "2026-03-05T10:58:00Z",
                "rollback completed, all alarms OK, health check passes",
            ),
            // Alarm back to OK after 4 min, nobody acted: flapped.
            resolved(
                with_alarm(
                    incident(
                        "i3",
                        T::DeploymentDurationExceeded,
                        PROD,
                        "2026-03-06T09:00:00Z",
                    ),
                    DURATION_ALARM,
                ),
                "2026-03-06T09:04:00Z",
                &format!("alarm {DURATION_ALARM} returned to OK"),
            ),
            // Same alarm again, 7 min 30 s: flapped.
            resolved(
                with_alarm(
                    incident(
                        "i4",
                        T::DeploymentDurationExceeded,
                        PROD,
                        "2026-03-07T02:00:00Z",
                    ),
                    DURATION_ALARM,
                ),
                "2026-03-07T02:07:30Z",
                &format!("alarm {DURATION_ALARM} returned to OK"),
            ),
            // Application alarm cleared, rollback re-check resolved it in 7 min: flapped.
            resolved(
                with_alarm(
                    incident("i5", T::RollbackTriggered, PROD, "2026-03-07T15:18:00Z"),
                    LATENCY_ALARM,
                ),
                "2026-03-07T15:25:00Z",
                "rollback completed, all alarms OK (no health check configured)",
            ),
            // Alarm-opened failure resolved by a later execution in 6 min: not an alarm flap.
            resolved(
                with_alarm(
                    incident(
                        "i6",
                        T::PipelineExecutionFailure,
                        PROD,
                        "2026-03-04T16:30:00Z",
                    ),
                    "kiro-pipeline-prod-pipeline-failures",
                ),
                "2026-03-04T16:36:00Z",
                "a later execution (e06) succeeded",
            ),
            // Alarm back to OK only after 40 min: outside flap_secs.
            resolved(
                with_alarm(
                    incident(
                        "i7",
                        T::DeploymentDurationExceeded,
                        PROD,
                        "2026-03-08T01:00:00Z",
                    ),
                    DURATION_ALARM,
                ),
                "2026-03-08T01:40:00Z",
                &format!("alarm {DURATION_ALARM} returned to OK"),
            ),
            // Resolved by a person after 5 min: not a flap.
            resolved(
                with_alarm(
                    incident(
                        "i8",
                        T::TestCoverageBelowThreshold,
                        PROD,
                        "2026-03-04T08:00:00Z",
                    ),
                    "kiro-pipeline-prod-test-coverage",
                ),
                "2026-03-04T08:05:00Z",
                "resolved by U024BE7LH",
            ),
            // Still waiting.
            incident("i9", T::ApprovalPending, PROD, "2026-03-08T20:50:00Z"),
            // Acknowledged after 10 min, still being worked on.
            acked(
                incident(
                    "i10",
                    T::PipelineExecutionFailure,
                    PROD,
                    "2026-03-08T22:00:00Z",
                ),
                "2026-03-08T22:10:00Z",
            ),
            // Opened before the window, still open: only in incidents_open.
            incident("i11", T::SecurityScanFailure, PROD, "2026-02-28T10:00:00Z"),
            // Opened at the window's end (excluded) and already resolved.
            resolved(
                incident(
                    "i13",
                    T::PipelineExecutionFailure,
                    PROD,
                    "2026-03-09T00:00:00Z",
                ),
                "2026-03-09T00:30:00Z",
                "a later execution (e14) succeeded",
            ),
            // Another environment: ignored by prod's figures.
            resolved(
                with_alarm(
                    incident(
                        "s1",
                        T::RollbackTriggered,
                        "staging",
                        "2026-03-05T09:00:00Z",
                    ),
                    "kiro-pipeline-staging-error-rate",
                ),
                "2026-03-05T09:03:00Z",
                "rollback completed, all alarms OK, health check passes",
            ),
            acked(
                incident(
                    "s2",
                    T::PipelineExecutionFailure,
                    "staging",
                    "2026-03-06T14:00:00Z",
                ),
                "2026-03-06T14:20:00Z",
            ),
        ]
    }

    fn prod_figures() -> EnvironmentFigures {
        environment_figures(
            PROD,
            PROD_PIPELINE,
            week(),
            &prod_executions(),
            &prod_deployments(),
            &incidents(),
            FLAP_SECS,
            STUCK_SECS,
        )
    }

    fn staging_figures() -> EnvironmentFigures {
        environment_figures(
            "staging",
            "kiro-pipeline-staging",
            week(),
            &[
                exec("s-e1", "Succeeded", Some("2026-03-04T10:00:00Z")),
                exec("s-e2", "Succeeded", Some("2026-03-06T13:40:00Z")),
            ],
            &[],
            &incidents(),
            FLAP_SECS,
            STUCK_SECS,
        )
    }

    fn by_type(pairs: &[(IncidentType, u64)]) -> BTreeMap<String, u64> {
        let mut map: BTreeMap<String, u64> = IncidentType::ALL
            .iter()
            .map(|t| (t.as_str().to_string(), 0))
            .collect();
        for (t, n) in pairs {
            map.insert(t.as_str().to_string(), *n);
        }
        map
    }

    #[test]
    fn stats_prod_figures_count_everything() {
        use IncidentType as T;
        let f = prod_figures();
        assert_eq!(f.environment, "prod");
        assert_eq!(f.pipeline, "kiro-pipeline-prod");
        assert_eq!(f.window, week());
        assert_eq!(f.executions_succeeded, 7);
        assert_eq!(f.executions_failed, 1);
        assert_eq!(f.executions_stopped, 2);
        assert_eq!(f.executions_in_progress, 3);
        assert_eq!(f.success_rate, Some(87.5));
        assert_eq!(f.rollbacks, 3);
        assert_eq!(f.rollbacks_source, RollbacksSource::DeploymentsTable);
        assert_eq!(
            f.incidents_by_type,
            by_type(&[
                (T::PipelineExecutionFailure, 3),
                (T::RollbackTriggered, 2),
                (T::DeploymentDurationExceeded, 3),
                (T::TestCoverageBelowThreshold, 1),
                (T::ApprovalPending, 1),
            ])
        );
        assert_eq!(f.incidents_total, 10);
        // i9 (open), i10 (acknowledged), i11 (opened before the window).
        assert_eq!(f.incidents_open, 3);
        // (252 + 180 + 600) / 3.
        assert_eq!(f.mtta_secs, Some(344.0));
        // (11100 + 1800 + 240 + 450 + 420 + 360 + 2400 + 300) / 8.
        assert_eq!(f.mttr_secs, Some(2133.75));
        assert_eq!(
            f.flapped_alarms,
            vec![
                FlappedAlarm {
                    alarm: DURATION_ALARM.into(),
                    count: 2
                },
                FlappedAlarm {
                    alarm: LATENCY_ALARM.into(),
                    count: 1
                },
            ]
        );
        assert_eq!(f.flap_secs, FLAP_SECS);
        assert_eq!(
            f.stuck_executions,
            vec![
                StuckExecution {
                    id: "e-old".into(),
                    status: "InProgress".into(),
                    started: t("2026-02-27T06:00:00Z"),
                    age_secs: 9 * 86_400 + 18 * 3_600,
                },
                StuckExecution {
                    id: "e12".into(),
                    status: "InProgress".into(),
                    started: t("2026-03-08T20:30:00Z"),
                    age_secs: 3 * 3_600 + 30 * 60,
                },
                StuckExecution {
                    id: "e15".into(),
                    status: "Stopping".into(),
                    started: t("2026-03-08T21:00:00Z"),
                    age_secs: 3 * 3_600,
                },
            ]
        );
        assert_eq!(f.stuck_after_secs, STUCK_SECS);
    }

    #[test]
    fn stats_rollbacks_fall_back_to_incidents_without_deployment_records() {
        let f = staging_figures();
        assert_eq!(f.rollbacks_source, RollbacksSource::Incidents);
        assert_eq!(f.rollbacks, 1);
        let prod = environment_figures(
            PROD,
            PROD_PIPELINE,
            week(),
            &[],
            &[],
            &incidents(),
            FLAP_SECS,
            STUCK_SECS,
        );
        assert_eq!(prod.rollbacks_source, RollbacksSource::Incidents);
        assert_eq!(prod.rollbacks, 2, "i2 and i5");
        // Records exist but none in the window: the table is still the source.
        let old_only = environment_figures(
            PROD,
            PROD_PIPELINE,
            week(),
            &[],
            &[deploy("d0", "ROLLED_BACK", Some("2026-03-01T08:00:00Z"))],
            &incidents(),
            FLAP_SECS,
            STUCK_SECS,
        );
        assert_eq!(old_only.rollbacks_source, RollbacksSource::DeploymentsTable);
        assert_eq!(old_only.rollbacks, 0);
    }

    #[test]
    fn stats_staging_figures_ignore_other_environments() {
        use IncidentType as T;
        let f = staging_figures();
        assert_eq!(f.executions_succeeded, 2);
        assert_eq!(f.executions_failed, 0);
        assert_eq!(f.success_rate, Some(100.0));
        assert_eq!(
            f.incidents_by_type,
            by_type(&[(T::RollbackTriggered, 1), (T::PipelineExecutionFailure, 1)])
        );
        assert_eq!(f.incidents_total, 2);
        assert_eq!(f.incidents_open, 1);
        assert_eq!(f.mtta_secs, Some(1_200.0));
        assert_eq!(f.mttr_secs, Some(180.0));
        assert_eq!(
            f.flapped_alarms,
            vec![FlappedAlarm {
                alarm: "kiro-pipeline-staging-error-rate".into(),
                count: 1
            }]
        );
        assert!(f.stuck_executions.is_empty());
    }

    #[test]
    fn stats_statuses_compare_case_insensitively() {
        let executions = [
            exec("a", "SUCCEEDED", Some("2026-03-03T10:00:00Z")),
            exec("b", "FAILED", Some("2026-03-03T11:00:00Z")),
            exec("c", "failed", Some("2026-03-03T12:00:00Z")),
            exec("d", "CANCELED", Some("2026-03-03T13:00:00Z")),
            exec("e", "IN_PROGRESS", Some("2026-03-08T23:00:00Z")),
        ];
        let f = environment_figures(
            PROD,
            PROD_PIPELINE,
            week(),
            &executions,
            &[deploy("x", "Rollback_Failed", Some("2026-03-03T10:10:00Z"))],
            &[],
            FLAP_SECS,
            STUCK_SECS,
        );
        assert_eq!(
            (
                f.executions_succeeded,
                f.executions_failed,
                f.executions_stopped,
                f.executions_in_progress
            ),
            (1, 2, 1, 1)
        );
        let rate = f.success_rate.expect("finished executions");
        assert!((rate - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(f.rollbacks, 1);
    }

    #[test]
    fn stats_flap_threshold_is_inclusive() {
        let incident = resolved(
            with_alarm(
                incident(
                    "f",
                    IncidentType::DeploymentDurationExceeded,
                    PROD,
                    "2026-03-03T10:00:00Z",
                ),
                DURATION_ALARM,
            ),
            "2026-03-03T10:10:00Z",
            &format!("alarm {DURATION_ALARM} returned to OK"),
        );
        let figures = |flap| {
            environment_figures(
                PROD,
                PROD_PIPELINE,
                week(),
                &[],
                &[],
                std::slice::from_ref(&incident),
                flap,
                STUCK_SECS,
            )
        };
        assert_eq!(figures(600).flapped_alarms.len(), 1);
        assert!(figures(599).flapped_alarms.is_empty());
    }

    #[test]
    fn stats_no_window_no_data_gives_na_and_zeros() {
        let instant = t("2026-03-09T00:00:00Z");
        let empty = Window {
            start: instant,
            end: instant,
        };
        let f = environment_figures("test", "kiro-pipeline-test", empty, &[], &[], &[], 0, 0);
        assert_eq!(f.executions_succeeded, 0);
        assert_eq!(f.executions_failed, 0);
        assert_eq!(f.executions_stopped, 0);
        assert_eq!(f.executions_in_progress, 0);
        assert_eq!(f.success_rate, None);
        assert_eq!(
            (f.rollbacks, f.rollbacks_source),
            (0, RollbacksSource::Incidents)
        );
        assert!(f.incidents_by_type.values().all(|n| *n == 0));
        assert_eq!(f.incidents_by_type.len(), IncidentType::ALL.len());
        assert_eq!((f.incidents_total, f.incidents_open), (0, 0));
        assert_eq!((f.mtta_secs, f.mttr_secs), (None, None));
        assert!(f.flapped_alarms.is_empty() && f.stuck_executions.is_empty());

        // The prod data against an empty window: only open and stuck figures remain.
        let p = environment_figures(
            PROD,
            PROD_PIPELINE,
            empty,
            &prod_executions(),
            &prod_deployments(),
            &incidents(),
            FLAP_SECS,
            STUCK_SECS,
        );
        assert_eq!(p.executions_succeeded + p.executions_failed, 0);
        assert_eq!(
            (p.success_rate, p.rollbacks, p.incidents_total),
            (None, 0, 0)
        );
        assert_eq!(p.incidents_open, 3);
        assert_eq!(p.stuck_executions.len(), 3);

        let table = summary_table(std::slice::from_ref(&f));
        assert!(table.contains("Success rate            n/a"), "{table}");
        assert!(table.contains("MTTA                    n/a"), "{table}");
        assert!(table.contains("MTTR                    n/a"), "{table}");
        assert!(table.contains("(0 s)"), "{table}");
        let digest = digest_markdown(std::slice::from_ref(&f));
        assert!(digest.contains("*Weekly pipeline digest 2026-03-09 – 2026-03-09*"));
        assert!(digest.contains("• Success rate: *n/a* (0 succeeded, 0 failed"));
        assert!(digest.contains("• MTTA: n/a · MTTR: n/a"));
        assert!(digest.contains("nobody acted): none"));
        assert!(digest.contains("(running over 0 s): none"));

        assert_eq!(summary_table(&[]), "No environment to summarize.\n");
        assert!(digest_markdown(&[]).contains("No environment to report."));
    }

    #[test]
    fn stats_human_duration() {
        let cases = [
            (0, "0 s"),
            (42, "42 s"),
            (60, "1 min"),
            (252, "4 min 12 s"),
            (305, "5 min 05 s"),
            (3_599, "59 min 59 s"),
            (3_600, "1 h"),
            (3_780, "1 h 03 min"),
            (3_839, "1 h 03 min"),
            (86_399, "23 h 59 min"),
            (86_400, "1 d"),
            (187_200, "2 d 4 h"),
            (190_799, "2 d 4 h"),
            (-90, "-1 min 30 s"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs} s");
        }
        assert_eq!(human_duration(i64::MIN), "-106751991167300 d 15 h");
    }

    #[test]
    fn stats_figures_serialize_for_json() {
        let value = serde_json::to_value(prod_figures()).expect("serializable");
        assert_eq!(value["window"]["start"], "2026-03-02T00:00:00Z");
        assert_eq!(value["window"]["end"], "2026-03-09T00:00:00Z");
        assert_eq!(value["rollbacks_source"], "deployments_table");
        assert_eq!(value["success_rate"], 87.5);
        assert_eq!(
            value["incidents_by_type"]["deployment_duration_exceeded"],
            3
        );
        assert_eq!(value["flapped_alarms"][0]["alarm"], DURATION_ALARM);
        assert_eq!(value["stuck_executions"][0]["age_secs"], 842_400);
        let empty = Window {
            start: t("2026-03-02T00:00:00Z"),
            end: t("2026-03-02T00:00:00Z"),
        };
        let none = environment_figures("test", "p", empty, &[], &[], &[], 0, 0);
        let value = serde_json::to_value(none).expect("serializable");
        assert!(value["success_rate"].is_null() && value["mtta_secs"].is_null());
        assert_eq!(value["rollbacks_source"], "incidents");
    }

    /// Compares with `tests/data/stats/<name>`; `UPDATE_GOLDEN=1` writes it instead.
    fn golden(name: &str, actual: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/stats")
            .join(name);
        if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
            let dir = path.parent().expect("golden directory");
            std::fs::create_dir_all(dir).expect("create golden directory");
            std::fs::write(&path, actual).expect("write golden file");
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
                path.display()
            )
        });
        assert_eq!(
            actual,
            expected,
            "{} differs; review and run with UPDATE_GOLDEN=1 to accept",
            path.display()
        );
    }

    #[test]
    fn stats_summary_table_golden() {
        golden(
            "summary.txt",
            &summary_table(&[prod_figures(), staging_figures()]),
        );
    }

    #[test]
    fn stats_digest_markdown_golden() {
        golden(
            "digest.md",
            &digest_markdown(&[prod_figures(), staging_figures()]),
        );
    }
}
