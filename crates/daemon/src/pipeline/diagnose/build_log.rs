//! `build_log`, `coverage_report`, `security_report`: the failed build's log read once for all
//! three, compared with the last green build's, and what logscan finds in it.

use super::outcome::{aws_reason, Evidence, Outcome};
use super::Diagnoser;
use chrono::{DateTime, Duration, Utc};
use pipeline_responder_core::config::{Diagnostic, Environment, LogSearch};
use pipeline_responder_core::logscan;
use pipeline_responder_core::record::Incident;
use std::time::Duration as StdDuration;

/// The build logs read once for all log diagnostics: the failed build's, and the last green
/// build's of the same action (or why there is none).
pub(super) struct BuildLogs {
    failed: Result<Vec<String>, String>,
    green: Result<(String, Vec<String>), String>,
}

/// Pages of ListActionExecutions read to find the last green build (100 runs each).
const GREEN_SEARCH_PAGES: usize = 3;

/// The build log is read once for all log diagnostics (the widest window they ask for),
/// from the failed build's own stream when the event or `ListActionExecutions` names it;
/// the last green build's log of the same action is read beside it, within the same time
/// budget, when `diagnosis.compare_with_last_green` is on.
pub(super) async fn fetch(
    dx: &Diagnoser,
    incident: &Incident,
    env: &Environment,
    list: &[Diagnostic],
    now: DateTime<Utc>,
) -> Option<BuildLogs> {
    let window = list
        .iter()
        .filter_map(|d| match d {
            Diagnostic::BuildLog(s)
            | Diagnostic::CoverageReport(s)
            | Diagnostic::SecurityReport(s) => Some(s),
            _ => None,
        })
        .map(|s| (s.window_secs, s.timeout_secs))
        .max()?;
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(window.1);
    let timed_out = || format!("timed out after {} s", window.1);
    let compare = dx.config.diagnosis.compare_with_last_green;
    let runs = match &incident.execution_id {
        Some(execution) if compare || incident.build_log_stream.is_none() => {
            let lookup = dx.aws.build_runs(
                &env.pipeline,
                execution,
                incident.stage.as_deref(),
                incident.action.as_deref(),
                GREEN_SEARCH_PAGES,
            );
            match tokio::time::timeout_at(deadline, lookup).await {
                Ok(Ok(runs)) => Ok(runs),
                Ok(Err(e)) => Err(aws_reason(&e)),
                Err(_) => Err(timed_out()),
            }
        }
        Some(_) => Ok(Default::default()),
        None => Err("no execution known to compare with".to_string()),
    };
    let stream = incident
        .build_log_stream
        .clone()
        .or_else(|| runs.as_ref().ok().and_then(|r| r.failed_stream.clone()));
    let start = now - Duration::seconds(window.0 as i64);
    let failed = async {
        let fetch = dx
            .aws
            .log_lines(&env.build_log_group, stream.as_deref(), start, now);
        match tokio::time::timeout_at(deadline, fetch).await {
            Ok(Ok(lines)) => Ok(lines),
            Ok(Err(e)) => Err(aws_reason(&e)),
            Err(_) => Err(timed_out()),
        }
    };
    let green = async {
        if !compare {
            return Err("comparison with the last green build is off".to_string());
        }
        let runs = runs
            .as_ref()
            .map_err(|why| format!("its build runs could not be listed: {why}"))?;
        let Some(green) = &runs.green else {
            return Err(match (&runs.stage, &runs.action) {
                (Some(stage), Some(action)) => {
                    format!("no earlier green build of {stage} › {action}")
                }
                _ => "the failed run is not in ListActionExecutions".to_string(),
            });
        };
        let from = green.start.unwrap_or(now - Duration::days(30)) - Duration::minutes(5);
        let to = green.end.unwrap_or(now) + Duration::minutes(5);
        let fetch = dx
            .aws
            .log_lines(&env.build_log_group, Some(&green.stream), from, to);
        match tokio::time::timeout_at(deadline, fetch).await {
            Ok(Ok(lines)) if lines.is_empty() => Err(format!(
                "the green build {}'s log is empty or expired",
                green.build_id
            )),
            Ok(Ok(lines)) => Ok((green.build_id.clone(), lines)),
            Ok(Err(e)) => Err(format!(
                "the green build's log could not be read: {}",
                aws_reason(&e)
            )),
            Err(_) => Err(format!("the green build's log: {}", timed_out())),
        }
    };
    let (failed, green) = tokio::join!(failed, green);
    Some(BuildLogs { failed, green })
}

/// A log diagnostic's outcome from the logs read for it.
pub(super) fn run(
    dx: &Diagnoser,
    d: &Diagnostic,
    search: &LogSearch,
    logs: Option<&BuildLogs>,
    now: DateTime<Utc>,
) -> Outcome {
    match logs {
        Some(BuildLogs {
            failed: Ok(lines),
            green,
        }) => analyse(dx, d, search, lines, green, now),
        Some(BuildLogs {
            failed: Err(why), ..
        }) => Outcome::failed(d.name(), why.clone(), now),
        None => Outcome::failed(d.name(), "no log window configured".into(), now),
    }
}

fn analyse(
    dx: &Diagnoser,
    d: &Diagnostic,
    search: &LogSearch,
    lines: &[String],
    green: &Result<(String, Vec<String>), String>,
    now: DateTime<Utc>,
) -> Outcome {
    let name = d.name();
    let log = logscan::Log::from_lines(lines);
    let options = logscan::Options::from_config(&dx.config, search);
    let green_log = green
        .as_ref()
        .ok()
        .map(|(_, lines)| logscan::Log::from_lines(lines));
    let mut findings = logscan::analyse(&log, green_log.as_ref(), &options);
    if let Err(reason) = green {
        findings.comparison = logscan::Comparison::Skipped {
            reason: reason.clone(),
        };
    }
    let summary = match d {
        Diagnostic::BuildLog(_) if lines.is_empty() => {
            "no build log lines in the window".to_string()
        }
        Diagnostic::BuildLog(_) => {
            let compared = match (&findings.comparison, green) {
                (logscan::Comparison::Compared { new_lines, .. }, Ok((build, _))) => format!(
                    "compared with the last green build {}: {new_lines} new line(s)",
                    short_build(build)
                ),
                (logscan::Comparison::Skipped { reason }, _) => {
                    format!("not compared with a green build: {reason}")
                }
                _ => String::new(),
            };
            let cause = findings
                .cause
                .as_ref()
                .and_then(|c| c.runbook_url.as_ref())
                .map(|url| format!(" (runbook: {url})"))
                .unwrap_or_default();
            if compared.is_empty() {
                format!("{}{cause}", findings.summary)
            } else {
                format!("{}{cause} · {compared}", findings.summary)
            }
        }
        Diagnostic::CoverageReport(_) => match findings.coverage_percent {
            Some(c) => format!(
                "coverage {c:.1} % (threshold {} %)",
                dx.config.thresholds.coverage_percent
            ),
            None => "no coverage figure in the log".to_string(),
        },
        _ => {
            if findings.guard_rules.is_empty() && findings.audit.is_none() {
                "no cfn-guard or npm audit findings in the log".to_string()
            } else {
                findings.summary.clone()
            }
        }
    };
    let excerpt = if matches!(d, Diagnostic::BuildLog(_))
        || !findings.excerpt.is_empty() && summary.starts_with(['c', 's'])
    {
        findings.excerpt_texts()
    } else {
        Vec::new()
    };
    let mut o = Outcome::new(name, true, summary, excerpt, now);
    if matches!(d, Diagnostic::BuildLog(_)) {
        o.update.critical_findings = findings.critical();
        o.update.retryable =
            findings.class.is_transient() || findings.cause.as_ref().is_some_and(|c| c.flaky);
        o.evidence = Evidence::Log(Box::new(findings));
    }
    o
}

/// `project:uuid` → `project:uuid8`.
fn short_build(id: &str) -> String {
    match id.rsplit_once(':') {
        Some((project, uuid)) => format!("{project}:{}", uuid.get(..8).unwrap_or(uuid)),
        None => id.to_string(),
    }
}
