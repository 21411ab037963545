//! The stored incident and its timeline. How they change is in `transition`.

use crate::config::Diagnostic;
use crate::decision::{Action, ErrorInfo, OpenIncident};
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
    /// The failure looks transient: "Retry failed stage" is offered.
    #[serde(default)]
    pub retryable: bool,
    /// What operators did or tried (approve, reject, retry, restart, start), in order.
    #[serde(default)]
    pub actions: Vec<crate::actions::ActionRecord>,
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
    /// An operator's action (approve, reject, retry, restart, start), done, counted, refused or
    /// failed.
    Action,
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
            retryable: false,
            actions: Vec::new(),
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

    /// The latest result of a diagnostic.
    pub fn diagnostic(&self, name: &str) -> Option<&DiagnosticResult> {
        self.diagnosis.iter().find(|d| d.name == name)
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

/// An incident as the store keeps it, open and unacknowledged, for unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::Incident;
    use crate::incident::{IncidentStatus, IncidentType, Severity};
    use chrono::{DateTime, Utc};

    pub(crate) fn incident(
        key: &str,
        incident_type: IncidentType,
        env: &str,
        opened_at: DateTime<Utc>,
    ) -> Incident {
        Incident {
            key: key.into(),
            incident_type,
            severity: Severity::High,
            environment: env.into(),
            pipeline: format!("kiro-pipeline-{env}"),
            execution_id: None,
            execution_start: None,
            stage: None,
            action: None,
            alarms: Vec::new(),
            error: None,
            error_signature: None,
            build_log_stream: None,
            title: incident_type.title().into(),
            runbook_section: incident_type.runbook_section().into(),
            next_steps: incident_type.next_steps().into(),
            status: IncidentStatus::Open,
            opened_at,
            ack_by: None,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolution: None,
            highest_level_notified: Some(0),
            diagnostics: Vec::new(),
            critical_findings: false,
            opened_by_event: format!("event-{key}"),
            event_time: opened_at,
            diagnosis: Vec::new(),
            retryable: false,
            actions: Vec::new(),
        }
    }
}
