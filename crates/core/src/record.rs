//! The stored incident and its timeline, and how a decision changes them. Pure: the store
//! persists what these functions compute.

use crate::config::Diagnostic;
use crate::decision::{Action, ErrorInfo, IncidentUpdate, OpenIncident};
use crate::incident::{IncidentStatus, IncidentType, IncidentView, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything known about one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub key: String,
    pub incident_type: IncidentType,
    pub severity: Severity,
    pub environment: String,
    pub pipeline: String,
    pub execution_id: Option<String>,
    pub execution_start: Option<DateTime<Utc>>,
    pub stage: Option<String>,
    pub action: Option<String>,
    pub alarms: Vec<String>,
    pub error: Option<ErrorInfo>,
    pub error_signature: Option<String>,
    pub build_log_stream: Option<String>,
    pub title: String,
    pub runbook_section: String,
    pub next_steps: String,
    pub status: IncidentStatus,
    pub opened_at: DateTime<Utc>,
    pub ack_by: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    /// Highest escalation level notified so far (index; 0 = L1).
    pub highest_level_notified: Option<usize>,
    /// Diagnostics requested when the incident opened (and re-run later).
    pub diagnostics: Vec<Diagnostic>,
    /// The security scan reported CRITICAL findings.
    pub critical_findings: bool,
    /// Id of the event that opened the incident, and when it happened (for latency figures).
    pub opened_by_event: String,
    pub event_time: DateTime<Utc>,
    /// Results of the diagnostics, latest run of each.
    #[serde(default)]
    pub diagnosis: Vec<DiagnosticResult>,
}

/// What one diagnostic found, ready to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticResult {
    /// Diagnostic name (`build_log`, `pipeline_state`, ...).
    pub name: String,
    /// False when it could not be fetched (timeout, AWS error): the post says so.
    pub ok: bool,
    /// One line for the post.
    pub summary: String,
    /// Details (log excerpt lines, alarm names), scrubbed and bounded.
    pub lines: Vec<String>,
    pub at: DateTime<Utc>,
}

/// One line of an incident's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: TimelineKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    Opened,
    Signal,
    Refined,
    Diagnostic,
    Notified,
    NotifyFailed,
    Escalated,
    Acknowledged,
    Resolved,
}

impl Incident {
    /// A new incident from the rules' decision; levels notified in the first post count as
    /// reached.
    pub fn open(open: &OpenIncident, event_id: &str, event_time: DateTime<Utc>) -> Self {
        Self {
            key: open.key.clone(),
            incident_type: open.incident_type,
            severity: open.severity,
            environment: open.environment.clone(),
            pipeline: open.pipeline.clone(),
            execution_id: open.execution_id.clone(),
            execution_start: open.execution_start,
            stage: open.stage.clone(),
            action: open.action.clone(),
            alarms: open.alarm.iter().cloned().collect(),
            error: open.error.clone(),
            error_signature: open.error_signature.clone(),
            build_log_stream: None,
            title: open.title.clone(),
            runbook_section: open.runbook_section.clone(),
            next_steps: open.next_steps.clone(),
            status: IncidentStatus::Open,
            opened_at: open.opened_at,
            ack_by: open.ack_by,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolution: None,
            highest_level_notified: open.notified_levels.iter().copied().max(),
            diagnostics: open.diagnostics.clone(),
            critical_findings: false,
            opened_by_event: event_id.to_string(),
            event_time,
            diagnosis: Vec::new(),
        }
    }

    /// What the rules see of this incident.
    pub fn view(&self) -> IncidentView {
        IncidentView {
            key: self.key.clone(),
            incident_type: self.incident_type,
            environment: self.environment.clone(),
            pipeline: self.pipeline.clone(),
            execution_id: self.execution_id.clone(),
            execution_start: self.execution_start,
            failed_stage: self.stage.clone(),
            action: self.action.clone(),
            alarms: self.alarms.clone(),
            error_signature: self.error_signature.clone(),
            severity: self.severity,
            status: self.status,
            opened_at: self.opened_at,
            resolved_at: self.resolved_at,
            highest_level_notified: self.highest_level_notified,
            resolution: self.resolution.clone(),
        }
    }

    /// Applies one action of a decision about this incident; returns the timeline entry.
    pub fn apply(&mut self, action: &Action, now: DateTime<Utc>) -> Option<TimelineEntry> {
        let entry = |kind, text: String| {
            Some(TimelineEntry {
                at: now,
                kind,
                text,
            })
        };
        match action {
            Action::Open(_) => None,
            Action::Update { update, reason, .. } => {
                self.merge(update);
                entry(TimelineKind::Signal, reason.clone())
            }
            Action::Refine {
                from,
                to,
                severity,
                reason,
                ..
            } => {
                self.incident_type = *to;
                self.severity = *severity;
                self.title = format!("{} — {}", to.title(), self.pipeline);
                self.runbook_section = to.runbook_section().to_string();
                self.next_steps = to.next_steps().to_string();
                entry(TimelineKind::Refined, format!("{from} → {to}: {reason}"))
            }
            Action::Resolve { reason, .. } => {
                if !self.status.is_active() {
                    return None;
                }
                self.status = IncidentStatus::Resolved;
                self.resolved_at = Some(now);
                self.resolution = Some(reason.clone());
                entry(TimelineKind::Resolved, reason.clone())
            }
            Action::Escalate {
                level,
                level_id,
                reason,
                ..
            } => {
                self.highest_level_notified = Some(
                    self.highest_level_notified
                        .map_or(*level, |h| h.max(*level)),
                );
                entry(TimelineKind::Escalated, format!("{level_id}: {reason}"))
            }
        }
    }

    /// Records diagnostic results (replacing earlier runs of the same diagnostics).
    pub fn record_diagnosis(&mut self, results: &[DiagnosticResult]) {
        for result in results {
            self.diagnosis.retain(|d| d.name != result.name);
            self.diagnosis.push(result.clone());
        }
    }

    /// The latest result of a diagnostic.
    pub fn diagnostic(&self, name: &str) -> Option<&DiagnosticResult> {
        self.diagnosis.iter().find(|d| d.name == name)
    }

    /// Adds facts learnt later (from an event or a diagnostic) without overwriting known ones.
    pub fn merge(&mut self, u: &IncidentUpdate) {
        fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
            if slot.is_none() {
                slot.clone_from(value);
            }
        }
        fill(&mut self.execution_id, &u.execution_id);
        fill(&mut self.execution_start, &u.execution_start);
        fill(&mut self.stage, &u.stage);
        fill(&mut self.action, &u.action);
        fill(&mut self.error_signature, &u.error_signature);
        if u.error.is_some() {
            self.error.clone_from(&u.error);
        }
        self.critical_findings |= u.critical_findings;
        if let Some(stream) = &u.build_log_stream {
            self.build_log_stream = Some(stream.clone());
        }
        if let Some(alarm) = &u.alarm {
            if !self.alarms.contains(alarm) {
                self.alarms.push(alarm.clone());
            }
        }
    }
}

/// The key an action is about.
pub fn action_key(action: &Action) -> &str {
    match action {
        Action::Open(o) => &o.key,
        Action::Update { key, .. }
        | Action::Refine { key, .. }
        | Action::Resolve { key, .. }
        | Action::Escalate { key, .. } => key,
    }
}
