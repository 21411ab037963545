//! Built-in defaults: the runbook as written (docs/specification.md section 2). A config file only has to
//! say what differs.

use super::{Diagnostic, Level, LogSearch, Policy, Step, StepCondition, Until};
use crate::incident::{IncidentType, Severity};
use std::collections::BTreeMap;

pub const RESOURCE_PREFIX: &str = "kiro-pipeline-{env}";
pub const PIPELINE: &str = "{prefix}";
pub const ALARM_PREFIX: &str = "{prefix}";
pub const BUILD_PROJECT: &str = "{prefix}-build";
pub const BUILD_LOG_GROUP: &str = "/aws/codebuild/{prefix}-build";
pub const ROLLBACK_LOG_GROUP: &str = "/aws/lambda/{prefix}-rollback";
pub const DEPLOYMENTS_TABLE: &str = "{prefix}-deployments";
pub const SNS_TOPIC_ARN: &str = "arn:aws:sns:{region}:{account}:{prefix}-deployments";
pub const SLACK_DEFAULT_CHANNEL: &str = "#deployments";
pub const SLACK_API_BASE_URL: &str = "https://slack.com/api";
/// PagerDuty Events API v2.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// Opsgenie's API (EU accounts use `https://api.eu.opsgenie.com`).
pub const OPSGENIE_API_URL: &str = "https://api.opsgenie.com";
pub const REGION: &str = "us-east-1";
pub const LISTEN: &str = "0.0.0.0:9090";
pub const STORE_PATH: &str = "/var/lib/pipeline-responder/state.db";
pub const SHUTDOWN_GRACE_SECS: u64 = 25;
pub const DIAGNOSTIC_TIMEOUT_SECS: u64 = 10;

/// `[digest]`: weekly, Monday 09:00 UTC, over the last 7 days (1 for a daily digest).
pub const DIGEST_DAY: chrono::Weekday = chrono::Weekday::Mon;
pub const DIGEST_AT: &str = "09:00";
pub const DIGEST_WINDOW_DAYS_WEEK: u32 = 7;
pub const DIGEST_WINDOW_DAYS_DAY: u32 = 1;
pub const DIGEST_FLAP_SECS: u64 = 600;
pub const DIGEST_STALE_EXECUTION_SECS: u64 = 7200;

/// [`DIGEST_AT`] as a time of day.
pub fn digest_at() -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default()
}

/// The runbook's three escalation levels.
pub fn levels() -> Vec<Level> {
    [
        ("L1", "On-call engineer", None),
        ("L2", "DevOps team lead", Some("devops@example.com")),
        (
            "L3",
            "Engineering manager + AWS Support",
            Some("manager@example.com"),
        ),
    ]
    .into_iter()
    .map(|(id, name, contact)| Level {
        id: id.into(),
        name: name.into(),
        slack_mention: None,
        sns_topic_arn: None,
        contact: contact.map(Into::into),
        targets: Default::default(),
    })
    .collect()
}

pub(crate) fn step(level: usize, after_secs: u64) -> Step {
    Step {
        level,
        after_secs,
        until: Until::Acknowledged,
        repeat_every_secs: None,
        max_repeats: 0,
        when: None,
    }
}

fn log_search(
    window_secs: u64,
    patterns: &[&str],
    context_lines: u64,
    max_lines: u64,
) -> LogSearch {
    LogSearch {
        window_secs,
        patterns: patterns.iter().map(|p| (*p).to_string()).collect(),
        context_lines,
        max_lines,
        timeout_secs: DIAGNOSTIC_TIMEOUT_SECS,
    }
}

/// The default parameters of a diagnostic, used when a policy names it without parameters.
pub fn diagnostic(name: &str) -> Option<Diagnostic> {
    let t = DIAGNOSTIC_TIMEOUT_SECS;
    Some(match name {
        "pipeline_state" => Diagnostic::PipelineState { timeout_secs: t },
        "execution_details" => Diagnostic::ExecutionDetails { timeout_secs: t },
        "build_log" => Diagnostic::BuildLog(log_search(1800, &["FAILED", "ERROR"], 3, 40)),
        "coverage_report" => Diagnostic::CoverageReport(log_search(1800, &["Coverage"], 20, 40)),
        "security_report" => Diagnostic::SecurityReport(log_search(1800, &["security"], 50, 60)),
        "rollback_log" => Diagnostic::RollbackLog(log_search(600, &[], 0, 40)),
        "deployment_record" => Diagnostic::DeploymentRecord { timeout_secs: t },
        "alarms" => Diagnostic::Alarms { timeout_secs: t },
        "health_check" => Diagnostic::HealthCheck {
            timeout_secs: 5,
            expect_status_below: 400,
        },
        "stage_durations" => Diagnostic::StageDurations { timeout_secs: t },
        "related_environment" => Diagnostic::RelatedEnvironment {
            environment: "staging".into(),
            timeout_secs: t,
        },
        _ => return None,
    })
}

fn diagnostics(names: &[&str]) -> Vec<Diagnostic> {
    names.iter().filter_map(|n| diagnostic(n)).collect()
}

/// The built-in policy of each incident type, from the runbook (levels: 0 = L1, 1 = L2, 2 = L3).
pub fn policy(incident_type: IncidentType) -> Policy {
    let hour = 3600;
    let high_in_production = BTreeMap::from([("production".to_string(), Severity::High)]);
    let failure_diagnostics = [
        "pipeline_state",
        "execution_details",
        "build_log",
        "coverage_report",
        "security_report",
    ];
    match incident_type {
        // Incident 1: L1 at once; L2 if not resolved in 60 min.
        IncidentType::PipelineExecutionFailure => Policy {
            enabled: true,
            severity: Severity::Medium,
            severity_by_environment: high_in_production,
            ack_target_secs: Some(300),
            steps: vec![step(0, 0), step(1, hour)],
            diagnostics: diagnostics(&failure_diagnostics),
        },
        // Incident 2: L1 at once; if not completed in 15 min, L2 and L3 at once.
        IncidentType::RollbackTriggered => Policy {
            enabled: true,
            severity: Severity::Medium,
            severity_by_environment: high_in_production,
            ack_target_secs: Some(120),
            steps: vec![
                step(0, 0),
                Step {
                    until: Until::Resolved,
                    ..step(1, 900)
                },
                Step {
                    until: Until::Resolved,
                    ..step(2, 900)
                },
            ],
            diagnostics: diagnostics(&[
                "rollback_log",
                "deployment_record",
                "alarms",
                "health_check",
            ]),
        },
        // Incident 3: L1; L2 when the same pipeline is slow 3 times in 7 days (a rule, not a step).
        IncidentType::DeploymentDurationExceeded => Policy {
            enabled: true,
            severity: Severity::Medium,
            severity_by_environment: BTreeMap::new(),
            ack_target_secs: Some(300),
            steps: vec![step(0, 0)],
            diagnostics: diagnostics(&["pipeline_state", "stage_durations", "execution_details"]),
        },
        // Incident 4: L1; L2 if not resolved in 60 min.
        IncidentType::TestCoverageBelowThreshold => Policy {
            enabled: true,
            severity: Severity::Medium,
            severity_by_environment: BTreeMap::new(),
            ack_target_secs: Some(300),
            steps: vec![step(0, 0), step(1, hour)],
            diagnostics: diagnostics(&failure_diagnostics),
        },
        // Incident 5: L1 and L2 at once; L3 if a CRITICAL finding stays unresolved 60 min.
        IncidentType::SecurityScanFailure => Policy {
            enabled: true,
            severity: Severity::High,
            severity_by_environment: BTreeMap::new(),
            ack_target_secs: Some(300),
            steps: vec![
                step(0, 0),
                step(1, 0),
                Step {
                    until: Until::Resolved,
                    when: Some(StepCondition::CriticalFindings),
                    ..step(2, hour)
                },
            ],
            diagnostics: diagnostics(&failure_diagnostics),
        },
        // Task 2: reminder after 30 min, again every 60 min.
        IncidentType::ApprovalPending => Policy {
            enabled: true,
            severity: Severity::Info,
            severity_by_environment: BTreeMap::new(),
            ack_target_secs: None,
            steps: vec![Step {
                repeat_every_secs: Some(hour),
                max_repeats: 8,
                ..step(0, 1800)
            }],
            diagnostics: diagnostics(&["related_environment", "alarms", "execution_details"]),
        },
    }
}

/// The alarm suffixes the runbook names and the types they open.
pub fn alarm_rules() -> Vec<(&'static str, IncidentType)> {
    vec![
        ("-pipeline-failures", IncidentType::PipelineExecutionFailure),
        (
            "-deployment-duration",
            IncidentType::DeploymentDurationExceeded,
        ),
        ("-test-coverage", IncidentType::TestCoverageBelowThreshold),
    ]
}

/// Error codes/summaries that point at AWS rather than the code being deployed.
pub fn outage_error_patterns() -> Vec<String> {
    [
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "Throttling",
        "RequestLimitExceeded",
        "Rate exceeded",
        "Service Unavailable",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}
