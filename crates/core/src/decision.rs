//! What the rules decide: the output of [`crate::rules::evaluate`], applied by the incident
//! manager and printed by `explain`.

use crate::config::{Diagnostic, StepCondition, Until};
use crate::incident::{IncidentType, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything the rules decided for one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Id of the event (or finding) decided on.
    pub input_id: String,
    /// Kind of input, e.g. `pipeline_execution`.
    pub input_kind: String,
    /// Environment the input belongs to, when known.
    pub environment: Option<String>,
    /// What to do; empty when the input changes nothing.
    pub actions: Vec<Action>,
    /// Why nothing happens, when `actions` is empty.
    pub ignored: Option<String>,
}

impl Decision {
    /// The incident opened by this decision, if any.
    pub fn opened(&self) -> Option<&OpenIncident> {
        self.actions.iter().find_map(|a| match a {
            Action::Open(o) => Some(o),
            _ => None,
        })
    }

    /// Keys of the incidents resolved by this decision.
    pub fn resolved_keys(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Resolve { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Open a new incident (the store's conditional write decides if it really is new).
    Open(OpenIncident),
    /// Add what this input tells to an existing incident.
    Update {
        key: String,
        update: IncidentUpdate,
        /// Why this input belongs to that incident.
        reason: String,
        /// Thread replies with the news, when the update carries any (`update.notify`).
        notifications: Vec<Notification>,
    },
    /// Change an incident's type after diagnosis (keeps key and timeline).
    Refine {
        key: String,
        from: IncidentType,
        to: IncidentType,
        severity: Severity,
        reason: String,
        /// Replaces the pending deadlines.
        schedule: Vec<Deadline>,
        notifications: Vec<Notification>,
    },
    /// Close an incident.
    Resolve {
        key: String,
        reason: String,
        notifications: Vec<Notification>,
    },
    /// Notify a level now (cross-incident rules, rollback failed, recurring slowness).
    Escalate {
        key: String,
        level: usize,
        level_id: String,
        reason: String,
        notifications: Vec<Notification>,
    },
}

/// A new incident with everything needed to post it and follow it up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenIncident {
    pub key: String,
    pub incident_type: IncidentType,
    pub severity: Severity,
    pub environment: String,
    pub pipeline: String,
    pub execution_id: Option<String>,
    pub execution_start: Option<DateTime<Utc>>,
    pub stage: Option<String>,
    pub action: Option<String>,
    pub alarm: Option<String>,
    pub error: Option<ErrorInfo>,
    /// AWS-side error family (for the outage rule), when the error looks like one.
    pub error_signature: Option<String>,
    pub title: String,
    pub runbook_section: String,
    pub next_steps: String,
    pub opened_at: DateTime<Utc>,
    /// When a human should have acknowledged by (the runbook's "< 5 minutes").
    pub ack_by: Option<DateTime<Utc>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Escalation levels addressed by the first post (the policy's "at once" steps).
    pub notified_levels: Vec<usize>,
    pub notifications: Vec<Notification>,
    pub schedule: Vec<Deadline>,
}

/// Facts an input adds to an existing incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_start: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_signature: Option<String>,
    /// CodeBuild log location learnt from a build event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_log_stream: Option<String>,
    /// Diagnostics to run again (e.g. rollback checks after an alarm returned to OK).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rerun_diagnostics: Vec<Diagnostic>,
    /// The security scan reported CRITICAL findings (enables the "critical_findings" steps).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub critical_findings: bool,
    /// The failure looks transient (AWS throttling, a timeout, a known-flaky cause): a retry of
    /// the failed stage is offered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retryable: bool,
    /// Post the new facts to the incident's thread.
    pub notify: bool,
}

/// The error an action reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: Option<String>,
    pub summary: Option<String>,
    pub external_url: Option<String>,
}

/// An absolute escalation deadline stored with the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    pub at: DateTime<Utc>,
    pub level: usize,
    pub level_id: String,
    pub kind: DeadlineKind,
    pub until: Until,
    pub when: Option<StepCondition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// First notification of a level.
    Escalation,
    /// A repeat of a step (e.g. the approval reminder).
    Reminder,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub channel: Channel,
    pub kind: NotificationKind,
    /// Mention of the level's people, for escalations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mention: Option<String>,
}

/// Where a notification goes: a notifier kind (`slack`, `sns`, `pagerduty`, ...) and its target
/// there (a Slack channel, a topic ARN, the name of a configured routing key). Never a secret:
/// it is stored, printed and shown in timelines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel {
    pub kind: String,
    pub target: String,
}

impl Channel {
    pub fn new(kind: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            target: target.into(),
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.target)
    }
}

/// The stored form: `{"type": kind, "target": ...}`. Slack and SNS keep the field names of
/// layouts before notifiers were data (`channel`, `topic_arn`), so rows written by either
/// version are read by the other during a rolling deploy.
#[derive(Serialize, Deserialize)]
struct ChannelWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic_arn: Option<String>,
}

impl Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let target = Some(self.target.clone());
        let mut wire = ChannelWire {
            kind: self.kind.clone(),
            target: None,
            channel: None,
            topic_arn: None,
        };
        match self.kind.as_str() {
            "slack" => wire.channel = target,
            "sns" => wire.topic_arn = target,
            _ => wire.target = target,
        }
        wire.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = ChannelWire::deserialize(d)?;
        let target = wire
            .target
            .or(wire.channel)
            .or(wire.topic_arn)
            .ok_or_else(|| serde::de::Error::missing_field("target"))?;
        Ok(Channel::new(wire.kind, target))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Opened,
    Updated,
    Refined,
    Escalated,
    Reminder,
    /// Acknowledged by a person (here or in a pager); pagers stop paging.
    Acknowledged,
    Resolved,
}

impl NotificationKind {
    /// Every kind, in the order an incident goes through them.
    pub const ALL: [NotificationKind; 7] = [
        NotificationKind::Opened,
        NotificationKind::Updated,
        NotificationKind::Refined,
        NotificationKind::Escalated,
        NotificationKind::Reminder,
        NotificationKind::Acknowledged,
        NotificationKind::Resolved,
    ];

    /// The snake_case name (`opened`, `escalated`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Opened => "opened",
            NotificationKind::Updated => "updated",
            NotificationKind::Refined => "refined",
            NotificationKind::Escalated => "escalated",
            NotificationKind::Reminder => "reminder",
            NotificationKind::Acknowledged => "acknowledged",
            NotificationKind::Resolved => "resolved",
        }
    }
}
