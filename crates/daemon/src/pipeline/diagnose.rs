//! Runs an incident's diagnostics concurrently, each within its time budget; stores what they
//! found (a failed diagnostic says so); turns findings into rule inputs (refinement, rollback
//! status); and releases the held first post.

use crate::store::{until_stored, InputRecord, Store};
use chrono::{DateTime, Duration, Utc};
use pipeline_responder_aws::diagnostics::Diagnostics;
use pipeline_responder_aws::AwsError;
use pipeline_responder_core::config::{Config, Diagnostic, Environment, LogSearch};
use pipeline_responder_core::decision::ErrorInfo;
use pipeline_responder_core::decision::IncidentUpdate;
use pipeline_responder_core::finding::{Finding, RollbackStatusFinding, RootCauseFinding};
use pipeline_responder_core::incident::IncidentType;
use pipeline_responder_core::logscan::{self, LogFindings};
use pipeline_responder_core::record::{DiagnosticResult, Incident};
use pipeline_responder_core::rules;
use std::sync::Arc;
use std::time::Duration as StdDuration;

/// Runs diagnostics.
#[derive(Debug, Clone)]
pub struct Diagnoser {
    pub config: Arc<Config>,
    pub store: Store,
    pub aws: Diagnostics,
    pub http: reqwest::Client,
    pub wakeups: crate::wakeups::Wakeups,
}

/// The build logs read once for all log diagnostics: the failed build's, and the last green
/// build's of the same action (or why there is none).
struct BuildLogs {
    failed: Result<Vec<String>, String>,
    green: Result<(String, Vec<String>), String>,
}

/// Pages of ListActionExecutions read to find the last green build (100 runs each).
const GREEN_SEARCH_PAGES: usize = 3;

/// One diagnostic's result plus what it tells the rules.
struct Outcome {
    result: DiagnosticResult,
    update: IncidentUpdate,
    log: Option<LogFindings>,
    deployment_status: Option<String>,
    alarms: Option<Vec<String>>,
    health_ok: Option<bool>,
}

impl Outcome {
    fn new(name: &str, ok: bool, summary: String, lines: Vec<String>, now: DateTime<Utc>) -> Self {
        Self {
            result: DiagnosticResult {
                name: name.to_string(),
                ok,
                summary,
                lines,
                at: now,
            },
            update: IncidentUpdate::default(),
            log: None,
            deployment_status: None,
            alarms: None,
            health_ok: None,
        }
    }

    fn failed(name: &str, why: String, now: DateTime<Utc>) -> Self {
        Self::new(
            name,
            false,
            format!("could not be fetched: {why}"),
            Vec::new(),
            now,
        )
    }
}

impl Diagnoser {
    /// Diagnoses the active incidents that have diagnostics to run and no result yet: their
    /// diagnosis was in flight when a previous process died (kill -9, OOM, a lost task), so
    /// nothing else would ever run it. With a shared store (several replicas) an incident younger
    /// than `settle` may still be in the hands of the replica that opened it; it is looked at
    /// again once that much time has passed since it opened.
    pub async fn run_owed(&self, settle: Duration) {
        let incidents = match self.store.incidents(true).await {
            Ok(incidents) => incidents,
            Err(e) => {
                tracing::error!(error = %e, "Cannot list incidents whose diagnosis is owed");
                return;
            }
        };
        let owed: Vec<Incident> = incidents
            .into_iter()
            .filter(|i| i.diagnosis.is_empty() && !i.diagnostics.is_empty())
            .collect();
        if owed.is_empty() {
            return;
        }
        tracing::info!(
            incidents = owed.len(),
            "Diagnoses owed by an earlier run: running them"
        );
        let tasks = owed.into_iter().map(|incident| async move {
            let wait = (incident.opened_at + settle - Utc::now())
                .to_std()
                .unwrap_or_default();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
                // Another replica may have diagnosed it meanwhile.
                match self.store.incident(&incident.key).await {
                    Ok(Some((current, _)))
                        if current.diagnosis.is_empty() && current.status.is_active() => {}
                    _ => return,
                }
            }
            tracing::info!(incident_key = %incident.key, "Running the diagnosis an earlier run did not finish");
            self.run(&incident.key, None).await;
        });
        futures_util::future::join_all(tasks).await;
    }

    /// Runs `diagnostics` (or the incident's own list) for `key` and records the results.
    pub async fn run(&self, key: &str, diagnostics: Option<Vec<Diagnostic>>) {
        let incident = match until_stored("Loading the incident to diagnose", key, || {
            self.store.incident(key)
        })
        .await
        {
            Ok(Some((incident, _))) => incident,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(incident_key = %key, error = %e, "Cannot load the incident to diagnose");
                return;
            }
        };
        let Some(env) = self.config.environment(&incident.environment).cloned() else {
            return;
        };
        let first_run = diagnostics.is_none();
        let list = diagnostics.unwrap_or_else(|| incident.diagnostics.clone());
        let now = Utc::now();
        let lines = self.build_log_lines(&incident, &env, &list, now).await;
        let tasks = list
            .iter()
            .map(|d| self.one(d, &incident, &env, &lines, now));
        let outcomes = futures_util::future::join_all(tasks).await;

        let mut update = IncidentUpdate::default();
        let mut results = Vec::new();
        for o in &outcomes {
            merge_update(&mut update, &o.update);
            results.push(o.result.clone());
        }
        let findings = self.findings(&incident, &outcomes);
        // The first run's findings are stored before the diagnosis releases the held first post,
        // so that post already has the refined type and its runbook section (a coverage or
        // security failure is posted as Incident 4 or 5, not as Incident 1 then corrected).
        // Re-runs record first: their follow-up comes before what the findings conclude.
        if first_run {
            for finding in &findings {
                self.apply_finding(finding).await;
            }
        }
        let follow_ups = rules::update_notifications(&self.config, &incident.environment, now);
        match until_stored("Recording the diagnosis", key, || {
            self.store.record_diagnosis(
                key,
                results.clone(),
                update.clone(),
                follow_ups.clone(),
                Utc::now(),
            )
        })
        .await
        {
            Ok(_) => self.wakeups.posts_queued(),
            Err(e) => tracing::error!(incident_key = %key, error = %e, "Diagnosis not stored"),
        }
        if !first_run {
            for finding in &findings {
                self.apply_finding(finding).await;
            }
        }
    }

    /// The build log is read once for all log diagnostics (the widest window they ask for),
    /// from the failed build's own stream when the event or `ListActionExecutions` names it;
    /// the last green build's log of the same action is read beside it, within the same time
    /// budget, when `diagnosis.compare_with_last_green` is on.
    async fn build_log_lines(
        &self,
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
        let compare = self.config.diagnosis.compare_with_last_green;
        let runs = match &incident.execution_id {
            Some(execution) if compare || incident.build_log_stream.is_none() => {
                let lookup = self.aws.build_runs(
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
            let fetch = self
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
            let fetch = self
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

    async fn one(
        &self,
        d: &Diagnostic,
        incident: &Incident,
        env: &Environment,
        log: &Option<BuildLogs>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let name = d.name();
        let budget = StdDuration::from_secs(timeout_of(d));
        let work = self.run_one(d, incident, env, log, now);
        match tokio::time::timeout(budget, work).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::failed(name, format!("timed out after {} s", budget.as_secs()), now),
        }
    }

    async fn run_one(
        &self,
        d: &Diagnostic,
        incident: &Incident,
        env: &Environment,
        log: &Option<BuildLogs>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let name = d.name();
        match d {
            Diagnostic::PipelineState { .. } => match self
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
            },
            Diagnostic::ExecutionDetails { .. } => {
                let Some(execution) = &incident.execution_id else {
                    return Outcome::new(name, true, "no execution known yet".into(), vec![], now);
                };
                match self.aws.execution(&env.pipeline, execution).await {
                    Ok(f) => {
                        let author = match &f.revision_id {
                            Some(id) => self.commit_author(env, execution, id).await,
                            None => None,
                        };
                        let by = author.map(|a| format!(" by {a}")).unwrap_or_default();
                        let message = f.revision_summary.as_deref().map(commit_message);
                        let commit = match (&f.revision_id, message) {
                            (Some(id), Some(message)) => {
                                format!("{} \"{}\"{by}", short(id), first_line(&message))
                            }
                            (Some(id), None) => format!("{}{by}", short(id)),
                            _ => "no source revision recorded".to_string(),
                        };
                        Outcome::new(
                            name,
                            true,
                            commit,
                            f.revision_url.into_iter().collect(),
                            now,
                        )
                    }
                    Err(e) => Outcome::failed(name, aws_reason(&e), now),
                }
            }
            Diagnostic::BuildLog(s)
            | Diagnostic::CoverageReport(s)
            | Diagnostic::SecurityReport(s) => match log {
                Some(BuildLogs {
                    failed: Ok(lines),
                    green,
                }) => self.log_outcome(d, s, lines, green, now),
                Some(BuildLogs {
                    failed: Err(why), ..
                }) => Outcome::failed(name, why.clone(), now),
                None => Outcome::failed(name, "no log window configured".into(), now),
            },
            Diagnostic::RollbackLog(s) => {
                let start = now - Duration::seconds(s.window_secs as i64);
                match self
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
            Diagnostic::DeploymentRecord { .. } => match self
                .aws
                .latest_deployment(&env.deployments_table, &env.name)
                .await
            {
                Ok(Some(r)) => {
                    let mut summary =
                        format!("latest deployment {} is {}", r.deployment_id, r.status);
                    if let Some(v) = &r.version {
                        summary.push_str(&format!(" (version {})", short(v)));
                    }
                    let mut lines = Vec::new();
                    if let (Some(m), Some(a)) = (&r.commit_message, &r.commit_author) {
                        lines.push(format!("commit \"{}\" by {a}", first_line(m)));
                    }
                    if let Some(reason) = &r.rollback_reason {
                        lines.push(format!("rollback reason: {reason}"));
                    }
                    let mut o = Outcome::new(name, true, summary, lines, now);
                    o.deployment_status = Some(r.status);
                    o
                }
                Ok(None) => Outcome::new(
                    name,
                    true,
                    "no deployment record for this environment".into(),
                    vec![],
                    now,
                ),
                Err(e) => Outcome::failed(name, aws_reason(&e), now),
            },
            Diagnostic::Alarms { .. } => match self.aws.alarms_in_alarm(&env.alarm_prefix).await {
                Ok(alarms) => {
                    let names: Vec<String> = alarms.iter().map(|a| a.name.clone()).collect();
                    let summary = if names.is_empty() {
                        "no alarm in ALARM".into()
                    } else {
                        format!("{} alarm(s) in ALARM: {}", names.len(), names.join(", "))
                    };
                    let mut o = Outcome::new(
                        name,
                        true,
                        summary,
                        alarms
                            .iter()
                            .filter_map(|a| a.reason.clone())
                            .take(5)
                            .collect(),
                        now,
                    );
                    o.alarms = Some(names);
                    o
                }
                Err(e) => Outcome::failed(name, aws_reason(&e), now),
            },
            Diagnostic::HealthCheck {
                timeout_secs,
                expect_status_below,
            } => {
                let Some(url) = &env.health_url else {
                    return Outcome::new(
                        name,
                        true,
                        "no health_url configured".into(),
                        vec![],
                        now,
                    );
                };
                let request = self
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
                o.health_ok = Some(ok);
                o
            }
            Diagnostic::StageDurations { .. } => self.stage_durations(incident, env, now).await,
            Diagnostic::RelatedEnvironment { environment, .. } => {
                let Some(other) = self.config.environment(environment) else {
                    return Outcome::failed(
                        name,
                        format!("environment {environment} is not configured"),
                        now,
                    );
                };
                let state = self.aws.pipeline_state(&other.pipeline, None).await;
                let alarms = self.aws.alarms_in_alarm(&other.alarm_prefix).await;
                // Runbook Task 2 step 3, "verify staging deployment succeeded": its last run.
                let last = self.aws.latest_executions(&other.pipeline, 1).await;
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
        }
    }

    /// The commit's author, from the deployments table's record of this execution or version
    /// (CodePipeline's artifact revisions do not carry it). Best effort: none when the table
    /// has no such record or cannot be read.
    async fn commit_author(
        &self,
        env: &Environment,
        execution: &str,
        revision: &str,
    ) -> Option<String> {
        let records = self
            .aws
            .deployments(&env.deployments_table, &env.name)
            .await
            .ok()?;
        records
            .into_iter()
            .find(|r| {
                r.pipeline_execution_id.as_deref() == Some(execution)
                    || r.version.as_deref().is_some_and(|v| {
                        !v.is_empty() && (v.starts_with(revision) || revision.starts_with(v))
                    })
            })
            .and_then(|r| r.commit_author)
            .map(|a| logscan::scrub(&a).into_owned())
    }

    /// Runbook Incident 3 steps 2–4: the slowest stage, and whether an action looks stuck.
    async fn stage_durations(
        &self,
        incident: &Incident,
        env: &Environment,
        now: DateTime<Utc>,
    ) -> Outcome {
        let name = "stage_durations";
        let Some(execution) = &incident.execution_id else {
            return Outcome::new(name, true, "no execution known yet".into(), vec![], now);
        };
        let stuck_after = self.config.thresholds.stuck_after_secs as i64;
        let durations = match self
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
                    minutes(self.config.thresholds.deployment_duration_secs as i64)
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

    fn log_outcome(
        &self,
        d: &Diagnostic,
        search: &LogSearch,
        lines: &[String],
        green: &Result<(String, Vec<String>), String>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let name = d.name();
        let log = logscan::Log::from_lines(lines);
        let options = logscan::Options::from_config(&self.config, search);
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
                    self.config.thresholds.coverage_percent
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
            o.log = Some(findings);
        }
        o
    }

    fn findings(&self, incident: &Incident, outcomes: &[Outcome]) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(log) = outcomes.iter().find_map(|o| o.log.as_ref()) {
            out.push(Finding::RootCause(RootCauseFinding {
                key: incident.key.clone(),
                class: log.class,
                coverage_percent: log.coverage_percent,
                critical_findings: log.critical(),
            }));
        }
        if incident.incident_type == IncidentType::RollbackTriggered {
            let status = outcomes.iter().find_map(|o| o.deployment_status.clone());
            let alarms = outcomes.iter().find_map(|o| o.alarms.clone());
            if let (Some(status), Some(alarms)) = (status, alarms) {
                out.push(Finding::RollbackStatus(RollbackStatusFinding {
                    key: incident.key.clone(),
                    completed: status == "rolled_back",
                    failed: status == "failed",
                    alarms_in_alarm: alarms,
                    health_ok: outcomes.iter().find_map(|o| o.health_ok),
                }));
            }
        }
        out
    }

    async fn apply_finding(&self, finding: &Finding) {
        let now = Utc::now();
        let view = match self.store.view(now - Duration::days(8)).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "Cannot read incidents to apply a finding");
                return;
            }
        };
        let decision = rules::evaluate_finding(&self.config, finding, &view, now);
        if decision.actions.is_empty() {
            return;
        }
        // Each diagnosis run is its own input: a re-run may find the same thing again.
        let id = format!(
            "finding:{}:{}",
            finding.key(),
            now.timestamp_nanos_opt().unwrap_or_default()
        );
        let input = InputRecord {
            transition: id.clone(),
            id,
            event_time: now,
        };
        match self.store.apply(input, decision, now, None).await {
            Ok(applied) if applied.queued > 0 => self.wakeups.posts_queued(),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(incident_key = %finding.key(), error = %e, "Finding not stored")
            }
        }
    }
}

fn timeout_of(d: &Diagnostic) -> u64 {
    match d {
        Diagnostic::PipelineState { timeout_secs }
        | Diagnostic::ExecutionDetails { timeout_secs }
        | Diagnostic::DeploymentRecord { timeout_secs }
        | Diagnostic::Alarms { timeout_secs }
        | Diagnostic::StageDurations { timeout_secs }
        | Diagnostic::HealthCheck { timeout_secs, .. }
        | Diagnostic::RelatedEnvironment { timeout_secs, .. } => *timeout_secs,
        Diagnostic::BuildLog(s)
        | Diagnostic::CoverageReport(s)
        | Diagnostic::SecurityReport(s)
        | Diagnostic::RollbackLog(s) => s.timeout_secs,
    }
    .max(1)
}

fn aws_reason(e: &AwsError) -> String {
    match &e.code {
        Some(code) => format!("{} {} failed ({code})", e.service, e.operation),
        None => format!("{} {} failed", e.service, e.operation),
    }
}

/// `project:uuid` → `project:uuid8`.
fn short_build(id: &str) -> String {
    match id.rsplit_once(':') {
        Some((project, uuid)) => format!("{project}:{}", uuid.get(..8).unwrap_or(uuid)),
        None => id.to_string(),
    }
}

fn short(id: &str) -> &str {
    id.get(..7).unwrap_or(id)
}

/// The commit message of a revision summary: plain text (CodeCommit, S3) or the JSON that
/// CodeStar connections write (`{"ProviderType":"GitHub","CommitMessage":"..."}`).
fn commit_message(summary: &str) -> String {
    serde_json::from_str::<serde_json::Value>(summary)
        .ok()
        .and_then(|v| v.get("CommitMessage")?.as_str().map(String::from))
        .unwrap_or_else(|| summary.to_string())
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(120)
        .collect()
}

fn merge_update(into: &mut IncidentUpdate, from: &IncidentUpdate) {
    if into.stage.is_none() {
        into.stage.clone_from(&from.stage);
    }
    if into.action.is_none() {
        into.action.clone_from(&from.action);
    }
    if into.error.is_none() {
        into.error.clone_from(&from.error);
    }
    into.critical_findings |= from.critical_findings;
}
