//! The configuration file as written (TOML). Every field is optional here; [`super::load`]
//! fills defaults, expands templates and `${ENV}` references, and validates.
//!
//! Unknown keys are collected as errors by the loader (not by serde), so that one run reports
//! every unknown key at once.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Top level of `pipeline-responder.toml`.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    pub daemon: Option<RawDaemon>,
    pub aws: Option<RawAws>,
    pub http: Option<RawHttp>,
    pub store: Option<RawStore>,
    pub sources: Option<RawSources>,
    pub notifiers: Option<RawNotifiers>,
    pub escalation: Option<RawEscalation>,
    pub storm: Option<RawStorm>,
    pub digest: Option<RawDigest>,
    pub remediation: Option<RawRemediation>,
    pub thresholds: Option<RawThresholds>,
    pub detection: Option<RawDetection>,
    pub diagnosis: Option<RawDiagnosis>,
    pub environment_defaults: Option<RawEnvironment>,
    pub environments: Option<Vec<RawEnvironment>>,
    pub policies: Option<BTreeMap<String, RawPolicy>>,
}

/// `[diagnosis]`: how build logs are read.
#[derive(Debug, Default, Deserialize)]
pub struct RawDiagnosis {
    /// Compare a failed build's log with the last green build of the same action (one more
    /// `ListActionExecutions` page and one `FilterLogEvents` stream) and prefer the new lines.
    /// Default true.
    pub compare_with_last_green: Option<bool>,
    /// Known failure causes, checked in order before the built-in reading; the first whose
    /// `pattern` matches a line of the failing command's output decides the class and is named
    /// in the post.
    pub causes: Option<Vec<RawCause>>,
}

/// `[[diagnosis.causes]]`: a known failure cause (the Jenkins Build Failure Analyzer idea).
#[derive(Debug, Default, Deserialize)]
pub struct RawCause {
    /// Short name shown in the post, e.g. "npm registry rate limit".
    pub name: Option<String>,
    /// Regular expression (Rust `regex` syntax) matched against each log line, after colour
    /// codes and CI prefixes are removed.
    pub pattern: Option<String>,
    /// Root-cause class it means: test_failure, coverage, security_scan, infrastructure, timeout,
    /// dependency, compile, lint, aws_throttling or unknown. Default unknown.
    pub class: Option<String>,
    /// One line for the on-call, e.g. "npm registry rate limit: retry the stage".
    pub hint: Option<String>,
    /// Runbook or wiki page for this cause (https).
    pub runbook_url: Option<String>,
    /// A known-flaky cause (a flaky test, a registry blip): the post offers "Retry failed
    /// stage". Default false.
    pub flaky: Option<bool>,
}

/// `[daemon]`: process-wide behaviour.
#[derive(Debug, Default, Deserialize)]
pub struct RawDaemon {
    /// Run everything but send nothing: Slack, SNS and remediation calls are logged instead.
    /// Default false. `run --dry-run` also sets it.
    pub dry_run: Option<bool>,
    /// Seconds allowed after SIGTERM to finish in-flight events and flush the store; keep it
    /// under the ECS `stopTimeout` (30 s). Default 25.
    pub shutdown_grace_secs: Option<u64>,
    /// How long a new incident's first post waits for its diagnostics, so that it can name the
    /// failed action, the error and the root cause. Diagnostics that take longer follow in the
    /// thread. 0 posts at once. Default 8.
    pub first_post_wait_secs: Option<u64>,
}

/// `[aws]`: where the watched pipeline lives.
#[derive(Debug, Default, Deserialize)]
pub struct RawAws {
    /// Region of the pipelines, alarms and topics (`${AWS_REGION}` allowed). Default `us-east-1`.
    pub region: Option<String>,
    /// Account id, used by the `{account}` placeholder in SNS topic ARNs (`${AWS_ACCOUNT_ID}`
    /// allowed, as in the runbook's "Common Commands").
    pub account_id: Option<String>,
}

/// `[http]`: the one listener for health, metrics, the API and Slack interactivity.
#[derive(Debug, Default, Deserialize)]
pub struct RawHttp {
    /// Socket address to listen on. Default `0.0.0.0:9090`.
    pub listen: Option<String>,
    /// Bearer token for `/api/v1/*` (secret: write `${PIPELINE_RESPONDER_API_TOKEN}`). Without
    /// it the API answers 401 to every request.
    pub api_token: Option<String>,
    /// Connections open at once at most; more are closed at accept. Default 512 (sized for the
    /// 512 MiB task: an idle connection costs a few KiB, a request in flight its body limit).
    pub max_connections: Option<u64>,
}

/// `[store]`: where incidents, processed event ids and deadlines are kept.
#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    /// `embedded` (one task, file on a mounted volume) or `dynamodb` (several tasks). Default
    /// `embedded`.
    pub kind: Option<String>,
    /// File of the embedded store. Default `/var/lib/pipeline-responder/state.db`.
    pub path: Option<String>,
    /// DynamoDB table of the `dynamodb` store (see `deploy/`).
    pub table: Option<String>,
    /// Days resolved incidents (with their timelines), processed-event ids and settled posts
    /// are kept. Default 90; at least 8 (the rules look back 8 days for recurrences).
    pub retention_days: Option<u64>,
}

/// `[sources]`: how events come in.
#[derive(Debug, Default, Deserialize)]
pub struct RawSources {
    pub sqs: Option<RawSqs>,
    pub watcher: Option<RawWatcher>,
}

/// `[sources.sqs]`: the EventBridge → SQS queue (with a redrive policy to a DLQ).
#[derive(Debug, Default, Deserialize)]
pub struct RawSqs {
    /// Default true.
    pub enabled: Option<bool>,
    /// Queue URL (`${QUEUE_URL}` allowed). Required when enabled.
    pub queue_url: Option<String>,
    /// Long-poll wait, 0–20 s. Default 20.
    pub wait_time_secs: Option<u64>,
    /// Messages per receive, 1–10. Default 10.
    pub max_messages: Option<u64>,
    /// Visibility timeout requested while a message is worked on; extended for long work.
    /// Default 60.
    pub visibility_timeout_secs: Option<u64>,
}

/// `[sources.watcher]`: polling that catches what events missed.
#[derive(Debug, Default, Deserialize)]
pub struct RawWatcher {
    /// Default true.
    pub enabled: Option<bool>,
    /// Seconds between polls of each environment. Default 300: 12 `GetPipelineState` calls per
    /// pipeline per hour, plus `DescribeAlarms` calls shared by all environments.
    pub interval_secs: Option<u64>,
    /// Random extra delay, so replicas and environments do not poll in lockstep. Default 30.
    pub jitter_secs: Option<u64>,
    /// Per-API request budget (requests per second) shared by the watcher and diagnostics.
    /// Default 5, well under CodePipeline's and CloudWatch's published limits.
    pub max_requests_per_second: Option<f64>,
}

/// `[notifiers]`: where posts go.
#[derive(Debug, Default, Deserialize)]
pub struct RawNotifiers {
    pub slack: Option<RawSlack>,
    pub sns: Option<RawSns>,
    pub pagerduty: Option<super::RawPagerDuty>,
    pub opsgenie: Option<super::RawOpsgenie>,
    pub teams: Option<super::RawTeams>,
    pub webhook: Option<super::RawWebhook>,
}

/// `[notifiers.slack]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawSlack {
    /// Default true when a webhook URL or bot token is set.
    pub enabled: Option<bool>,
    /// Incoming webhook URL (secret: `${SLACK_WEBHOOK_URL}`).
    pub webhook_url: Option<String>,
    /// Bot token for `chat.postMessage`, threads and `chat.update` (secret: `${SLACK_BOT_TOKEN}`).
    pub bot_token: Option<String>,
    /// Signing secret that verifies `POST /slack/interactions` (secret: `${SLACK_SIGNING_SECRET}`).
    pub signing_secret: Option<String>,
    /// Slack Web API base URL; change only to point at a fake in tests. Default
    /// `https://slack.com/api`.
    pub api_base_url: Option<String>,
    /// Channel for posts when an environment names none. Default `#deployments`.
    pub default_channel: Option<String>,
}

/// `[notifiers.sns]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawSns {
    /// Publish to each environment's `sns_topic_arn`. Default true.
    pub enabled: Option<bool>,
}

/// `[escalation]`: levels and the cross-incident rules of the runbook's escalation procedure.
#[derive(Debug, Default, Deserialize)]
pub struct RawEscalation {
    /// Ordered from first to last (L1, L2, L3).
    pub levels: Option<Vec<RawLevel>>,
    pub multi_environment: Option<RawMultiEnvironment>,
    pub outage: Option<RawOutage>,
    pub rollback_failed: Option<RawRollbackFailed>,
}

/// `[[escalation.levels]]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawLevel {
    /// Short id used by policies, e.g. `L2`.
    pub id: Option<String>,
    /// Who this is, e.g. `DevOps team lead`.
    pub name: Option<String>,
    /// Slack mention added to escalation posts, e.g. `<!subteam^S0123>` or `@devops-lead`.
    pub slack_mention: Option<String>,
    /// Extra SNS topic ARN paged at this level (e.g. with email/SMS subscriptions).
    pub sns_topic_arn: Option<String>,
    /// Contact shown in posts (e.g. `devops@example.com`).
    pub contact: Option<String>,
    /// Other notifiers paged at this level, by kind, e.g.
    /// `{ pagerduty = "sre", opsgenie = "team:SRE" }`.
    pub notify: Option<std::collections::BTreeMap<String, String>>,
}

/// `[escalation.multi_environment]`: runbook "Multiple environments affected" → L2.
#[derive(Debug, Default, Deserialize)]
pub struct RawMultiEnvironment {
    /// Distinct environments with open incidents that trigger the rule. Default 2.
    pub environments: Option<u64>,
    /// Window the incidents must have opened in. Default 1800.
    pub window_secs: Option<u64>,
    /// Level notified. Default `L2`.
    pub level: Option<String>,
}

/// `[escalation.outage]`: runbook "AWS service outage" → L3.
#[derive(Debug, Default, Deserialize)]
pub struct RawOutage {
    /// Distinct pipelines failing with the same AWS error that trigger the rule. Default 2.
    pub pipelines: Option<u64>,
    /// Window. Default 900.
    pub window_secs: Option<u64>,
    /// Level notified. Default `L3`.
    pub level: Option<String>,
    /// Substrings of an action's error code or summary that point at AWS rather than the code
    /// (matched case-insensitively).
    pub error_patterns: Option<Vec<String>>,
}

/// `[escalation.rollback_failed]`: runbook "If rollback fails, escalate immediately".
#[derive(Debug, Default, Deserialize)]
pub struct RawRollbackFailed {
    /// Levels notified at once. Default `["L2", "L3"]`.
    pub levels: Option<Vec<String>>,
}

/// `[storm]`: one summary post instead of a flood.
#[derive(Debug, Default, Deserialize)]
pub struct RawStorm {
    /// Incidents opened within `window_secs` above which posts are summarised. Default 5.
    pub max_incidents: Option<u64>,
    /// Default 60.
    pub window_secs: Option<u64>,
}

/// `[digest]`: the weekly (or daily) summary of the pipelines' health: failures, flapping
/// alarms, slow or stuck executions. Posted once per period across replicas and restarts.
#[derive(Debug, Default, Deserialize)]
pub struct RawDigest {
    /// Default true.
    pub enabled: Option<bool>,
    /// How often: `week` or `day`. Default `week`.
    pub every: Option<String>,
    /// Day of a weekly digest: `monday` … `sunday` (or `mon` … `sun`), any case. Default
    /// `monday`. Only with `every = "week"`.
    pub day: Option<String>,
    /// Time of day in UTC, `HH:MM` or `HH:MM:SS`. Default `09:00`.
    pub at: Option<String>,
    /// Days the digest looks back over. Default 7 for `week`, 1 for `day`.
    pub window_days: Option<u64>,
    /// An alarm incident resolved automatically within this many seconds counts as flapping.
    /// Default 600.
    pub flap_secs: Option<u64>,
    /// An execution running longer than this is listed as stuck or very old. Default 7200.
    pub stale_execution_secs: Option<u64>,
    /// Channel of the digest. Default: each environment's own Slack channel.
    pub slack_channel: Option<String>,
}

/// `[remediation]`: automatic actions; off unless enabled, never in dry-run.
#[derive(Debug, Default, Deserialize)]
pub struct RawRemediation {
    /// Master switch. Default false.
    pub enabled: Option<bool>,
    /// Runbook Incident 3 step 5: stop a stuck execution and start a new one. Default false.
    pub restart_stuck_executions: Option<bool>,
    /// Rate limit per pipeline. Default 1 per 24 h.
    pub max_per_pipeline_per_day: Option<u64>,
    /// Who may approve or reject (Slack user ids `U…`/`W…`, user-group ids `S…`, or the names
    /// API callers give with `--by`), unless an environment says otherwise. Default: nobody.
    pub approvers: Option<Vec<String>>,
    /// Who may retry, restart or start an execution (same forms). Default: nobody.
    pub operators: Option<Vec<String>>,
}

/// `[thresholds]`: the runbook's numbers.
#[derive(Debug, Default, Deserialize)]
pub struct RawThresholds {
    /// An execution running longer than this is `deployment_duration_exceeded`. Default 3600.
    pub deployment_duration_secs: Option<u64>,
    /// No action progress for this long means "stuck". Default 900.
    pub stuck_after_secs: Option<u64>,
    /// Minimum coverage in percent. Default 80.
    pub coverage_percent: Option<f64>,
    /// Slow executions of one pipeline within `slow_recurrence_window_secs` that escalate to
    /// the DevOps level ("if consistently slow"). Default 3.
    pub slow_recurrence_count: Option<u64>,
    /// Default 604800 (7 days).
    pub slow_recurrence_window_secs: Option<u64>,
    /// Level notified for recurring slowness. Default `L2`.
    pub slow_recurrence_level: Option<String>,
}

/// `[detection]`: how signals map to incident types.
#[derive(Debug, Default, Deserialize)]
pub struct RawDetection {
    /// Action names treated as manual approvals (besides any action of category `Approval`).
    /// Default `["ApproveProduction"]`.
    pub approval_actions: Option<Vec<String>>,
    /// Alarm name suffixes (after the environment's alarm prefix) and the type they open.
    pub alarm_rules: Option<Vec<RawAlarmRule>>,
    /// What any other alarm under an environment's prefix means: `rollback_triggered` (the
    /// runbook's rollback Lambda acts on application alarms) or `ignore`. Default
    /// `rollback_triggered`.
    pub unmatched_alarms: Option<String>,
}

/// `[[detection.alarm_rules]]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawAlarmRule {
    /// e.g. `-pipeline-failures`.
    pub suffix: Option<String>,
    /// e.g. `pipeline_execution_failure`.
    pub incident_type: Option<String>,
}

/// One environment, or `[environment_defaults]` for all. Strings are templates: `{env}` is the
/// environment name, `{prefix}` the resolved `resource_prefix`, `{region}` and `{account}` come
/// from `[aws]`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawEnvironment {
    /// e.g. `production`. Required on each `[[environments]]` entry.
    pub name: Option<String>,
    /// Default `kiro-pipeline-{env}`: one line gives every runbook name below.
    pub resource_prefix: Option<String>,
    /// CodePipeline name. Default `{prefix}`.
    pub pipeline: Option<String>,
    /// Alarm name prefix for `DescribeAlarms`. Default `{prefix}`.
    pub alarm_prefix: Option<String>,
    /// CodeBuild build project (its log group is `/aws/codebuild/<project>`). Default
    /// `{prefix}-build`.
    pub build_project: Option<String>,
    /// Log group searched for the build log excerpt. Default `/aws/codebuild/{prefix}-build`.
    pub build_log_group: Option<String>,
    /// Log group of the rollback Lambda. Default `/aws/lambda/{prefix}-rollback`.
    pub rollback_log_group: Option<String>,
    /// DynamoDB deployments table. Default `{prefix}-deployments`.
    pub deployments_table: Option<String>,
    /// URL the health-check diagnostic GETs (e.g. `https://app.example.com/health`). Optional.
    pub health_url: Option<String>,
    /// SNS topic for incident posts. Default
    /// `arn:aws:sns:{region}:{account}:{prefix}-deployments`.
    pub sns_topic_arn: Option<String>,
    /// Slack channel. Default `[notifiers.slack] default_channel`.
    pub slack_channel: Option<String>,
    /// Other notifiers every post of the environment goes to, by kind, e.g.
    /// `{ teams = "ops", webhook = "audit" }`.
    pub notify: Option<std::collections::BTreeMap<String, String>>,
    /// Set false to keep an environment in the file but stop watching it. Default true.
    pub enabled: Option<bool>,
    /// Who may approve or reject here. Default `[remediation] approvers`.
    pub approvers: Option<Vec<String>>,
    /// Who may retry, restart or start an execution here. Default `[remediation] operators`.
    pub operators: Option<Vec<String>>,
    /// Distinct people who must approve before the approval is sent. Default 2 for
    /// `production`, 1 elsewhere.
    pub approvals_required: Option<u32>,
}

/// `[policies.<incident_type>]`: overrides of the built-in, runbook-derived policy.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawPolicy {
    /// Default true. A disabled type opens no incidents.
    pub enabled: Option<bool>,
    /// Severity everywhere unless `severity_by_environment` says otherwise.
    pub severity: Option<String>,
    /// e.g. `{ production = "high" }`.
    pub severity_by_environment: Option<BTreeMap<String, String>>,
    /// How fast a human should acknowledge (shown in posts; 0 = no target).
    pub ack_target_secs: Option<u64>,
    /// Escalation steps, replacing the built-in ones when given.
    pub escalation: Option<Vec<RawStep>>,
    /// Diagnostics, each overriding the built-in entry of the same name.
    pub diagnostics: Option<RawDiagnostics>,
}

/// One escalation step.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawStep {
    /// Level id from `[[escalation.levels]]`.
    pub level: Option<String>,
    /// Seconds after the incident opened. 0 = at once.
    pub after_secs: Option<u64>,
    /// What stops the step: `acknowledged` (default: an ack stops escalation) or `resolved`.
    pub until: Option<String>,
    /// Repeat the step (reminder) every so many seconds.
    pub repeat_every_secs: Option<u64>,
    /// How many repeats at most. Default 0 without `repeat_every_secs`, 8 with it.
    pub max_repeats: Option<u64>,
    /// Extra condition: `critical_findings` (the security scan found CRITICAL issues).
    pub when: Option<String>,
}

/// `[policies.<type>.diagnostics]`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawDiagnostics {
    /// Failed stage/action, error summary and link (`GetPipelineState`, `ListActionExecutions`).
    pub pipeline_state: Option<RawToggle>,
    /// Commit that triggered the execution (`GetPipelineExecution`).
    pub execution_details: Option<RawToggle>,
    /// Build log excerpt (`FilterLogEvents` on the build log group).
    pub build_log: Option<RawLogSearch>,
    /// Lines around `Coverage` and the parsed figure.
    pub coverage_report: Option<RawLogSearch>,
    /// Lines around `security`, cfn-guard rules and npm audit counts.
    pub security_report: Option<RawLogSearch>,
    /// Rollback Lambda log.
    pub rollback_log: Option<RawLogSearch>,
    /// Latest deployment record (`Query` on `EnvironmentStatusIndex`).
    pub deployment_record: Option<RawToggle>,
    /// Alarms in ALARM under the environment's prefix.
    pub alarms: Option<RawToggle>,
    /// `GET` of the environment's health URL.
    pub health_check: Option<RawHealthCheck>,
    /// Per-stage durations, slowest stage, stuck or not.
    pub stage_durations: Option<RawToggle>,
    /// Another environment's last execution and alarms (approval: "verify staging").
    pub related_environment: Option<RawRelatedEnvironment>,
}

/// A diagnostic with no parameters.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawToggle {
    pub enabled: Option<bool>,
    /// Time budget. Default 10.
    pub timeout_secs: Option<u64>,
}

/// A CloudWatch Logs search.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawLogSearch {
    pub enabled: Option<bool>,
    /// How far back to search.
    pub window_secs: Option<u64>,
    /// Filter patterns (any matches).
    pub patterns: Option<Vec<String>>,
    /// Lines kept after each match.
    pub context_lines: Option<u64>,
    /// Most lines in the excerpt.
    pub max_lines: Option<u64>,
    /// Time budget. Default 10.
    pub timeout_secs: Option<u64>,
}

/// The health check.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawHealthCheck {
    pub enabled: Option<bool>,
    /// Default 5.
    pub timeout_secs: Option<u64>,
    /// Status accepted as healthy. Default 200–399.
    pub expect_status_below: Option<u64>,
}

/// Another environment's facts.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawRelatedEnvironment {
    pub enabled: Option<bool>,
    /// Default `staging`.
    pub environment: Option<String>,
    pub timeout_secs: Option<u64>,
}
