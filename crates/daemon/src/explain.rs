//! `explain EVENT.json`: what the rules would decide for one event, as JSON, with no AWS call.

use crate::cli::EXIT_BAD_INPUT;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Config;
use pipeline_responder_core::decision::{Action, Decision};
use pipeline_responder_core::event::{parse_message, Parsed};
use pipeline_responder_core::incident::IncidentsView;
use pipeline_responder_core::rules;
use serde_json::{json, Value};
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
        Err(error) => json!({
            "outcome": "rejected",
            "reason": error.reason(),
            "error": error.to_string(),
        }),
        Ok(Parsed::Ignored { reason, kind }) => json!({
            "outcome": "ignored",
            "kind": kind,
            "reason": reason,
        }),
        Ok(Parsed::Event(event)) => {
            let now = args.now.unwrap_or(event.time);
            let decision = rules::evaluate(config, &event, &view, now);
            render(&event, &decision, now)
        }
    };
    match serde_json::to_string_pretty(&output) {
        Ok(text) => {
            println!("{text}");
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
    eprintln!("explain: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// The decision with its headline facts lifted to the top.
fn render(
    event: &pipeline_responder_core::event::Event,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Value {
    let outcome = match decision.actions.first() {
        None => "none",
        Some(Action::Open(_)) => "open",
        Some(Action::Update { .. }) => "update",
        Some(Action::Refine { .. }) => "refine",
        Some(Action::Resolve { .. }) => "resolve",
        Some(Action::Escalate { .. }) => "escalate",
    };
    let mut out = json!({
        "outcome": outcome,
        "event": {
            "id": event.id,
            "kind": event.kind_name(),
            "carrier": event.carrier,
            "time": event.time,
        },
        "evaluated_at": now,
        "environment": decision.environment,
    });
    if let Some(open) = decision.opened() {
        out["type"] = json!(open.incident_type);
        out["key"] = json!(open.key);
        out["severity"] = json!(open.severity);
        out["pipeline"] = json!(open.pipeline);
        out["ack_by"] = json!(open.ack_by);
        out["diagnostics"] = json!(open.diagnostics);
        out["notifications"] = json!(open.notifications);
        out["escalation_schedule"] = json!(open.schedule);
    }
    let resolved = decision.resolved_keys();
    if !resolved.is_empty() {
        out["resolves"] = json!(resolved);
    }
    if let Some(reason) = &decision.ignored {
        out["reason"] = json!(reason);
    }
    out["actions"] = json!(decision.actions);
    out
}
