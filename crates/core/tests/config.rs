//! Configuration loading: defaults, templates, secrets, all errors at once.
//!
//! Everything goes through `config::load_str` with a closure for `${VAR}` lookups, so these tests
//! never read or change the process environment.
#![allow(clippy::unwrap_used)]

use chrono::{NaiveTime, Weekday};
use pipeline_responder_core::config::{
    self, defaults, Config, ConfigError, Diagnostic, DigestConfig, DigestEvery, StoreConfig, Until,
};
use pipeline_responder_core::incident::{IncidentType, Severity};
use std::collections::BTreeMap;

use crate::support::{LOCAL, SHIPPED};

// Distinctive values, so that a leak is found by a plain substring search.
const ACCOUNT: &str = "210987654321";
const API_TOKEN: &str = "api-token-SECRET-7f3a91-0123456789abcdef";
const QUEUE_URL: &str =
    "https://sqs.us-east-1.amazonaws.com/210987654321/pipeline-responder-events";
const WEBHOOK: &str = "https://hooks.slack.com/services/T0000/B0000/webhook-SECRET-c4e2d8";
const BOT_TOKEN: &str = "xoxb-bot-SECRET-58b0e6";
const SIGNING_SECRET: &str = "signing-SECRET-0d19aa";

/// An environment lookup over a fixed list of variables.
fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// The variables the shipped `pipeline-responder.toml` needs.
const SHIPPED_VARS: [(&str, &str); 4] = [
    ("AWS_ACCOUNT_ID", ACCOUNT),
    ("PIPELINE_RESPONDER_API_TOKEN", API_TOKEN),
    ("PIPELINE_RESPONDER_QUEUE_URL", QUEUE_URL),
    ("SLACK_WEBHOOK_URL", WEBHOOK),
];

fn shipped_env() -> impl Fn(&str) -> Option<String> {
    env_of(&SHIPPED_VARS)
}

fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Config {
    match config::load_str(text, env) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid configuration, got:\n{errors}"),
    }
}

fn load_errors(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigError> {
    match config::load_str(text, env) {
        Ok(_) => panic!("expected configuration errors, this loaded:\n{text}"),
        Err(errors) => errors.0,
    }
}

fn paths(errors: &[ConfigError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

/// The one error of `text` (no variables set), whose path must be `path`.
fn single_error(text: &str, path: &str) -> ConfigError {
    let errors = load_errors(text, &no_env);
    assert_eq!(
        paths(&errors),
        [path],
        "expected exactly one error at {path}, got: {errors:#?}"
    );
    errors.into_iter().next().unwrap()
}

/// What every valid test config needs besides its environments: the queue (SQS is on by
/// default) and the account used by the default SNS topic ARN (SNS is on by default).
const BASE: &str = r##"
[aws]
account_id = "123456789012"

[sources.sqs]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/events"
"##;

fn with_base(rest: &str) -> String {
    format!("{BASE}\n{rest}")
}

/// `serde_json::to_value`, to compare sections field by field.
fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

// ----- the shipped configurations -------------------------------------------------------------

#[test]
fn shipped_config_resolves_every_runbook_name() {
    let config = load(SHIPPED, &shipped_env());

    let names: Vec<&str> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["test", "staging", "production"]);
    for env in &config.environments {
        let n = &env.name;
        assert_eq!(env.pipeline, format!("kiro-pipeline-{n}"));
        assert_eq!(env.alarm_prefix, format!("kiro-pipeline-{n}"));
        assert_eq!(env.build_project, format!("kiro-pipeline-{n}-build"));
        assert_eq!(
            env.build_log_group,
            format!("/aws/codebuild/kiro-pipeline-{n}-build")
        );
        assert_eq!(
            env.rollback_log_group,
            format!("/aws/lambda/kiro-pipeline-{n}-rollback")
        );
        assert_eq!(
            env.deployments_table,
            format!("kiro-pipeline-{n}-deployments")
        );
        assert_eq!(
            env.sns_topic_arn.as_deref(),
            Some(format!("arn:aws:sns:us-east-1:{ACCOUNT}:kiro-pipeline-{n}-deployments").as_str())
        );
        assert_eq!(env.slack_channel, format!("#kiro-pipeline-{n}"));
    }

    // Spelled out once, as the runbook writes them.
    let production = config.environment("production").unwrap();
    assert_eq!(production.pipeline, "kiro-pipeline-production");
    assert_eq!(production.alarm_prefix, "kiro-pipeline-production");
    assert_eq!(production.build_project, "kiro-pipeline-production-build");
    assert_eq!(
        production.build_log_group,
        "/aws/codebuild/kiro-pipeline-production-build"
    );
    assert_eq!(
        production.rollback_log_group,
        "/aws/lambda/kiro-pipeline-production-rollback"
    );
    assert_eq!(
        production.deployments_table,
        "kiro-pipeline-production-deployments"
    );
    assert_eq!(
        production.sns_topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:210987654321:kiro-pipeline-production-deployments")
    );
    assert_eq!(
        production.health_url.as_deref(),
        Some("https://your-app-endpoint/health")
    );
    assert_eq!(config.environment("staging").unwrap().health_url, None);

    // The lookups the rules use find the environment by each runbook name.
    assert_eq!(
        config
            .environment_for_pipeline("kiro-pipeline-staging")
            .map(|e| e.name.as_str()),
        Some("staging")
    );
    assert_eq!(
        config
            .environment_for_alarm("kiro-pipeline-production-pipeline-failures")
            .map(|e| e.name.as_str()),
        Some("production")
    );
    assert_eq!(
        config
            .environment_for_build_project("kiro-pipeline-test-build")
            .map(|e| e.name.as_str()),
        Some("test")
    );
}

#[test]
fn shipped_config_takes_values_from_the_environment() {
    let config = load(SHIPPED, &shipped_env());

    assert_eq!(config.aws.region, "us-east-1", "${{AWS_REGION:-us-east-1}}");
    assert_eq!(config.aws.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(config.sources.sqs.as_ref().unwrap().queue_url, QUEUE_URL);
    assert_eq!(config.http.api_token.as_ref().unwrap().expose(), API_TOKEN);
    let slack = config.notifiers.slack.as_ref().unwrap();
    assert_eq!(slack.webhook_url.as_ref().unwrap().expose(), WEBHOOK);
    assert_eq!(
        slack.webhook_url.as_ref().unwrap().origin(),
        "${SLACK_WEBHOOK_URL}"
    );
    // `${SLACK_SIGNING_SECRET:-}` with the variable unset means "not configured".
    assert!(slack.signing_secret.is_none());
    assert!(slack.bot_token.is_none());
    assert!(config.notifiers.sns_enabled);
    assert!(!config.daemon.dry_run);
    assert!(
        matches!(config.store, StoreConfig::Embedded { ref path } if path == "/var/lib/pipeline-responder/state.db")
    );
    assert_eq!(config.http.listen.to_string(), "0.0.0.0:9090");

    // AWS_REGION, when set, wins over the written default and reaches the topic ARNs.
    let mut vars = SHIPPED_VARS.to_vec();
    vars.push(("AWS_REGION", "eu-west-1"));
    vars.push(("SLACK_SIGNING_SECRET", SIGNING_SECRET));
    let config = load(SHIPPED, &env_of(&vars));
    assert_eq!(config.aws.region, "eu-west-1");
    assert_eq!(
        config.environment("test").unwrap().sns_topic_arn.as_deref(),
        Some("arn:aws:sns:eu-west-1:210987654321:kiro-pipeline-test-deployments")
    );
    let slack = config.notifiers.slack.as_ref().unwrap();
    assert_eq!(
        slack.signing_secret.as_ref().unwrap().expose(),
        SIGNING_SECRET
    );
}

#[test]
fn shipped_config_without_its_variables_names_each_one() {
    let errors = load_errors(SHIPPED, &no_env);
    assert_eq!(
        paths(&errors),
        [
            "aws.account_id",
            "http.api_token",
            "sources.sqs.queue_url",
            "notifiers.slack.webhook_url",
        ],
        "{errors:#?}"
    );
    for (error, (var, _)) in errors.iter().zip(SHIPPED_VARS) {
        assert!(
            error
                .message
                .starts_with(&format!("environment variable {var} is not set;")),
            "{error}"
        );
    }
}

#[test]
fn local_config_loads_without_any_variable() {
    let config = load(LOCAL, &no_env);

    assert_eq!(config.aws.account_id.as_deref(), Some("123456789012"));
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(
        config.http.api_token.as_ref().unwrap().expose(),
        "local-demo-token-not-a-secret-0123456789"
    );
    assert!(matches!(config.store, StoreConfig::Embedded { ref path } if path == ".demo/state.db"));
    let sqs = config.sources.sqs.as_ref().unwrap();
    assert_eq!(
        sqs.queue_url,
        "http://127.0.0.1:5000/123456789012/pipeline-responder-events"
    );
    assert_eq!(sqs.wait_time_secs, 1);
    let slack = config.notifiers.slack.as_ref().unwrap();
    assert_eq!(
        slack.webhook_url.as_ref().unwrap().expose(),
        "http://127.0.0.1:9111/webhook"
    );
    assert_eq!(slack.api_base_url, defaults::SLACK_API_BASE_URL);

    let production = config.environment("production").unwrap();
    assert_eq!(production.pipeline, "kiro-pipeline-production");
    assert_eq!(
        production.build_log_group,
        "/aws/codebuild/kiro-pipeline-production-build"
    );
    assert_eq!(
        production.sns_topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:kiro-pipeline-production-deployments")
    );
    assert_eq!(production.slack_channel, "#deployments");
    assert_eq!(
        production.health_url.as_deref(),
        Some("http://127.0.0.1:9112/health")
    );

    // The demo script points it elsewhere through the same variables.
    let config = load(
        LOCAL,
        &env_of(&[
            ("PIPELINE_RESPONDER_LISTEN", "127.0.0.1:19090"),
            ("PIPELINE_RESPONDER_STATE", "/tmp/x/state.db"),
        ]),
    );
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:19090");
    assert!(
        matches!(config.store, StoreConfig::Embedded { ref path } if path == "/tmp/x/state.db")
    );
}

/// The shipped file spells the runbook out; it must say exactly what the built-in defaults say,
/// so that a config that writes nothing behaves like the runbook too.
#[test]
fn shipped_policies_are_the_builtin_defaults() {
    let config = load(SHIPPED, &shipped_env());
    for t in IncidentType::ALL {
        let shipped = config.policy(t);
        let builtin = defaults::policy(t);
        assert_eq!(shipped.enabled, builtin.enabled, "{t}: enabled");
        assert_eq!(shipped.severity, builtin.severity, "{t}: severity");
        assert_eq!(
            shipped.severity_by_environment, builtin.severity_by_environment,
            "{t}: severity_by_environment"
        );
        assert_eq!(
            shipped.ack_target_secs, builtin.ack_target_secs,
            "{t}: ack_target_secs"
        );
        assert_eq!(shipped.steps, builtin.steps, "{t}: escalation steps");
        assert_eq!(shipped.diagnostics, builtin.diagnostics, "{t}: diagnostics");
    }
}

#[test]
fn builtin_policies_follow_the_runbook() {
    use IncidentType::*;
    use Until::*;
    let config = load(SHIPPED, &shipped_env());
    let level = |id: &str| config.escalation.level_index(id).unwrap();
    let (l1, l2, l3) = (level("L1"), level("L2"), level("L3"));

    // Severity: high in production for incidents 1 and 2, high everywhere for 5, info for 6.
    let severity = |t, env| config.policy(t).severity_for(env);
    assert_eq!(
        severity(PipelineExecutionFailure, "production"),
        Severity::High
    );
    assert_eq!(
        severity(PipelineExecutionFailure, "staging"),
        Severity::Medium
    );
    assert_eq!(severity(RollbackTriggered, "production"), Severity::High);
    assert_eq!(severity(RollbackTriggered, "test"), Severity::Medium);
    assert_eq!(
        severity(DeploymentDurationExceeded, "production"),
        Severity::Medium
    );
    assert_eq!(
        severity(TestCoverageBelowThreshold, "production"),
        Severity::Medium
    );
    assert_eq!(severity(SecurityScanFailure, "test"), Severity::High);
    assert_eq!(severity(ApprovalPending, "production"), Severity::Info);

    // Ack targets: 5 min, rollback 2 min, none for approvals.
    let ack = |t| config.policy(t).ack_target_secs;
    assert_eq!(ack(PipelineExecutionFailure), Some(300));
    assert_eq!(ack(RollbackTriggered), Some(120));
    assert_eq!(ack(DeploymentDurationExceeded), Some(300));
    assert_eq!(ack(TestCoverageBelowThreshold), Some(300));
    assert_eq!(ack(SecurityScanFailure), Some(300));
    assert_eq!(ack(ApprovalPending), None);

    let schedule = |t| -> Vec<(usize, u64, Until)> {
        config
            .policy(t)
            .steps
            .iter()
            .map(|s| (s.level, s.after_secs, s.until))
            .collect()
    };
    assert_eq!(
        schedule(PipelineExecutionFailure),
        [(l1, 0, Acknowledged), (l2, 3600, Acknowledged)]
    );
    assert_eq!(
        schedule(RollbackTriggered),
        [
            (l1, 0, Acknowledged),
            (l2, 900, Resolved),
            (l3, 900, Resolved)
        ]
    );
    assert_eq!(
        schedule(DeploymentDurationExceeded),
        [(l1, 0, Acknowledged)]
    );
    assert_eq!(
        schedule(TestCoverageBelowThreshold),
        [(l1, 0, Acknowledged), (l2, 3600, Acknowledged)]
    );
    assert_eq!(
        schedule(SecurityScanFailure),
        [
            (l1, 0, Acknowledged),
            (l2, 0, Acknowledged),
            (l3, 3600, Resolved)
        ]
    );
    let approval = &config.policy(ApprovalPending).steps;
    assert_eq!(
        (approval[0].after_secs, approval[0].repeat_every_secs),
        (1800, Some(3600))
    );

    // Cross-incident rules.
    assert_eq!(config.escalation.multi_environment.level, l2);
    assert_eq!(config.escalation.multi_environment.environments, 2);
    assert_eq!(config.escalation.multi_environment.window_secs, 1800);
    assert_eq!(config.escalation.outage.level, l3);
    assert_eq!(config.escalation.rollback_failed_levels, [l2, l3]);
    assert_eq!(config.thresholds.slow_recurrence_level, l2);
    assert_eq!(config.thresholds.slow_recurrence_count, 3);
    assert_eq!(config.thresholds.deployment_duration_secs, 3600);
    assert_eq!(config.thresholds.coverage_percent, 80.0);
}

/// Everything else the shipped file writes also equals the built-in value, except the few
/// lines that deliberately differ (listed here).
#[test]
fn shipped_config_otherwise_equals_a_minimal_one() {
    let shipped = load(SHIPPED, &shipped_env());
    let minimal = load(
        r##"
[aws]
account_id = "${AWS_ACCOUNT_ID}"
[http]
api_token = "${PIPELINE_RESPONDER_API_TOKEN}"
[sources.sqs]
queue_url = "${PIPELINE_RESPONDER_QUEUE_URL}"
[notifiers.slack]
webhook_url = "${SLACK_WEBHOOK_URL}"
[[environments]]
name = "test"
[[environments]]
name = "staging"
[[environments]]
name = "production"
"##,
        &shipped_env(),
    );
    assert_eq!(json(&shipped.daemon), json(&minimal.daemon));
    assert_eq!(json(&shipped.aws), json(&minimal.aws));
    assert_eq!(json(&shipped.http), json(&minimal.http));
    assert_eq!(json(&shipped.store), json(&minimal.store));
    assert_eq!(json(&shipped.sources), json(&minimal.sources));
    assert_eq!(json(&shipped.notifiers), json(&minimal.notifiers));
    assert_eq!(json(&shipped.storm), json(&minimal.storm));
    assert_eq!(json(&shipped.digest), json(&minimal.digest));
    assert_eq!(json(&shipped.remediation), json(&minimal.remediation));
    assert_eq!(json(&shipped.thresholds), json(&minimal.thresholds));
    assert_eq!(json(&shipped.detection), json(&minimal.detection));
    assert_eq!(json(&shipped.policies), json(&minimal.policies));

    // Deliberate differences: L1 is mentioned with <!here>, each environment posts to its own
    // channel, and production has a health URL.
    let mut escalation = shipped.escalation.clone();
    assert_eq!(
        escalation.levels[0].slack_mention.as_deref(),
        Some("<!here>")
    );
    escalation.levels[0].slack_mention = None;
    assert_eq!(json(&escalation), json(&minimal.escalation));
    for (s, m) in shipped.environments.iter().zip(&minimal.environments) {
        assert_eq!(s.slack_channel, format!("#kiro-pipeline-{}", s.name));
        assert_eq!(m.slack_channel, "#deployments");
        let mut s = s.clone();
        s.slack_channel = m.slack_channel.clone();
        assert_eq!(s.targets["slack"], format!("#kiro-pipeline-{}", s.name));
        s.targets.insert("slack".into(), m.slack_channel.clone());
        if s.name == "production" {
            assert!(s.health_url.is_some());
            s.health_url = None;
        }
        assert_eq!(json(&s), json(m));
    }
}

// ----- a minimal configuration ------------------------------------------------------------

#[test]
fn one_environment_alone_needs_a_queue_and_an_account() {
    let errors = load_errors("[[environments]]\nname = \"x\"\n", &no_env);
    assert_eq!(
        paths(&errors),
        ["sources.sqs.queue_url", "aws.account_id"],
        "{errors:#?}"
    );
    assert!(
        errors[0].message.contains("sources.sqs.enabled = false"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].message.contains("notifiers.sns.enabled = false"),
        "{}",
        errors[1]
    );
}

#[test]
fn minimal_config_gets_every_runbook_default() {
    // What is strictly required: one named environment, a queue URL (SQS is on by default) and
    // the account id of the default SNS topic ARN (SNS is on by default).
    let config = load(
        r##"
[aws]
account_id = "123456789012"
[sources.sqs]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/events"
[[environments]]
name = "x"
"##,
        &no_env,
    );
    assert_eq!(config.environments.len(), 1);
    let x = &config.environments[0];
    assert_eq!(x.pipeline, "kiro-pipeline-x");
    assert_eq!(x.alarm_prefix, "kiro-pipeline-x");
    assert_eq!(x.build_project, "kiro-pipeline-x-build");
    assert_eq!(x.build_log_group, "/aws/codebuild/kiro-pipeline-x-build");
    assert_eq!(x.rollback_log_group, "/aws/lambda/kiro-pipeline-x-rollback");
    assert_eq!(x.deployments_table, "kiro-pipeline-x-deployments");
    assert_eq!(
        x.sns_topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:kiro-pipeline-x-deployments")
    );
    assert_eq!(x.slack_channel, "#deployments");
    assert_eq!(x.health_url, None);

    for t in IncidentType::ALL {
        let (p, d) = (config.policy(t), defaults::policy(t));
        assert_eq!(p.enabled, d.enabled, "{t}");
        assert_eq!(p.severity, d.severity, "{t}");
        assert_eq!(p.severity_by_environment, d.severity_by_environment, "{t}");
        assert_eq!(p.ack_target_secs, d.ack_target_secs, "{t}");
        assert_eq!(p.steps, d.steps, "{t}");
        // Without a "staging" environment the approval's "verify staging" check is dropped.
        let expected: Vec<_> = d
            .diagnostics
            .iter()
            .filter(|d| d.name() != "related_environment")
            .cloned()
            .collect();
        assert_eq!(p.diagnostics, expected, "{t}");
    }
    assert_eq!(json(&config.escalation.levels), json(&defaults::levels()));
    assert_eq!(config.escalation.rollback_failed_levels, [1, 2]);
    assert_eq!(config.escalation.multi_environment.level, 1);
    assert_eq!(config.escalation.outage.level, 2);
    assert_eq!(
        config.escalation.outage.error_patterns,
        defaults::outage_error_patterns()
    );

    assert_eq!(config.aws.region, defaults::REGION);
    assert_eq!(config.http.listen.to_string(), defaults::LISTEN);
    assert!(config.http.api_token.is_none());
    assert!(
        matches!(config.store, StoreConfig::Embedded { ref path } if path == defaults::STORE_PATH)
    );
    assert_eq!(
        config.daemon.shutdown_grace_secs,
        defaults::SHUTDOWN_GRACE_SECS
    );
    assert!(!config.daemon.dry_run);
    let sqs = config.sources.sqs.as_ref().unwrap();
    assert_eq!(
        (
            sqs.wait_time_secs,
            sqs.max_messages,
            sqs.visibility_timeout_secs
        ),
        (20, 10, 60)
    );
    let watcher = config.sources.watcher.as_ref().unwrap();
    assert_eq!((watcher.interval_secs, watcher.jitter_secs), (300, 30));
    assert_eq!(watcher.max_requests_per_second, 5.0);
    assert!(config.notifiers.slack.is_none(), "no credentials, no Slack");
    assert!(config.notifiers.sns_enabled);
    assert_eq!(
        (config.storm.max_incidents, config.storm.window_secs),
        (5, 60)
    );
    assert!(!config.remediation.enabled);
    assert!(!config.remediation.restart_stuck_executions);
    assert_eq!(config.remediation.max_per_pipeline_per_day, 1);
    assert_eq!(config.thresholds.deployment_duration_secs, 3600);
    assert_eq!(config.thresholds.stuck_after_secs, 900);
    assert_eq!(config.thresholds.coverage_percent, 80.0);
    assert_eq!(config.thresholds.slow_recurrence_count, 3);
    assert_eq!(config.thresholds.slow_recurrence_window_secs, 604_800);
    assert_eq!(config.thresholds.slow_recurrence_level, 1);
    assert_eq!(config.detection.approval_actions, ["ApproveProduction"]);
    let rules: Vec<(&str, IncidentType)> = config
        .detection
        .alarm_rules
        .iter()
        .map(|r| (r.suffix.as_str(), r.incident_type))
        .collect();
    assert_eq!(rules, defaults::alarm_rules());
    assert_eq!(
        config.detection.unmatched_alarms,
        Some(IncidentType::RollbackTriggered)
    );
}

#[test]
fn minimal_config_without_sqs_and_sns_needs_only_an_environment() {
    let config = load(
        r##"
[sources.sqs]
enabled = false
[notifiers.sns]
enabled = false
[[environments]]
name = "x"
"##,
        &no_env,
    );
    assert!(config.sources.sqs.is_none());
    assert!(!config.notifiers.sns_enabled);
    assert_eq!(config.environments[0].sns_topic_arn, None);
    assert_eq!(config.environments[0].pipeline, "kiro-pipeline-x");
}

// ----- templates and overrides ----------------------------------------------------------------

#[test]
fn placeholders_are_filled_per_environment() {
    let config = load(
        r##"
[aws]
region = "eu-central-1"
account_id = "111122223333"
[sources.sqs]
enabled = false

[environment_defaults]
resource_prefix = "acme-{env}"
pipeline = "{prefix}-pipeline"
alarm_prefix = "{prefix}-alarms-{region}"
health_url = "https://{env}.acme.example/health"
sns_topic_arn = "arn:aws:sns:{region}:{account}:{env}-incidents"
slack_channel = "#deploy-{env}"

[[environments]]
name = "staging"

[[environments]]
name = "production"
"##,
        &no_env,
    );
    let staging = config.environment("staging").unwrap();
    assert_eq!(staging.pipeline, "acme-staging-pipeline");
    assert_eq!(staging.alarm_prefix, "acme-staging-alarms-eu-central-1");
    assert_eq!(staging.build_project, "acme-staging-build");
    assert_eq!(staging.build_log_group, "/aws/codebuild/acme-staging-build");
    assert_eq!(
        staging.rollback_log_group,
        "/aws/lambda/acme-staging-rollback"
    );
    assert_eq!(staging.deployments_table, "acme-staging-deployments");
    assert_eq!(
        staging.health_url.as_deref(),
        Some("https://staging.acme.example/health")
    );
    assert_eq!(
        staging.sns_topic_arn.as_deref(),
        Some("arn:aws:sns:eu-central-1:111122223333:staging-incidents")
    );
    assert_eq!(staging.slack_channel, "#deploy-staging");
    let production = config.environment("production").unwrap();
    assert_eq!(production.pipeline, "acme-production-pipeline");
    assert_eq!(
        production.sns_topic_arn.as_deref(),
        Some("arn:aws:sns:eu-central-1:111122223333:production-incidents")
    );
}

#[test]
fn an_environment_overrides_environment_defaults_which_override_builtins() {
    let config = load(
        &with_base(
            r##"
[environment_defaults]
resource_prefix = "shop-{env}"
build_project = "{prefix}-codebuild"
slack_channel = "#shop-deploys"

[[environments]]
name = "test"

[[environments]]
name = "production"
resource_prefix = "legacy-prod"
build_project = "prod-build-v2"
slack_channel = "#prod-incidents"
deployments_table = "DeploymentsProd"
"##,
        ),
        &no_env,
    );
    let test = config.environment("test").unwrap();
    assert_eq!(test.pipeline, "shop-test", "built-in {{prefix}} template");
    assert_eq!(
        test.build_project, "shop-test-codebuild",
        "environment_defaults"
    );
    assert_eq!(test.slack_channel, "#shop-deploys");
    assert_eq!(test.deployments_table, "shop-test-deployments");

    let production = config.environment("production").unwrap();
    assert_eq!(production.pipeline, "legacy-prod", "own resource_prefix");
    assert_eq!(production.alarm_prefix, "legacy-prod");
    assert_eq!(production.build_project, "prod-build-v2");
    assert_eq!(
        production.build_log_group, "/aws/codebuild/legacy-prod-build",
        "the log group follows the prefix, not build_project"
    );
    assert_eq!(production.slack_channel, "#prod-incidents");
    assert_eq!(production.deployments_table, "DeploymentsProd");
    assert_eq!(
        production.sns_topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:legacy-prod-deployments")
    );
}

#[test]
fn a_disabled_environment_is_not_watched() {
    let config = load(
        &with_base(
            r##"
[[environments]]
name = "test"
enabled = false

[[environments]]
name = "production"
"##,
        ),
        &no_env,
    );
    let names: Vec<&str> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["production"]);
}

#[test]
fn placeholder_mistakes_are_reported_at_the_template_once() {
    // `{environment}` in [environment_defaults] is resolved for every environment: one error,
    // at the key that holds it, and no "duplicate pipeline" for the names it could not build.
    let error = single_error(
        &with_base(
            r##"
[environment_defaults]
resource_prefix = "kiro-pipeline-{environment}"
[[environments]]
name = "staging"
[[environments]]
name = "production"
"##,
        ),
        "environment_defaults.resource_prefix",
    );
    assert!(
        error.message.contains("unknown placeholder {environment}"),
        "{error}"
    );
    assert!(error.message.contains("{env}"), "{error}");

    let error = single_error(
        &with_base("[[environments]]\nname = \"p\"\nresource_prefix = \"{prefix}-x\"\n"),
        "environments[0].resource_prefix",
    );
    assert!(error.message.contains("use {env}"), "{error}");

    let error = single_error(
        &with_base("[[environments]]\nname = \"p\"\npipeline = \"kiro-{env\"\n"),
        "environments[0].pipeline",
    );
    assert!(error.message.contains("without `}`"), "{error}");
}

#[test]
fn account_placeholder_needs_the_account_id() {
    let queue = "[sources.sqs]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n";
    // Written in the file: reported where it is written.
    let error = single_error(
        &format!(
            "{queue}[[environments]]\nname = \"p\"\nsns_topic_arn = \"arn:aws:sns:{{region}}:{{account}}:alerts\"\n"
        ),
        "environments[0].sns_topic_arn",
    );
    assert!(
        error.message.contains("aws.account_id is not set"),
        "{error}"
    );
    // The built-in ARN: one error at aws.account_id, however many environments.
    let error = single_error(
        &format!(
            "{queue}[[environments]]\nname = \"a\"\n[[environments]]\nname = \"b\"\n[[environments]]\nname = \"c\"\n"
        ),
        "aws.account_id",
    );
    assert!(error.message.contains("default SNS topic ARN"), "{error}");
    // An account whose variable is unset is reported once, as the unset variable.
    let errors = load_errors(
        &format!(
            "[aws]\naccount_id = \"${{AWS_ACCOUNT_ID}}\"\n{queue}[[environments]]\nname = \"a\"\nsns_topic_arn = \"arn:aws:sns:{{region}}:{{account}}:x\"\n[[environments]]\nname = \"b\"\n"
        ),
        &no_env,
    );
    assert_eq!(paths(&errors), ["aws.account_id"], "{errors:#?}");
    assert!(errors[0].message.contains("AWS_ACCOUNT_ID is not set"));
    // A full ARN needs no account.
    let config = load(
        &format!(
            "{queue}[[environments]]\nname = \"p\"\nsns_topic_arn = \"arn:aws:sns:us-east-1:123456789012:alerts\"\n"
        ),
        &no_env,
    );
    assert_eq!(config.aws.account_id, None);
}

// ----- ${VAR} expansion -------------------------------------------------------------------------

#[test]
fn variables_and_their_defaults_are_expanded() {
    let text = r##"
[aws]
region = "${REGION:-us-west-2}"
account_id = "${ACCOUNT}"
[http]
listen = "${LISTEN:-127.0.0.1:8080}"
[store]
kind = "dynamodb"
table = "${STATE_TABLE:-pipeline-responder-state}"
[sources.sqs]
queue_url = "https://sqs.${REGION:-us-west-2}.amazonaws.com/${ACCOUNT}/${QUEUE:-events}"
[environment_defaults]
resource_prefix = "${PREFIX:-kiro-pipeline}-{env}"
[[environments]]
name = "production"
"##;
    let config = load(text, &env_of(&[("ACCOUNT", "444455556666")]));
    assert_eq!(config.aws.region, "us-west-2");
    assert_eq!(config.aws.account_id.as_deref(), Some("444455556666"));
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert!(
        matches!(config.store, StoreConfig::Dynamodb { ref table } if table == "pipeline-responder-state")
    );
    assert_eq!(
        config.sources.sqs.as_ref().unwrap().queue_url,
        "https://sqs.us-west-2.amazonaws.com/444455556666/events"
    );
    assert_eq!(config.environments[0].pipeline, "kiro-pipeline-production");
    assert_eq!(
        config.environments[0].sns_topic_arn.as_deref(),
        Some("arn:aws:sns:us-west-2:444455556666:kiro-pipeline-production-deployments")
    );

    // Set variables win over defaults; an empty variable counts as unset.
    let config = load(
        text,
        &env_of(&[
            ("ACCOUNT", "444455556666"),
            ("REGION", "ap-southeast-2"),
            ("PREFIX", "acme"),
            ("QUEUE", ""),
            ("STATE_TABLE", "state-v2"),
        ]),
    );
    assert_eq!(config.aws.region, "ap-southeast-2");
    assert!(matches!(config.store, StoreConfig::Dynamodb { ref table } if table == "state-v2"));
    assert_eq!(
        config.sources.sqs.as_ref().unwrap().queue_url,
        "https://sqs.ap-southeast-2.amazonaws.com/444455556666/events"
    );
    assert_eq!(config.environments[0].pipeline, "acme-production");
}

#[test]
fn unset_and_malformed_variable_references_are_errors() {
    let text = |value: &str| {
        with_base(&format!(
            "[notifiers.slack]\nwebhook_url = \"{value}\"\n[[environments]]\nname = \"p\"\n"
        ))
    };
    let error = single_error(&text("${NOT_SET_ANYWHERE}"), "notifiers.slack.webhook_url");
    assert!(
        error
            .message
            .starts_with("environment variable NOT_SET_ANYWHERE is not set;"),
        "{error}"
    );
    assert!(
        error.message.contains("${NOT_SET_ANYWHERE:-value}"),
        "{error}"
    );

    for malformed in [
        "${SLACK_WEBHOOK_URL",
        "${}",
        "${1WEBHOOK}",
        "${SLACK WEBHOOK}",
    ] {
        let error = single_error(&text(malformed), "notifiers.slack.webhook_url");
        assert!(
            error.message.contains("${NAME} or ${NAME:-default}"),
            "{malformed}: {error}"
        );
    }

    // An empty variable is as good as unset.
    let errors = load_errors(&text("${EMPTY}"), &env_of(&[("EMPTY", "")]));
    assert_eq!(paths(&errors), ["notifiers.slack.webhook_url"]);

    // Not only secrets: any string value.
    let error = single_error(
        &with_base("[store]\nkind = \"dynamodb\"\ntable = \"${STATE_TABLE}\"\n[[environments]]\nname = \"p\"\n"),
        "store.table",
    );
    assert!(error.message.contains("STATE_TABLE is not set"), "{error}");
}

// ----- secrets ----------------------------------------------------------------------------------

#[test]
fn secrets_never_appear_in_debug_or_json() {
    let text = r##"
[aws]
account_id = "123456789012"
[http]
api_token = "${API_TOKEN}"
[sources.sqs]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/events"
[notifiers.slack]
webhook_url = "${WEBHOOK}"
bot_token = "${BOT_TOKEN}"
signing_secret = "${SIGNING_SECRET}"
[[environments]]
name = "production"
"##;
    let env = env_of(&[
        ("API_TOKEN", API_TOKEN),
        ("WEBHOOK", WEBHOOK),
        ("BOT_TOKEN", BOT_TOKEN),
        ("SIGNING_SECRET", SIGNING_SECRET),
    ]);
    let config = load(text, &env);
    let slack = config.notifiers.slack.as_ref().unwrap();
    assert_eq!(slack.webhook_url.as_ref().unwrap().expose(), WEBHOOK);
    assert_eq!(slack.bot_token.as_ref().unwrap().expose(), BOT_TOKEN);
    assert_eq!(
        slack.signing_secret.as_ref().unwrap().expose(),
        SIGNING_SECRET
    );
    assert_eq!(config.http.api_token.as_ref().unwrap().expose(), API_TOKEN);

    for shown in [
        format!("{config:?}"),
        format!("{config:#?}"),
        serde_json::to_string(&config).unwrap(),
        serde_json::to_string_pretty(&config).unwrap(),
    ] {
        for secret in [API_TOKEN, WEBHOOK, BOT_TOKEN, SIGNING_SECRET] {
            assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
        }
        // Nor any recognisable part of them.
        assert!(!shown.contains("-SECRET-"), "leaked:\n{shown}");
        assert!(!shown.contains("hooks.slack.com"), "leaked:\n{shown}");
        // What is shown instead says where the value comes from.
        assert!(shown.contains("${WEBHOOK}"), "{shown}");
        assert!(shown.contains("${API_TOKEN}"), "{shown}");
    }

    // The same values written in the file (not recommended) are just as hidden.
    let written = text
        .replace("${API_TOKEN}", API_TOKEN)
        .replace("${WEBHOOK}", WEBHOOK)
        .replace("${BOT_TOKEN}", BOT_TOKEN)
        .replace("${SIGNING_SECRET}", SIGNING_SECRET);
    let config = load(&written, &no_env);
    assert_eq!(config.http.api_token.as_ref().unwrap().expose(), API_TOKEN);
    for shown in [
        format!("{config:?}"),
        serde_json::to_string(&config).unwrap(),
    ] {
        assert!(!shown.contains("SECRET"), "leaked:\n{shown}");
        assert!(!shown.contains("hooks.slack.com"), "leaked:\n{shown}");
        assert!(shown.contains("(written in the file)"), "{shown}");
    }
}

#[test]
fn errors_about_secrets_do_not_show_them() {
    let text = with_base(
        r##"
[http]
api_token = ""
[notifiers.slack]
webhook_url = "${WEBHOOK}"
[[environments]]
name = "p"
"##,
    );
    let not_a_url = "hooks.slack.com/services/T0/B0/webhook-SECRET-no-scheme";
    let errors = config::load_str(&text, &env_of(&[("WEBHOOK", not_a_url)])).unwrap_err();
    assert_eq!(
        paths(&errors.0),
        ["http.api_token", "notifiers.slack.webhook_url"],
        "{errors}"
    );
    let shown = format!("{errors}\n{errors:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(!shown.contains("hooks.slack.com"), "{shown}");
}

// ----- errors -----------------------------------------------------------------------------------

#[test]
fn five_mistakes_in_five_sections_give_five_errors() {
    let text = r##"
[daemon]
shutdown_grace_secs = 600

[http]
listen = "9090"

[sources.sqs]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/events"
wait_time_secs = 30

[aws]
account_id = "123456789012"

[thresholds]
coverage_percent = 150

[[environments]]
name = "staging"

[[environments]]
name = "production"

[policies.rollback_triggered]
severity = "urgent"
"##;
    let errors = load_errors(text, &no_env);
    let mut got = paths(&errors);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "daemon.shutdown_grace_secs",
            "http.listen",
            "policies.rollback_triggered.severity",
            "sources.sqs.wait_time_secs",
            "thresholds.coverage_percent",
        ],
        "{errors:#?}"
    );
    for e in &errors {
        assert!(e.message.contains(';'), "says what to do: {e}");
    }
}

#[test]
fn unknown_keys_and_wrong_types_in_many_places_are_all_reported() {
    let text = r##"
[aws]
account_id = "123456789012"
regoin = "us-east-1"

[sources.sqs]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/events"
max_messages = "10"
visibility_timeout = 60
wait_time_secs = "20s"

[notifier.slack]
webhook_url = "https://hooks.slack.com/services/x"

[[environments]]
name = "staging"
pipline = "kiro-pipeline-staging"

[[environments]]
name = "production"
health_url = 42

[policies.pipeline_execution_failure.diagnostics]
build_log = { window_secs = "30m", pattern = ["FAILED"] }
"##;
    let errors = load_errors(text, &no_env);
    let mut got = paths(&errors);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "aws.regoin",
            "environments[0].pipline",
            "environments[1].health_url",
            "notifier",
            "policies.pipeline_execution_failure.diagnostics.build_log.pattern",
            "policies.pipeline_execution_failure.diagnostics.build_log.window_secs",
            "sources.sqs.max_messages",
            "sources.sqs.visibility_timeout",
            "sources.sqs.wait_time_secs",
        ],
        "{errors:#?}"
    );
}

#[test]
fn a_wrong_type_does_not_reset_the_rest_of_its_section() {
    // The whole [sources] used to fall back to defaults, adding "queue_url: required".
    let error = single_error(
        r##"
[aws]
account_id = "123456789012"
[sources.sqs]
queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/events"
max_messages = "10"
[[environments]]
name = "p"
"##,
        "sources.sqs.max_messages",
    );
    assert_eq!(
        error.message,
        "invalid type: string \"10\", expected u64; write a whole number of seconds (or a count), e.g. 300"
    );

    // The environment used to lose its name too ("environments[1].name: required").
    let error = single_error(
        &with_base(
            "[[environments]]\nname = \"staging\"\n[[environments]]\nname = \"production\"\npipeline = 2024\n",
        ),
        "environments[1].pipeline",
    );
    assert!(error.message.contains("expected a string"), "{error}");
    assert!(!error.message.contains('\n'), "one line: {error:?}");

    // A wrong account type is reported once, not again by each environment's topic ARN.
    let errors = load_errors(
        "[aws]\naccount_id = 123456789012\n[sources.sqs]\nenabled = false\n[[environments]]\nname = \"a\"\n[[environments]]\nname = \"b\"\n",
        &no_env,
    );
    assert_eq!(paths(&errors), ["aws.account_id"], "{errors:#?}");

    // A section of the wrong type is one error, not one per value it would have held.
    let errors = load_errors(
        "sources = \"sqs\"\n[aws]\naccount_id = \"123456789012\"\n[[environments]]\nname = \"p\"\n",
        &no_env,
    );
    assert_eq!(paths(&errors), ["sources"], "{errors:#?}");

    // An environment that is not a table: one error for the entry.
    let errors = load_errors(&format!("environments = [\"production\"]\n{BASE}"), &no_env);
    assert_eq!(paths(&errors), ["environments[0]"], "{errors:#?}");
}

#[test]
fn nested_error_paths_name_the_exact_value() {
    let error = single_error(
        &with_base(
            r##"
[[environments]]
name = "production"
[policies.security_scan_failure]
escalation = [
  { level = "L1" },
  { level = "L9", after_secs = 0 },
]
"##,
        ),
        "policies.security_scan_failure.escalation[1].level",
    );
    assert!(
        error
            .message
            .starts_with("undefined escalation level \"L9\";"),
        "{error}"
    );
    assert!(error.message.contains("L1, L2, L3"), "{error}");

    let three = "[[environments]]\nname = \"test\"\n[[environments]]\nname = \"staging\"\n[[environments]]\nname = \"production\"\n";
    let error = single_error(
        &with_base(&format!("{three}pipeline = \"\"\n")),
        "environments[2].pipeline",
    );
    assert!(error.message.starts_with("is empty;"), "{error}");

    let error = single_error(
        &with_base(&format!(
            "{three}pipeline = [\"kiro-pipeline-production\"]\n"
        )),
        "environments[2].pipeline",
    );
    assert!(error.message.contains("write a quoted string"), "{error}");

    let error = single_error(
        &with_base(
            r##"
[[escalation.levels]]
name = "On-call engineer"
[[escalation.levels]]
id = "L2"
[[escalation.levels]]
id = "L3"
[[environments]]
name = "p"
"##,
        ),
        "escalation.levels[0].id",
    );
    assert!(error.message.starts_with("required;"), "{error}");

    let error = single_error(
        &with_base(
            "[[escalation.levels]]\nid = \"L1\"\n[[escalation.levels]]\nid = \"L1\"\n[[escalation.levels]]\nid = \"L3\"\n[[environments]]\nname = \"p\"\n",
        ),
        "escalation.levels[1].id",
    );
    assert!(error.message.contains("duplicate level id"), "{error}");

    let error = single_error(
        &with_base(
            "[[escalation.levels]]\nid = \"L1\"\nsns_topic_arn = \"arn:aws:sns:us-east-1:1:x\"\n[[escalation.levels]]\nid = \"L2\"\nsns_topic_arn = \"oncall-topic\"\n[[escalation.levels]]\nid = \"L3\"\n[[environments]]\nname = \"p\"\n",
        ),
        "escalation.levels[1].sns_topic_arn",
    );
    assert!(error.message.contains("not an SNS topic ARN"), "{error}");

    for (value, wanted) in [
        ("0", "must be greater than 0"),
        ("\"30m\"", "expected u64"),
        ("-1", "expected u64"),
    ] {
        let error = single_error(
            &with_base(&format!(
                "[[environments]]\nname = \"p\"\n[policies.pipeline_execution_failure.diagnostics]\nbuild_log = {{ window_secs = {value} }}\n"
            )),
            "policies.pipeline_execution_failure.diagnostics.build_log.window_secs",
        );
        assert!(error.message.contains(wanted), "{value}: {error}");
    }

    let error = single_error(
        &with_base(
            "[[environments]]\nname = \"p\"\n[policies.approval_pending.diagnostics]\nrelated_environment = { environment = \"staging\" }\n",
        ),
        "policies.approval_pending.diagnostics.related_environment.environment",
    );
    assert!(
        error.message.contains("no environment named \"staging\""),
        "{error}"
    );

    let error = single_error(
        &with_base(
            "[[environments]]\nname = \"p\"\n[policies.approval_pending]\nescalation = [{ level = \"L1\", after_secs = 1800, max_repeats = 3 }]\n",
        ),
        "policies.approval_pending.escalation[0].max_repeats",
    );
    assert!(error.message.contains("needs repeat_every_secs"), "{error}");

    let error = single_error(
        &with_base(
            "[[environments]]\nname = \"p\"\n[policies.approval_pending.diagnostics]\nhealth_check = { timeout_secs = 301 }\n",
        ),
        "policies.approval_pending.diagnostics.health_check.timeout_secs",
    );
    assert!(error.message.contains("at most 300"), "{error}");

    let error = single_error(
        &with_base(
            "[[environments]]\nname = \"p\"\n[policies.rollback_triggered.diagnostics]\nbuild_log = { patterns = [\"FAILED\", 7] }\n",
        ),
        "policies.rollback_triggered.diagnostics.build_log.patterns[1]",
    );
    assert!(error.message.contains("expected a string"), "{error}");
}

#[test]
fn section_mistakes_name_their_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[store]\nkind = \"dynamodb\"\n",
            "store.table",
            "required when store.kind",
        ),
        (
            "[store]\nkind = \"s3\"\n",
            "store.kind",
            "unknown store \"s3\"",
        ),
        (
            "[notifiers.slack]\nenabled = true\n",
            "notifiers.slack",
            "neither webhook_url nor bot_token",
        ),
        (
            "[http]\nlisten = \"localhost:9090\"\n",
            "http.listen",
            "host names are not resolved",
        ),
        (
            "[escalation.multi_environment]\nlevel = \"L7\"\n",
            "escalation.multi_environment.level",
            "undefined escalation level \"L7\"",
        ),
        (
            "[escalation.rollback_failed]\nlevels = [\"L2\", \"L5\"]\n",
            "escalation.rollback_failed.levels[1]",
            "undefined escalation level \"L5\"",
        ),
        (
            "[thresholds]\ncoverage_percent = 150\n",
            "thresholds.coverage_percent",
            "from 0 to 100",
        ),
        (
            "[thresholds]\ndeployment_duration_secs = 0\n",
            "thresholds.deployment_duration_secs",
            "greater than 0",
        ),
        (
            "[detection]\nunmatched_alarms = \"rollback\"\n",
            "detection.unmatched_alarms",
            "unknown incident type \"rollback\"",
        ),
        (
            "[[detection.alarm_rules]]\nsuffix = \"-x\"\nincident_type = \"outage\"\n",
            "detection.alarm_rules[0].incident_type",
            "unknown incident type \"outage\"",
        ),
        (
            "[policies.rollback_triggered]\nseverity = \"urgent\"\n",
            "policies.rollback_triggered.severity",
            "use info, low, medium, high or critical",
        ),
        (
            "[policies.rollback_triggered]\nseverity_by_environment = { prod = \"high\" }\n",
            "policies.rollback_triggered.severity_by_environment.prod",
            "no environment named \"prod\"",
        ),
        (
            "[policies.pipeline_failure]\nseverity = \"high\"\n",
            "policies.pipeline_failure",
            "unknown incident type \"pipeline_failure\"",
        ),
        (
            "[policies.rollback_triggered]\nescalation = [{ level = \"L1\", until = \"acked\" }]\n",
            "policies.rollback_triggered.escalation[0].until",
            "\"acknowledged\" or \"resolved\"",
        ),
        (
            "[sources.watcher]\ninterval_secs = 5\n",
            "sources.watcher.interval_secs",
            "from 10 to 86400",
        ),
        (
            "[sources.sqs]\nenabled = \"false\"\n",
            "sources.sqs.enabled",
            "write true or false",
        ),
        (
            "[sources.sqs]\nqueue_url = \"sqs.us-east-1.amazonaws.com/1/q\"\n",
            "sources.sqs.queue_url",
            "not a queue URL",
        ),
        (
            "[aws]\naccount_id = \"1234\"\n",
            "aws.account_id",
            "12-digit",
        ),
    ];
    for (section, path, wanted) in cases {
        // The base's [aws] and [sources.sqs], unless the case writes its own.
        let aws = "[aws]\naccount_id = \"123456789012\"\n";
        let sqs = "[sources.sqs]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\n";
        let mut text = section.to_string();
        for (header, part) in [("[aws]", aws), ("[sources.sqs]", sqs)] {
            if !section.contains(header) {
                text.push_str(part);
            }
        }
        text.push_str("[[environments]]\nname = \"production\"\n");
        let error = single_error(&text, path);
        assert!(error.message.contains(wanted), "{path}: {error}");
    }
}

#[test]
fn environment_mistakes_name_the_entry() {
    let error = single_error(BASE, "environments");
    assert!(error.message.contains("add at least one [[environments]]"));

    let error = single_error(
        &format!("environments = \"production\"\n{BASE}"),
        "environments",
    );
    assert!(error.message.contains("[[environments]]"), "{error}");

    let error = single_error(
        &with_base("[[environments]]\nname = \"test\"\n[[environments]]\npipeline = \"x\"\n"),
        "environments[1].name",
    );
    assert!(error.message.starts_with("required;"), "{error}");

    // A duplicate name is one error, not also a duplicate of the pipeline named after it.
    let error = single_error(
        &with_base("[[environments]]\nname = \"staging\"\n[[environments]]\nname = \"staging\"\n"),
        "environments[1].name",
    );
    assert!(error.message.contains("also environments[0]"), "{error}");

    let error = single_error(
        &with_base(
            "[[environments]]\nname = \"staging\"\npipeline = \"shared\"\n[[environments]]\nname = \"production\"\npipeline = \"shared\"\n",
        ),
        "environments[1].pipeline",
    );
    assert!(
        error.message.contains("already watched by environments[0]"),
        "{error}"
    );

    let error = single_error(
        &with_base("[[environments]]\nname = \"pro duction\"\n"),
        "environments[0].name",
    );
    assert!(error.message.contains("letters, digits"), "{error}");

    let error = single_error(
        &with_base(
            "[[environments]]\nname = \"p\"\nsns_topic_arn = \"arn:aws:sqs:us-east-1:123456789012:q\"\n",
        ),
        "environments[0].sns_topic_arn",
    );
    assert!(error.message.contains("not an SNS topic ARN"), "{error}");

    let error = single_error(
        &with_base("[[environments]]\nname = \"p\"\nslack_channel = \"deployments\"\n"),
        "environments[0].slack_channel",
    );
    assert!(error.message.contains("#name"), "{error}");

    let error = single_error(
        &with_base("[[environments]]\nname = \"p\"\nhealth_url = \"app.example.com/health\"\n"),
        "environments[0].health_url",
    );
    assert!(error.message.contains("http(s) URL"), "{error}");

    let error = single_error(
        &with_base("[environment_defaults]\nname = \"p\"\n[[environments]]\nname = \"q\"\n"),
        "environment_defaults.name",
    );
    assert!(error.message.contains("per environment"), "{error}");
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let text = "[aws]\naccount_id = \"123456789012\"\n\n[[environments]]\nname = \"production\nhealth_url = \"x\"\n";
    let error = single_error(text, "line 5, column 19");
    assert!(error.message.starts_with("TOML syntax error: "), "{error}");
    assert!(
        error
            .message
            .ends_with("; fix the file so it is valid TOML"),
        "{error}"
    );

    let error = single_error("[aws\nregion = \"us-east-1\"\n", "line 1, column 5");
    assert!(error.message.contains("TOML syntax error"), "{error}");

    // Columns count characters, as editors do, not bytes.
    let error = single_error(
        "[[environments]]\nname = \"Ünïcödé\" x\n",
        "line 2, column 18",
    );
    assert!(error.message.contains("TOML syntax error"), "{error}");

    // A key written twice is a TOML error too, at the second one.
    let errors = load_errors("[storm]\nwindow_secs = 60\nwindow_secs = 90\n", &no_env);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].path.starts_with("line 3, column "),
        "{}",
        errors[0]
    );
}

#[test]
fn errors_display_one_line_each_with_the_config_prefix() {
    let errors = config::load_str(
        "[daemon]\ndry_run = \"yes\"\nshutdown_grace_secs = \"25s\"\n[storm]\nwindow_secs = -5\n[[environments]]\nname = \"p\"\n",
        &no_env,
    )
    .unwrap_err();
    let shown = errors.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), errors.0.len(), "{shown}");
    for (line, error) in lines.iter().zip(&errors.0) {
        assert_eq!(*line, format!("config: {}: {}", error.path, error.message));
    }
    let got = paths(&errors.0);
    for wanted in [
        "daemon.dry_run",
        "daemon.shutdown_grace_secs",
        "storm.window_secs",
    ] {
        assert!(got.contains(&wanted), "{wanted} missing in {shown}");
    }
}

#[test]
fn policy_overrides_change_only_what_they_say() {
    let config = load(
        &with_base(
            r##"
[[environments]]
name = "staging"
[[environments]]
name = "production"

[policies.deployment_duration_exceeded]
severity = "low"
severity_by_environment = { production = "high" }
ack_target_secs = 0

[policies.test_coverage_below_threshold]
enabled = false

[policies.pipeline_execution_failure.diagnostics]
build_log = { patterns = ["npm ERR!"], max_lines = 80 }
security_report = { enabled = false }
health_check = { expect_status_below = 300 }
"##,
        ),
        &no_env,
    );
    let slow = config.policy(IncidentType::DeploymentDurationExceeded);
    assert_eq!(slow.severity_for("staging"), Severity::Low);
    assert_eq!(slow.severity_for("production"), Severity::High);
    assert_eq!(slow.ack_target_secs, None, "0 means no target");
    assert_eq!(
        slow.steps,
        defaults::policy(IncidentType::DeploymentDurationExceeded).steps
    );
    assert!(
        !config
            .policy(IncidentType::TestCoverageBelowThreshold)
            .enabled
    );

    let failure = config.policy(IncidentType::PipelineExecutionFailure);
    let names: Vec<&str> = failure.diagnostics.iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        [
            "pipeline_state",
            "execution_details",
            "build_log",
            "coverage_report",
            "health_check"
        ]
    );
    let Diagnostic::BuildLog(search) = &failure.diagnostics[2] else {
        panic!("{:?}", failure.diagnostics[2]);
    };
    assert_eq!(search.patterns, ["npm ERR!"]);
    assert_eq!(search.max_lines, 80);
    assert_eq!(search.window_secs, 1800, "unchanged");
    assert_eq!(search.context_lines, 3, "unchanged");
    assert_eq!(
        failure.diagnostics[4],
        Diagnostic::HealthCheck {
            timeout_secs: 5,
            expect_status_below: 300
        }
    );
    // Other policies keep their built-in diagnostics.
    assert_eq!(
        config.policy(IncidentType::SecurityScanFailure).diagnostics,
        defaults::policy(IncidentType::SecurityScanFailure).diagnostics
    );
}

// ----- [digest] ----------------------------------------------------------------------------------

#[test]
fn digest_defaults_to_mondays_at_nine_utc_over_a_week() {
    let config = load(&with_base("[[environments]]\nname = \"p\"\n"), &no_env);
    let digest = &config.digest;
    assert!(digest.enabled);
    assert_eq!(digest.every, DigestEvery::Week(Weekday::Mon));
    assert_eq!(digest.at, NaiveTime::from_hms_opt(9, 0, 0).unwrap());
    assert_eq!(digest.window_days, 7);
    assert_eq!(digest.flap_secs, 600);
    assert_eq!(digest.stale_execution_secs, 7200);
    assert_eq!(digest.slack_channel, None);
    assert_eq!(*digest, DigestConfig::default());

    // An empty section is the same; a daily digest looks back one day unless told otherwise.
    let empty = load(
        &with_base("[digest]\n[[environments]]\nname = \"p\"\n"),
        &no_env,
    );
    assert_eq!(empty.digest, DigestConfig::default());
    let daily = load(
        &with_base("[digest]\nevery = \"day\"\n[[environments]]\nname = \"p\"\n"),
        &no_env,
    );
    assert_eq!(daily.digest.every, DigestEvery::Day);
    assert_eq!(daily.digest.window_days, 1);
    assert_eq!(daily.digest.at, NaiveTime::from_hms_opt(9, 0, 0).unwrap());
}

#[test]
fn a_full_digest_section_is_taken_as_written() {
    let config = load(
        &with_base(
            r##"
[digest]
enabled = false
every = "week"
day = "FRI"
at = "16:30:15"
window_days = 14
flap_secs = 120
stale_execution_secs = 86400
slack_channel = "#pipeline-health"
[[environments]]
name = "p"
"##,
        ),
        &no_env,
    );
    assert_eq!(
        config.digest,
        DigestConfig {
            enabled: false,
            every: DigestEvery::Week(Weekday::Fri),
            at: NaiveTime::from_hms_opt(16, 30, 15).unwrap(),
            window_days: 14,
            flap_secs: 120,
            stale_execution_secs: 86_400,
            slack_channel: Some("#pipeline-health".into()),
        }
    );
    // Full and three-letter day names, any case.
    for (name, day) in [
        ("sunday", Weekday::Sun),
        ("Wednesday", Weekday::Wed),
        ("tue", Weekday::Tue),
        ("SAT", Weekday::Sat),
    ] {
        let config = load(
            &with_base(&format!(
                "[digest]\nday = \"{name}\"\nat = \"00:05\"\n[[environments]]\nname = \"p\"\n"
            )),
            &no_env,
        );
        assert_eq!(config.digest.every, DigestEvery::Week(day), "{name}");
        assert_eq!(config.digest.at, NaiveTime::from_hms_opt(0, 5, 0).unwrap());
    }
}

#[test]
fn digest_mistakes_name_their_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "every = \"month\"",
            "digest.every",
            "use \"week\" or \"day\"",
        ),
        ("day = \"funday\"", "digest.day", "monday … sunday"),
        ("day = \"mo\"", "digest.day", "not a day of the week"),
        (
            "every = \"day\"\nday = \"monday\"",
            "digest.day",
            "only used by a weekly digest",
        ),
        ("at = \"25:00\"", "digest.at", "HH:MM or HH:MM:SS in UTC"),
        ("at = \"09:60\"", "digest.at", "not a time of day"),
        ("at = \"23:59:60\"", "digest.at", "not a time of day"),
        ("at = \"9am\"", "digest.at", "not a time of day"),
        ("at = \"9:00\"", "digest.at", "not a time of day"),
        ("at = \"09:00:00.5\"", "digest.at", "not a time of day"),
        ("window_days = 0", "digest.window_days", "from 1 to 366"),
        ("window_days = 400", "digest.window_days", "from 1 to 366"),
        ("flap_secs = 0", "digest.flap_secs", "greater than 0"),
        (
            "stale_execution_secs = 0",
            "digest.stale_execution_secs",
            "greater than 0",
        ),
        (
            "slack_channel = \"pipeline-health\"",
            "digest.slack_channel",
            "#name",
        ),
        ("at = 900", "digest.at", "write a quoted string"),
        ("enabled = \"yes\"", "digest.enabled", "write true or false"),
        (
            "every = \"weekly\"",
            "digest.every",
            "unknown period \"weekly\"",
        ),
        ("hour = 9", "digest.hour", "unknown key"),
    ];
    for (body, path, wanted) in cases {
        let text = with_base(&format!(
            "[digest]\n{body}\n[[environments]]\nname = \"p\"\n"
        ));
        let error = single_error(&text, path);
        assert!(error.message.contains(wanted), "{path}: {error}");
    }
}

#[test]
fn every_digest_mistake_is_reported_at_once() {
    let errors = load_errors(
        &with_base(
            "[digest]\nevery = \"month\"\nday = \"funday\"\nat = \"25:00\"\nwindow_days = 0\n[[environments]]\nname = \"p\"\n",
        ),
        &no_env,
    );
    assert_eq!(
        paths(&errors),
        [
            "digest.every",
            "digest.day",
            "digest.at",
            "digest.window_days"
        ],
        "{errors:#?}"
    );
}

/// The commented `[digest]` block of a shipped file, uncommented (all but `slack_channel`, which
/// has no default).
fn uncommented_digest(text: &str) -> String {
    let mut inside = false;
    let mut found = false;
    let lines = text.lines().map(|line| {
        if line == "# [digest]" {
            (inside, found) = (true, true);
        } else if !line.starts_with("# ") {
            inside = false;
        }
        match line.strip_prefix("# ") {
            Some(rest) if inside && !rest.starts_with("slack_channel") => rest.to_string(),
            _ => line.to_string(),
        }
    });
    let out = lines.collect::<Vec<_>>().join("\n");
    assert!(found, "no commented [digest] block");
    out
}

#[test]
fn the_shipped_digest_blocks_show_the_defaults() {
    let shipped = uncommented_digest(SHIPPED);
    assert!(
        shipped.contains("\n[digest]\nenabled = true\n"),
        "{shipped}"
    );
    assert_eq!(
        load(&shipped, &shipped_env()).digest,
        DigestConfig::default()
    );
    let local = uncommented_digest(LOCAL);
    assert_eq!(load(&local, &no_env).digest, DigestConfig::default());
}

#[test]
fn the_shipped_config_switches_to_the_dynamodb_store_by_environment() {
    // The deploy kit's task definition sets these two; without them it is the embedded store.
    let embedded = load(SHIPPED, &shipped_env());
    assert!(matches!(embedded.store, StoreConfig::Embedded { .. }));
    let mut vars = SHIPPED_VARS.to_vec();
    vars.push(("PIPELINE_RESPONDER_STORE", "dynamodb"));
    vars.push(("PIPELINE_RESPONDER_TABLE", "kiro-pipeline-responder-state"));
    let dynamodb = load(SHIPPED, &env_of(&vars));
    assert!(
        matches!(dynamodb.store, StoreConfig::Dynamodb { ref table } if table == "kiro-pipeline-responder-state")
    );
    // The kind without the table is a mistake named at the table.
    let mut vars = SHIPPED_VARS.to_vec();
    vars.push(("PIPELINE_RESPONDER_STORE", "dynamodb"));
    let errors = load_errors(SHIPPED, &env_of(&vars));
    assert_eq!(paths(&errors), ["store.table"]);
    assert!(
        errors[0].message.contains("is empty"),
        "{}",
        errors[0].message
    );
    // A kind that is neither names the choices.
    let mut vars = SHIPPED_VARS.to_vec();
    vars.push(("PIPELINE_RESPONDER_STORE", "dynamo"));
    let errors = load_errors(SHIPPED, &env_of(&vars));
    assert_eq!(paths(&errors), ["store.kind"]);
}

#[test]
fn diagnosis_causes_load_in_order_and_bad_ones_name_the_field() {
    let base = "[[environments]]\nname = \"production\"\n[[environments]]\nname = \"staging\"\n[sources.sqs]\nenabled = false\n[notifiers.sns]\nenabled = false\n";
    let config = load(
        &format!(
            "{base}[diagnosis]\ncompare_with_last_green = false\n[[diagnosis.causes]]\nname = \"npm 429\"\npattern = 'npm ERR! code E429'\nclass = \"dependency\"\nhint = \"retry the stage\"\nrunbook_url = \"https://wiki.example.com/npm\"\n[[diagnosis.causes]]\nname = \"flaky\"\npattern = 'ECONNRESET'\n"
        ),
        &no_env,
    );
    assert!(!config.diagnosis.compare_with_last_green);
    let causes = &config.diagnosis.causes;
    assert_eq!(causes.len(), 2);
    assert_eq!(causes[0].name, "npm 429");
    assert_eq!(causes[0].class.as_str(), "dependency");
    assert_eq!(
        causes[1].class.as_str(),
        "unknown",
        "class defaults to unknown"
    );
    assert!(causes[0].pattern.is_match("npm ERR! code E429"));

    let errors = load_errors(
        &format!("{base}[[diagnosis.causes]]\nname = \"bad\"\npattern = 'npm (ERR'\nclass = \"security\"\nrunbook_url = \"wiki\"\n[[diagnosis.causes]]\npattern = 'x'\n[[diagnosis.causes]]\nname = \"typo\"\npatern = 'x'\n"),
        &no_env,
    );
    let found = paths(&errors);
    for path in [
        "diagnosis.causes[0].pattern",
        "diagnosis.causes[0].class",
        "diagnosis.causes[0].runbook_url",
        "diagnosis.causes[1].name",
        "diagnosis.causes[2].patern",
        "diagnosis.causes[2].pattern",
    ] {
        assert!(found.contains(&path), "{path} not in {found:?}");
    }
    let pattern = errors
        .iter()
        .find(|e| e.path == "diagnosis.causes[0].pattern")
        .unwrap();
    assert!(
        pattern.message.starts_with("invalid regular expression:"),
        "{}",
        pattern.message
    );
    assert!(!pattern.message.contains('\n'));
    let class = errors
        .iter()
        .find(|e| e.path == "diagnosis.causes[0].class")
        .unwrap();
    assert!(
        class.message.contains("aws_throttling"),
        "{}",
        class.message
    );
}
