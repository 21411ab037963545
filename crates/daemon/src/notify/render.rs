//! What a post says: one renderer for Slack (Block Kit + text fallback) and SNS (subject, body,
//! attributes), from the stored incident, so every channel tells the same story. The message is
//! composed once per markup: untrusted text is escaped for Slack ([`Markup`]) and left plain for
//! SNS; buttons link only to hosts the markup allows.

use super::markup::Markup;
use pipeline_responder_core::actions::{self, ActionKind};
use pipeline_responder_core::config::Config;
use pipeline_responder_core::decision::NotificationKind;
use pipeline_responder_core::incident::{IncidentType, Severity};
use pipeline_responder_core::record::{Incident, TimelineEntry, TimelineKind};
use serde_json::{json, Value};

/// Slack's limit for a section block's text is 3000 characters; stay under it.
const SECTION_LIMIT: usize = 2900;
/// SNS subjects: at most 100 characters.
const SUBJECT_LIMIT: usize = 100;

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Slack's fallback text (escaped like the blocks).
    pub text: String,
    /// Plain text: the SNS body.
    pub plain: String,
    /// SNS subject.
    pub subject: String,
    /// Slack blocks.
    pub blocks: Value,
    /// Links every notifier may show: the pipeline console, the event's details page (only
    /// when it is one of our hosts).
    pub links: Vec<(String, String)>,
}

fn severity_mark(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "🚨",
        Severity::High => "🔴",
        Severity::Medium => "🟠",
        Severity::Low => "🟡",
        Severity::Info => "🔵",
    }
}

/// One line naming an incident for a pager's screen: `[HIGH] production: <title>`.
pub fn headline(incident: &Incident) -> String {
    format!(
        "[{}] {}: {}",
        incident.severity.as_str().to_uppercase(),
        incident.environment,
        incident.title
    )
}

/// `text` cut to `limit` characters, with an ellipsis when cut.
pub fn clip(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Console link of the pipeline.
pub fn pipeline_url(config: &Config, pipeline: &str) -> String {
    let region = &config.aws.region;
    format!("https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline}/view?region={region}")
}

/// The message for one notification of an incident.
pub fn render(
    config: &Config,
    incident: &Incident,
    timeline: &[TimelineEntry],
    kind: NotificationKind,
    note: Option<&str>,
    mention: Option<&str>,
) -> Rendered {
    let slack = Markup::slack(config);
    let (headline, body) = compose(config, incident, timeline, kind, note, mention, &slack);
    let (plain_headline, plain_body) = compose(
        config,
        incident,
        timeline,
        kind,
        note,
        mention,
        &Markup::Plain,
    );
    let mut links = vec![(
        "Pipeline".to_string(),
        pipeline_url(config, &incident.pipeline),
    )];
    if let Some(url) = incident
        .error
        .as_ref()
        .and_then(|e| e.external_url.as_deref())
    {
        // The event's link (a CodeBuild or CloudWatch page) only when it points at our console.
        if slack.may_link(url) {
            links.push(("Details".to_string(), url.to_string()));
        }
    }
    let mut buttons: Vec<Value> = links
        .iter()
        .map(|(text, url)| json!({"type": "button", "text": {"type": "plain_text", "text": text}, "url": url}))
        .collect();
    if incident.status.is_active() {
        buttons.insert(
            0,
            json!({
                "type": "button",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "action_id": "acknowledge",
                "value": incident.key,
            }),
        );
    }
    // The runbook's actions this incident allows, after Acknowledge, before the links.
    let at = usize::from(incident.status.is_active());
    for (i, action) in actions::offered(config, incident).into_iter().enumerate() {
        buttons.insert(at + i, action_button(incident, action));
    }
    // `verbatim`: Slack does not turn bare names and URLs into links or mentions.
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(&headline, 150), "verbatim": true}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body, "verbatim": true}},
        {"type": "actions", "elements": buttons},
    ]);
    let subject = clip(
        &format!(
            "[{}] {} {}: {}",
            incident.severity.as_str().to_uppercase(),
            incident.environment,
            match kind {
                NotificationKind::Resolved => "resolved",
                NotificationKind::Escalated => "escalated",
                NotificationKind::Reminder => "reminder",
                NotificationKind::Acknowledged => "acknowledged",
                _ => "incident",
            },
            incident.title
        ),
        SUBJECT_LIMIT,
    );
    Rendered {
        text: format!("{headline}\n{}", body.replace('*', "")),
        plain: format!("{plain_headline}\n{}", plain_body.replace('*', "")),
        subject: one_line(&subject),
        blocks,
        links,
    }
}

/// A button for `action`, with the confirmation that names what will happen (Reject opens a
/// modal that names it and asks why instead).
fn action_button(incident: &Incident, action: ActionKind) -> Value {
    let mut button = json!({
        "type": "button",
        "text": {"type": "plain_text", "text": action.label()},
        "action_id": action.as_str(),
        "value": incident.key,
    });
    match action {
        ActionKind::Approve => button["style"] = json!("primary"),
        ActionKind::Reject => button["style"] = json!("danger"),
        _ => {}
    }
    if action != ActionKind::Reject {
        button["confirm"] = json!({
            "title": {"type": "plain_text", "text": clip(action.label(), 100)},
            "text": {"type": "plain_text", "text": clip(&actions::describe(incident, action), 300)},
            "confirm": {"type": "plain_text", "text": clip(action.label(), 30)},
            "deny": {"type": "plain_text", "text": "Cancel"},
        });
    }
    button
}

/// SNS subjects are one line of printable ASCII or Unicode: no line breaks.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Headline and body of the message, untrusted parts written with `m`.
fn compose(
    config: &Config,
    incident: &Incident,
    timeline: &[TimelineEntry],
    kind: NotificationKind,
    note: Option<&str>,
    mention: Option<&str>,
    m: &Markup,
) -> (String, String) {
    let headline = format!(
        "{} {} · {} · {}",
        severity_mark(incident.severity),
        incident.severity.as_str().to_uppercase(),
        m.esc(&incident.environment),
        m.esc(&incident.title)
    );
    let mut lines: Vec<String> = Vec::new();
    let prefix = match kind {
        NotificationKind::Opened => None,
        NotificationKind::Updated => Some("Update"),
        NotificationKind::Refined => Some("Diagnosis changed the incident type"),
        NotificationKind::Escalated => Some("⏫ Escalated"),
        NotificationKind::Reminder => None,
        NotificationKind::Acknowledged => Some("👀 Acknowledged"),
        NotificationKind::Resolved => Some("✅ Resolved"),
    };
    let prefix = if kind == NotificationKind::Updated && note == Some("diagnostics") {
        lines.push("*Diagnostics:*".to_string());
        None
    } else {
        prefix
    };
    let prefix = match (kind, note) {
        (NotificationKind::Escalated, Some(n)) if n.starts_with("to ") => {
            lines.push(format!("*⏫ Escalated* {}", m.esc(&name_level(config, n))));
            None
        }
        (NotificationKind::Reminder, _) => {
            // "⏰ Approval waiting 30 min: L1, open since 14:00 UTC".
            let what = if incident.incident_type == IncidentType::ApprovalPending {
                "Approval"
            } else {
                "Still"
            };
            let detail = note.unwrap_or("waiting");
            lines.push(format!("*⏰ {what}* {}", m.esc(detail)));
            None
        }
        _ => prefix,
    };
    if let Some(prefix) = prefix {
        let detail = note
            .map(str::to_string)
            .or_else(|| latest_signal(timeline))
            .unwrap_or_default();
        lines.push(
            format!("*{prefix}*: {}", m.esc(&detail))
                .trim_end_matches(": ")
                .to_string(),
        );
    }
    if let Some(mention) = mention {
        lines.push(mention.to_string());
    }
    let full = kind == NotificationKind::Opened;
    let diagnostics_update = kind == NotificationKind::Updated && note == Some("diagnostics");
    if full {
        lines.extend(facts_lines(incident, m));
    }
    if kind == NotificationKind::Refined {
        lines.push(format!("Runbook now: {}", incident.runbook_section));
    }
    if full || diagnostics_update || kind == NotificationKind::Refined {
        lines.extend(diagnosis_lines(incident, m));
    }
    if kind == NotificationKind::Resolved {
        if let Some(resolved) = incident.resolved_at {
            lines.push(format!(
                "Open for {} min.",
                (resolved - incident.opened_at).num_minutes().max(0)
            ));
        }
    }
    if full {
        let ack = incident
            .ack_by
            .map(|t| format!(" Ack by {}.", t.format("%H:%M UTC")))
            .unwrap_or_default();
        lines.push(format!(
            "Next ({}): {}{ack}",
            incident.runbook_section, incident.next_steps
        ));
    }
    lines.push(format!("Incident `{}`", m.esc(&incident.key)));
    (headline, clip(&lines.join("\n"), SECTION_LIMIT))
}

/// What failed: execution, stage and action, error, alarms.
fn facts_lines(incident: &Incident, m: &Markup) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(execution) = &incident.execution_id {
        let started = incident
            .execution_start
            .map(|t| format!(" started {}", t.format("%H:%M UTC")))
            .unwrap_or_default();
        lines.push(format!("Execution {}{started}", m.esc(short(execution))));
    }
    // An approval waits and a slow execution runs at a stage; only failures fail at one.
    let at = match incident.incident_type {
        IncidentType::ApprovalPending => "Waiting",
        IncidentType::DeploymentDurationExceeded => "At",
        _ => "Failed",
    };
    match (&incident.stage, &incident.action) {
        (Some(stage), Some(action)) => {
            lines.push(format!("{at}: {} › {}", m.esc(stage), m.esc(action)))
        }
        (Some(stage), None) => lines.push(format!("{at}: {}", m.esc(stage))),
        _ => {}
    }
    if let Some(error) = &incident.error {
        if let Some(summary) = &error.summary {
            let summary = m.esc(&clip(summary, 500)).into_owned();
            let code = error.code.as_deref().map(|c| m.esc(c).into_owned());
            lines.push(match (incident.incident_type, code) {
                // The pipeline's rollback message: level, versions, reason.
                (IncidentType::RollbackTriggered, Some(code)) => {
                    format!("Rollback ({code}): {summary}")
                }
                (IncidentType::RollbackTriggered, None) => format!("Rollback trigger: {summary}"),
                (_, Some(code)) => format!("Error: {code}: \"{summary}\""),
                (_, None) => format!("Error: \"{summary}\""),
            });
        }
    }
    if !incident.alarms.is_empty() {
        lines.push(format!("Alarms: {}", m.esc(&incident.alarms.join(", "))));
    }
    lines
}

/// Diagnostic results: the commit first, then each result; a failed one says so; the build log
/// excerpt as a code block.
fn diagnosis_lines(incident: &Incident, m: &Markup) -> Vec<String> {
    if incident.diagnosis.is_empty() {
        return if incident.diagnostics.is_empty() {
            Vec::new()
        } else {
            vec!["Diagnostics: running…".to_string()]
        };
    }
    let mut ordered: Vec<_> = incident.diagnosis.iter().collect();
    ordered.sort_by_key(|d| (d.name != "execution_details", d.name != "build_log"));
    let mut out = Vec::new();
    for d in ordered {
        let label = match d.name.as_str() {
            "execution_details" => "Commit",
            "pipeline_state" => "Pipeline",
            "build_log" => "Root cause",
            "coverage_report" => "Coverage",
            "security_report" => "Security scan",
            "rollback_log" => "Rollback log",
            "deployment_record" => "Deployment",
            "alarms" => "Alarms now",
            "health_check" => "Health",
            "related_environment" => "Staging check",
            "stage_durations" => "Durations",
            other => other,
        };
        // Keep the post short: results that found nothing, or that only repeat the lines above
        // (the root cause already names the coverage figure or the security findings).
        let root_cause = incident
            .diagnostic("build_log")
            .filter(|b| b.ok)
            .map_or("", |b| b.summary.as_str());
        let redundant = d.ok
            && (d.name == "pipeline_state"
                || (matches!(d.name.as_str(), "coverage_report" | "security_report")
                    && d.summary.starts_with("no "))
                || (d.name == "coverage_report" && root_cause.starts_with("coverage "))
                || (d.name == "security_report" && root_cause.starts_with(d.summary.as_str())));
        if redundant {
            continue;
        }
        let mark = if d.ok { "" } else { "⚠ " };
        out.push(format!(
            "{mark}{}: {}",
            m.esc(label),
            m.esc(&clip(&d.summary, 300))
        ));
        match d.name.as_str() {
            // The failure block, most telling lines first, as much as fits the post.
            "build_log" => out.extend(code_block(
                fitting(&d.lines, EXCERPT_LINES, EXCERPT_CHARS),
                m,
            )),
            // The rollback Lambda's latest lines (runbook Incident 2 step 1: `logs tail`).
            "rollback_log" => out.extend(code_block(
                d.lines.iter().skip(d.lines.len().saturating_sub(6)),
                m,
            )),
            // The commit and rollback reason of the record; per-stage times; the other
            // environment's stages.
            "deployment_record" | "stage_durations" | "related_environment" => out.extend(
                d.lines
                    .iter()
                    .filter(|l| !l.is_empty())
                    .take(3)
                    .map(|l| format!("  {}", m.esc(&clip(l, 300)))),
            ),
            _ => {}
        }
    }
    out
}

/// Lines of the build-log excerpt shown in a post (the stored excerpt keeps up to 40).
const EXCERPT_LINES: usize = 12;
/// Characters of excerpt in a post, so that the section stays under Slack's limit with the rest.
const EXCERPT_CHARS: usize = 1400;

/// The first lines that fit in `chars` characters (each clipped as the code block clips it).
fn fitting(lines: &[String], most: usize, chars: usize) -> impl Iterator<Item = &String> {
    let mut used = 0;
    lines.iter().take(most).take_while(move |l| {
        used += l.chars().count().min(200) + 1;
        used <= chars
    })
}

/// Log lines as one code block (none when there are no lines).
fn code_block<'a>(lines: impl Iterator<Item = &'a String>, m: &Markup) -> Option<String> {
    let lines: Vec<String> = lines
        .map(|l| m.esc(&clip(&l.replace("```", "'''"), 200)).into_owned())
        .collect();
    (!lines.is_empty()).then(|| format!("```{}```", lines.join("\n")))
}

/// "to L2: reason" with the level's name and contact: "to L2 (DevOps team lead,
/// devops@example.com): reason".
fn name_level(config: &Config, note: &str) -> String {
    let Some((id, reason)) = note
        .strip_prefix("to ")
        .and_then(|rest| rest.split_once(": "))
    else {
        return note.to_string();
    };
    let Some(level) = config.escalation.levels.iter().find(|l| l.id == id) else {
        return note.to_string();
    };
    let who = match &level.contact {
        Some(contact) => format!("{}, {contact}", level.name),
        None => level.name.clone(),
    };
    format!("to {id} ({who}): {reason}")
}

fn latest_signal(timeline: &[TimelineEntry]) -> Option<String> {
    timeline
        .iter()
        .rev()
        .find(|e| matches!(e.kind, TimelineKind::Signal | TimelineKind::Diagnostic))
        .map(|e| e.text.clone())
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{TimeZone, Utc};
    use pipeline_responder_core::config::load_str;
    use pipeline_responder_core::decision::ErrorInfo;
    use pipeline_responder_core::incident::{IncidentStatus, IncidentType};
    use pipeline_responder_core::record::DiagnosticResult;

    pub(super) fn config() -> Config {
        load_str(
            "[aws]\naccount_id = \"123456789012\"\n[sources.sqs]\nenabled = false\n[[environments]]\nname = \"production\"\n",
            &|_| None,
        )
        .unwrap()
    }

    pub(super) fn incident() -> Incident {
        let at = Utc.with_ymd_and_hms(2026, 1, 27, 10, 4, 12).unwrap();
        Incident {
            key: "pipeline_execution_failure/kiro-pipeline-production/3f0c9a52".into(),
            incident_type: IncidentType::PipelineExecutionFailure,
            severity: Severity::High,
            environment: "production".into(),
            pipeline: "kiro-pipeline-production".into(),
            execution_id: Some("3f0c9a52-8d1e".into()),
            execution_start: Some(Utc.with_ymd_and_hms(2026, 1, 27, 10, 2, 0).unwrap()),
            stage: Some("Build".into()),
            action: Some("BuildAndTest".into()),
            alarms: vec![],
            error: Some(ErrorInfo {
                code: Some("JobFailed".into()),
                summary: Some("Error while executing command: npm test. Reason: exit status 1".into()),
                external_url: Some("https://console.aws.amazon.com/codesuite/codebuild/x".into()),
            }),
            error_signature: None,
            build_log_stream: None,
            title: "Pipeline execution failed — kiro-pipeline-production".into(),
            runbook_section: "Incident 1: Pipeline Execution Failure".into(),
            next_steps: "Fix tests or code; redeploy.".into(),
            status: IncidentStatus::Open,
            opened_at: at,
            ack_by: Some(Utc.with_ymd_and_hms(2026, 1, 27, 10, 9, 12).unwrap()),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolution: None,
            highest_level_notified: Some(0),
            diagnostics: vec![],
            critical_findings: false,
            retryable: false,
            actions: vec![],
            opened_by_event: "evt".into(),
            event_time: at,
            diagnosis: vec![
                DiagnosticResult {
                    name: "build_log".into(),
                    ok: true,
                    summary: "root cause: test failure — 2 failing test(s) (first: WorkerQueue › retries twice)".into(),
                    lines: (0..500).map(|i| format!("FAIL line {i} {}", "x".repeat(400))).collect(),
                    at,
                },
                DiagnosticResult {
                    name: "execution_details".into(),
                    ok: true,
                    summary: "9e1d4b7 \"feat: retry worker jobs\" by dev@example.com".into(),
                    lines: vec![],
                    at,
                },
                DiagnosticResult {
                    name: "pipeline_state".into(),
                    ok: false,
                    summary: "could not be fetched: codepipeline GetPipelineState failed (ThrottlingException)".into(),
                    lines: vec![],
                    at,
                },
            ],
        }
    }

    #[test]
    fn first_post_says_what_failed_why_and_what_next_within_slack_limits() {
        let r = render(
            &config(),
            &incident(),
            &[],
            NotificationKind::Opened,
            None,
            Some("@oncall"),
        );
        for needle in [
            "HIGH",
            "production",
            "kiro-pipeline-production",
            "Execution 3f0c9a52 started 10:02 UTC",
            "Failed: Build › BuildAndTest",
            "JobFailed: \"Error while executing command: npm test",
            "Commit: 9e1d4b7 \"feat: retry worker jobs\"",
            "Root cause: root cause: test failure",
            "⚠ Pipeline: could not be fetched",
            "Next (Incident 1: Pipeline Execution Failure)",
            "Ack by 10:09 UTC",
            "@oncall",
        ] {
            assert!(r.text.contains(needle), "missing {needle:?} in\n{}", r.text);
        }
        let blocks = r.blocks.as_array().unwrap();
        assert!(blocks.len() <= 50);
        for block in blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(
                    text.chars().count() <= 3000,
                    "section of {} chars",
                    text.chars().count()
                );
            }
        }
        assert_eq!(blocks[2]["elements"][0]["action_id"], "acknowledge");
        assert!(r.subject.chars().count() <= 100);
    }

    #[test]
    fn resolved_post_has_no_ack_button_and_says_why() {
        let mut i = incident();
        i.status = IncidentStatus::Resolved;
        let r = render(
            &config(),
            &i,
            &[],
            NotificationKind::Resolved,
            Some("a later execution (e2) succeeded"),
            None,
        );
        assert!(
            r.text
                .contains("✅ Resolved: a later execution (e2) succeeded"),
            "{}",
            r.text
        );
        let buttons = r.blocks[2]["elements"].as_array().unwrap();
        assert!(buttons.iter().all(|b| b["action_id"] != "acknowledge"));
    }

    fn result(name: &str, summary: &str, lines: &[&str]) -> DiagnosticResult {
        DiagnosticResult {
            name: name.into(),
            ok: true,
            summary: summary.into(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
            at: Utc.with_ymd_and_hms(2026, 1, 27, 10, 4, 12).unwrap(),
        }
    }

    #[test]
    fn rollback_post_shows_the_message_the_lambda_log_and_the_record_details() {
        let mut i = incident();
        i.incident_type = IncidentType::RollbackTriggered;
        i.execution_id = None;
        i.stage = None;
        i.action = None;
        i.error = Some(ErrorInfo {
            code: Some("level full".into()),
            summary: Some("9e1d4b7 → 1a2b3c4: Alarm api-5xx in ALARM".into()),
            external_url: None,
        });
        let log: Vec<String> = (1..=10).map(|n| format!("lambda line {n}")).collect();
        let log: Vec<&str> = log.iter().map(String::as_str).collect();
        i.diagnosis = vec![
            result("rollback_log", "10 line(s)", &log),
            result(
                "deployment_record",
                "latest deployment production#1769508000000 is in_progress (version 9e1d4b7)",
                &["commit \"feat: retry worker jobs\" by dev@example.com"],
            ),
        ];
        let r = render(&config(), &i, &[], NotificationKind::Opened, None, None);
        for needle in [
            "Rollback (level full): 9e1d4b7 → 1a2b3c4: Alarm api-5xx in ALARM",
            "lambda line 5\nlambda line 6",
            "lambda line 10```",
            "  commit \"feat: retry worker jobs\" by dev@example.com",
        ] {
            assert!(r.text.contains(needle), "missing {needle:?} in\n{}", r.text);
        }
        assert!(
            !r.text.contains("lambda line 4\n"),
            "only the tail:\n{}",
            r.text
        );
        assert!(!r.text.contains("Error:"), "{}", r.text);
    }

    #[test]
    fn an_approval_waits_at_its_action_rather_than_failing_there() {
        let mut i = incident();
        i.incident_type = IncidentType::ApprovalPending;
        i.stage = Some("ProductionEnv".into());
        i.action = Some("ApproveProduction".into());
        i.error = None;
        let r = render(&config(), &i, &[], NotificationKind::Opened, None, None);
        assert!(
            r.text
                .contains("Waiting: ProductionEnv › ApproveProduction"),
            "{}",
            r.text
        );
        assert!(!r.text.contains("Failed:"), "{}", r.text);
    }

    #[test]
    fn an_escalation_names_the_level_and_its_contact() {
        let r = render(
            &config(),
            &incident(),
            &[],
            NotificationKind::Escalated,
            Some("to L2: security_scan_failure policy notifies L2 at once"),
            None,
        );
        assert!(
            r.text.contains(
                "⏫ Escalated to L2 (DevOps team lead, devops@example.com): security_scan_failure policy notifies L2 at once"
            ),
            "{}",
            r.text
        );
    }

    #[test]
    fn a_report_that_repeats_the_root_cause_is_left_out() {
        let mut i = incident();
        let findings = "security scan — cfn-guard rules failing: S3_BUCKET_ENCRYPTION_ENABLED";
        i.diagnosis = vec![
            result("build_log", findings, &[]),
            result("security_report", findings, &[]),
            result("coverage_report", "coverage 85.0 % (threshold 80 %)", &[]),
        ];
        let r = render(&config(), &i, &[], NotificationKind::Opened, None, None);
        assert_eq!(
            r.text.matches("cfn-guard rules failing").count(),
            1,
            "{}",
            r.text
        );
        assert!(r.text.contains("Coverage: coverage 85.0 %"), "{}", r.text);
    }
}

/// Posts from hostile text: whatever a build log, commit message or event field holds, the Slack
/// post has no live mention, no link to a foreign host and no secret; SNS keeps it plain.
#[cfg(test)]
mod hostile {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pipeline_responder_core::config::load_str;
    use pipeline_responder_core::redact::{Clean, Redactor};
    use rand::{Rng, SeedableRng};

    const FRAGMENTS: &[&str] = &[
        "<!channel>",
        "<!here|here>",
        "<!everyone>",
        "<@U0ADMIN>",
        "<!subteam^S0ONCALL|@oncall>",
        "<#C0GENERAL>",
        "<https://evil.example/phish|Acknowledge here>",
        "<mailto:a@evil.example|mail>",
        "https://evil.example/login",
        "http://console.aws.amazon.com.evil.example/",
        "www.evil.example",
        "@channel",
        "@here",
        "@Everyone",
        "&lt;!channel&gt;",
        "```",
        "*bold*",
        "ghp_0123456789abcdefABCDEF0123456789abcd",
        "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "api_key=sk_live_51HxxxxxxxxxxxxxxxxxxxxxxxXX",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
        "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
        "https://deploy:hunter2hunter2@git.example.com/repo.git",
        "configured-secret-value-1234",
        "\u{1b}[31mred\u{1b}[0m",
        "plain words",
        " ",
        "\n",
    ];
    const SECRETS: &[&str] = &[
        "ghp_0123456789abcdefABCDEF0123456789abcd",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "sk_live_51Hxxxxxxxxxxxxxxxxxxxxxxx",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
        "XXXXXXXXXXXXXXXXXXXXXXXX",
        "c2lnbmF0dXJlc2lnbmF0dXJl",
        "hunter2hunter2",
        "configured-secret-value-1234",
    ];

    fn hostile(rng: &mut rand::rngs::StdRng) -> String {
        let n = rng.random_range(1..6);
        (0..n)
            .map(|_| FRAGMENTS[rng.random_range(0..FRAGMENTS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Mentions, links and secrets left live in Slack mrkdwn.
    fn live(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for needle in ["<!", "<@", "<#", "<http", "<mailto", "://evil", "www.evil"] {
            if text.contains(needle) {
                found.push(needle.to_string());
            }
        }
        let lower = text.to_lowercase();
        for word in ["@channel", "@here", "@everyone"] {
            if lower.contains(word) {
                found.push(word.to_string());
            }
        }
        for secret in SECRETS {
            if text.contains(secret) {
                found.push(format!("secret {secret}"));
            }
        }
        if text.contains('\u{1b}') {
            found.push("escape".into());
        }
        found
    }

    #[test]
    fn a_thousand_hostile_incidents_post_nothing_live() {
        let config = load_str(
            "[aws]\naccount_id = \"123456789012\"\n[sources.sqs]\nenabled = false\n[[environments]]\nname = \"production\"\n",
            &|_| None,
        )
        .unwrap();
        let redactor = Redactor::new(["configured-secret-value-1234"]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        let mut live_found = 0;
        let mut details_buttons = 0;
        for round in 0..1000 {
            let mut incident = super::tests::incident();
            incident.title = format!("Pipeline failed — {}", hostile(&mut rng));
            incident.stage = Some(hostile(&mut rng));
            incident.action = Some(hostile(&mut rng));
            incident.alarms = vec![hostile(&mut rng)];
            let error = incident.error.as_mut().unwrap();
            error.code = Some(hostile(&mut rng));
            error.summary = Some(hostile(&mut rng));
            error.external_url = Some(
                [
                    "https://evil.example/x",
                    "https://console.aws.amazon.com/x",
                    "javascript:alert(1)",
                ][round % 3]
                    .into(),
            );
            for d in &mut incident.diagnosis {
                d.summary = hostile(&mut rng);
                d.lines = (0..4).map(|_| hostile(&mut rng)).collect();
            }
            incident.clean(&redactor);
            let mut timeline = vec![TimelineEntry {
                at: incident.opened_at,
                kind: TimelineKind::Signal,
                text: hostile(&mut rng),
            }];
            timeline.clean(&redactor);
            for kind in [NotificationKind::Opened, NotificationKind::Updated] {
                let note = hostile(&mut rng);
                let mut note = note;
                note.clean(&redactor);
                let r = render(&config, &incident, &timeline, kind, Some(&note), None);
                let blocks = r.blocks.to_string();
                for text in [&r.text, &blocks] {
                    let found = live(text);
                    if !found.is_empty() {
                        live_found += 1;
                        eprintln!("round {round}: {found:?} in\n{text}");
                    }
                }
                for secret in SECRETS {
                    assert!(!r.plain.contains(secret), "secret in SNS body: {}", r.plain);
                }
                let urls: Vec<&str> = r.blocks[2]["elements"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|b| b["url"].as_str())
                    .collect();
                assert!(
                    urls.iter()
                        .all(|u| u.starts_with("https://console.aws.amazon.com/")
                            || u.starts_with(&format!(
                                "https://{}.console.aws.amazon.com/",
                                config.aws.region
                            ))),
                    "{urls:?}"
                );
                details_buttons += usize::from(urls.len() > 1);
            }
        }
        assert_eq!(live_found, 0, "live mentions, links or secrets in posts");
        // The console link stays a button (a third of the rounds, two posts each).
        assert_eq!(details_buttons, 666);
    }

    #[test]
    fn the_sns_body_keeps_the_text_as_written() {
        let config = super::tests::config();
        let mut incident = super::tests::incident();
        incident.error.as_mut().unwrap().summary = Some("a < b && c > d @here".into());
        let r = render(
            &config,
            &incident,
            &[],
            NotificationKind::Opened,
            None,
            None,
        );
        assert!(r.plain.contains("a < b && c > d @here"), "{}", r.plain);
        assert!(
            r.text
                .contains("a &lt; b &amp;&amp; c &gt; d @\u{200B}here"),
            "{}",
            r.text
        );
    }
}
