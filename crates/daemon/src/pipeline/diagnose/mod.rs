//! Runs an incident's diagnostics concurrently, each within its time budget; stores what they
//! found (a failed diagnostic says so); turns findings into rule inputs (refinement, rollback
//! status); and releases the held first post.
//!
//! One runner per diagnostic, each in its own file, returning an [`Outcome`] with typed
//! [`Evidence`]; `one` picks the runner. A new diagnostic is a `Diagnostic` variant in core's
//! config, a file here and one arm in `one`.

mod alarms;
mod build_log;
mod deployment;
mod durations;
mod execution;
mod health;
mod outcome;
mod related;
mod rollback_log;
mod state;

use crate::store::{until_stored, InputRecord, Store};
use build_log::BuildLogs;
use chrono::{DateTime, Duration, Utc};
use outcome::{Evidence, Outcome};
use pipeline_responder_aws::diagnostics::Diagnostics;
use pipeline_responder_core::config::{Config, Diagnostic, Environment};
use pipeline_responder_core::decision::IncidentUpdate;
use pipeline_responder_core::finding::{Finding, RollbackStatusFinding, RootCauseFinding};
use pipeline_responder_core::incident::IncidentType;
use pipeline_responder_core::record::Incident;
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
        let lines = build_log::fetch(self, &incident, &env, &list, now).await;
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

    async fn one(
        &self,
        d: &Diagnostic,
        incident: &Incident,
        env: &Environment,
        logs: &Option<BuildLogs>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let name = d.name();
        let budget = StdDuration::from_secs(timeout_of(d));
        let work = async {
            match d {
                Diagnostic::PipelineState { .. } => {
                    state::run(self, name, incident, env, now).await
                }
                Diagnostic::ExecutionDetails { .. } => {
                    execution::run(self, name, incident, env, now).await
                }
                Diagnostic::BuildLog(s)
                | Diagnostic::CoverageReport(s)
                | Diagnostic::SecurityReport(s) => build_log::run(self, d, s, logs.as_ref(), now),
                Diagnostic::RollbackLog(s) => rollback_log::run(self, name, s, env, now).await,
                Diagnostic::DeploymentRecord { .. } => deployment::run(self, name, env, now).await,
                Diagnostic::Alarms { .. } => alarms::run(self, name, env, now).await,
                Diagnostic::HealthCheck {
                    timeout_secs,
                    expect_status_below,
                } => health::run(self, name, env, timeout_secs, expect_status_below, now).await,
                Diagnostic::StageDurations { .. } => {
                    durations::run(self, name, incident, env, now).await
                }
                Diagnostic::RelatedEnvironment { environment, .. } => {
                    related::run(self, name, environment, now).await
                }
            }
        };
        match tokio::time::timeout(budget, work).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::failed(name, format!("timed out after {} s", budget.as_secs()), now),
        }
    }

    fn findings(&self, incident: &Incident, outcomes: &[Outcome]) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(log) = outcomes.iter().find_map(|o| match &o.evidence {
            Evidence::Log(log) => Some(log),
            _ => None,
        }) {
            out.push(Finding::RootCause(RootCauseFinding {
                key: incident.key.clone(),
                class: log.class,
                coverage_percent: log.coverage_percent,
                critical_findings: log.critical(),
            }));
        }
        if incident.incident_type == IncidentType::RollbackTriggered {
            let status = outcomes.iter().find_map(|o| match &o.evidence {
                Evidence::Deployment { status } => Some(status.clone()),
                _ => None,
            });
            let alarms = outcomes.iter().find_map(|o| match &o.evidence {
                Evidence::Alarms(names) => Some(names.clone()),
                _ => None,
            });
            if let (Some(status), Some(alarms)) = (status, alarms) {
                out.push(Finding::RollbackStatus(RollbackStatusFinding {
                    key: incident.key.clone(),
                    completed: status == "rolled_back",
                    failed: status == "failed",
                    alarms_in_alarm: alarms,
                    health_ok: outcomes.iter().find_map(|o| match o.evidence {
                        Evidence::Health { ok } => Some(ok),
                        _ => None,
                    }),
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
    into.retryable |= from.retryable;
}
