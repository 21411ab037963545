//! `explain EVENT.json`: what the rules would decide for one event, as JSON, with no AWS call.

use crate::cli::EXIT_BAD_INPUT;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::{Config, Diagnostic};
use pipeline_responder_core::decision::{Action, Deadline, Decision, Notification};
use pipeline_responder_core::event::{parse_message, Carrier, Event, Parsed};
use pipeline_responder_core::incident::{IncidentType, IncidentsView, Severity};
use pipeline_responder_core::rules;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Event file: EventBridge JSON, an SNS envelope, a CodeStar notification or a pipeline
    /// notification (`-` reads standard input).
    pub event: PathBuf,
    /// Evaluate as of this time (RFC 3339). Default: the event's own time.
    #[arg(long)]
    pub now: Option<DateTime<Utc>>,
    /// JSON file with incidents to consider open (`{"incidents": [...]}`), to see joins and
    /// resolutions.
    #[arg(long)]
    pub incidents: Option<PathBuf>,
}

pub fn run(config: &Config, args: &ExplainArgs) -> ExitCode {
    let body = match read(&args.event) {
        Ok(body) => body,
        Err(message) => return fail(&message),
    };
    let view: IncidentsView = match &args.incidents {
        None => IncidentsView::default(),
        Some(path) => match read(path).and_then(|text| {
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not an incidents view ({e})", path.display()))
        }) {
            Ok(view) => view,
            Err(message) => return fail(&message),
        },
    };
    let output = match parse_message(&body) {
        Err(error) => serde_json::to_string_pretty(&json!({
            "outcome": "rejected",
            "reason": error.reason(),
            "error": error.to_string(),
        })),
        Ok(Parsed::Ignored { reason, kind }) => serde_json::to_string_pretty(&json!({
            "outcome": "ignored",
            "kind": kind,
            "reason": reason,
        })),
        Ok(Parsed::Event(event)) => {
            let now = args.now.unwrap_or(event.time);
            let decision = rules::evaluate(config, &event, &view, now);
            render(&event, &decision, now)
        }
    };
    match output {
        Ok(text) => {
            outln!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("cannot print the decision: {e}")),
    }
}

fn read(path: &PathBuf) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("standard input: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read ({e})", path.display()))
}

fn fail(message: &str) -> ExitCode {
    errln!("explain: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// The decision with its headline facts first, in reading order.
#[derive(Debug, Serialize)]
struct Explanation<'a> {
    outcome: &'static str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    incident_type: Option<IncidentType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<Severity>,
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack_by: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<&'a [Diagnostic]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notifications: Option<&'a [Notification]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation_schedule: Option<&'a [Deadline]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resolves: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    event: EventSummary<'a>,
    evaluated_at: DateTime<Utc>,
    actions: &'a [Action],
}

#[derive(Debug, Serialize)]
struct EventSummary<'a> {
    id: &'a str,
    kind: &'static str,
    carrier: Carrier,
    time: DateTime<Utc>,
}

fn render(
    event: &Event,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Result<String, serde_json::Error> {
    let outcome = match decision.actions.first() {
        None => "none",
        Some(Action::Open(_)) => "open",
        Some(Action::Update { .. }) => "update",
        Some(Action::Refine { .. }) => "refine",
        Some(Action::Resolve { .. }) => "resolve",
        Some(Action::Escalate { .. }) => "escalate",
    };
    let open = decision.opened();
    let explanation = Explanation {
        outcome,
        incident_type: open.map(|o| o.incident_type),
        key: open.map(|o| o.key.as_str()),
        severity: open.map(|o| o.severity),
        environment: decision.environment.as_deref(),
        pipeline: open.map(|o| o.pipeline.as_str()),
        ack_by: open.and_then(|o| o.ack_by),
        diagnostics: open.map(|o| o.diagnostics.as_slice()),
        notifications: open.map(|o| o.notifications.as_slice()),
        escalation_schedule: open.map(|o| o.schedule.as_slice()),
        resolves: decision.resolved_keys(),
        reason: decision.ignored.as_deref(),
        event: EventSummary {
            id: &event.id,
            kind: event.kind_name(),
            carrier: event.carrier,
            time: event.time,
        },
        evaluated_at: now,
        actions: &decision.actions,
    };
    // Serialised straight from the struct so the headline fields come first.
    serde_json::to_string_pretty(&explanation)
}
