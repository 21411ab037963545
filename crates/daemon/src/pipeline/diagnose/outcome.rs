//! What one diagnostic returns: the result shown in the post, what it refines in the incident,
//! and its typed evidence for the rules' findings.

use chrono::{DateTime, Utc};
use pipeline_responder_aws::AwsError;
use pipeline_responder_core::decision::IncidentUpdate;
use pipeline_responder_core::logscan::LogFindings;
use pipeline_responder_core::record::DiagnosticResult;

/// One diagnostic's result plus what it tells the rules.
pub(super) struct Outcome {
    pub result: DiagnosticResult,
    pub update: IncidentUpdate,
    pub evidence: Evidence,
}

/// What a diagnostic found that a finding is made of (see `Diagnoser::findings`).
pub(super) enum Evidence {
    /// Nothing beyond the result's text.
    None,
    /// The build log's analysis (root cause class, coverage, critical findings).
    Log(Box<LogFindings>),
    /// The latest deployment record's status (`rolled_back`, `failed`, ...).
    Deployment { status: String },
    /// The names of the alarms in ALARM.
    Alarms(Vec<String>),
    /// Whether the health check passed.
    Health { ok: bool },
}

impl Outcome {
    pub fn new(
        name: &str,
        ok: bool,
        summary: String,
        lines: Vec<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            result: DiagnosticResult {
                name: name.to_string(),
                ok,
                summary,
                lines,
                at: now,
            },
            update: IncidentUpdate::default(),
            evidence: Evidence::None,
        }
    }

    pub fn failed(name: &str, why: String, now: DateTime<Utc>) -> Self {
        Self::new(
            name,
            false,
            format!("could not be fetched: {why}"),
            Vec::new(),
            now,
        )
    }
}

/// Why an AWS call failed, without its message (which may carry account details).
pub(super) fn aws_reason(e: &AwsError) -> String {
    match &e.code {
        Some(code) => format!("{} {} failed ({code})", e.service, e.operation),
        None => format!("{} {} failed", e.service, e.operation),
    }
}

/// A commit or version id as people quote it (7 characters).
pub(super) fn short(id: &str) -> &str {
    id.get(..7).unwrap_or(id)
}

/// The first line of a message, at most 120 characters.
pub(super) fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(120)
        .collect()
}
