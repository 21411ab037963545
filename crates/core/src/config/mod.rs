//! Configuration: the TOML file ([`raw`]), its loading and validation ([`load`]), the
//! runbook-derived defaults ([`defaults`]), and the resolved, validated types below that the rest
//! of the program uses.

pub mod defaults;
mod load;
mod notifiers;
pub mod raw;
mod resolve;
mod secret;

pub use load::{
    load_file, load_reading_file, load_str, ConfigError, ConfigErrors, MAX_DURATION_SECS,
};
pub use notifiers::{
    opsgenie_responders, ChannelSpec, Endpoint, OpsgenieConfig, PagerDutyConfig, RawEndpoint,
    RawOpsgenie, RawPagerDuty, RawTeams, RawWebhook, TeamsConfig, WebhookConfig,
};
pub use resolve::{DYNAMODB_MAX_TIMERS, MIN_API_TOKEN_CHARS};
pub use secret::{expand_env, ExpandError, Secret};

use crate::incident::{IncidentType, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The validated configuration. Built only by [`load_str`] / [`load_file`].
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub aws: AwsConfig,
    pub http: HttpConfig,
    pub store: StoreConfig,
    /// `store.retention_days`: resolved incidents, processed-event ids and settled posts are
    /// kept this long, then pruned (SQLite) or expired by TTL (DynamoDB).
    pub retention_days: u32,
    pub sources: SourcesConfig,
    pub notifiers: NotifiersConfig,
    pub escalation: EscalationConfig,
    pub storm: StormConfig,
    pub digest: DigestConfig,
    pub remediation: RemediationConfig,
    pub thresholds: Thresholds,
    pub detection: Detection,
    pub diagnosis: DiagnosisConfig,
    pub environments: Vec<Environment>,
    pub policies: BTreeMap<IncidentType, Policy>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonConfig {
    pub dry_run: bool,
    pub shutdown_grace_secs: u64,
    pub first_post_wait_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AwsConfig {
    pub region: String,
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub api_token: Option<Secret>,
    /// Connections open at once at most (also bounded by the open-file limit at run time).
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoreConfig {
    Embedded { path: String },
    Dynamodb { table: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct SourcesConfig {
    /// `None` when disabled.
    pub sqs: Option<SqsConfig>,
    /// `None` when disabled.
    pub watcher: Option<WatcherConfig>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SqsConfig {
    pub queue_url: String,
    pub wait_time_secs: u64,
    pub max_messages: u64,
    pub visibility_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WatcherConfig {
    pub interval_secs: u64,
    pub jitter_secs: u64,
    pub max_requests_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotifiersConfig {
    /// `None` when Slack is off.
    pub slack: Option<SlackConfig>,
    pub sns_enabled: bool,
    pub pagerduty: Option<PagerDutyConfig>,
    pub opsgenie: Option<OpsgenieConfig>,
    pub teams: Option<TeamsConfig>,
    pub webhook: Option<WebhookConfig>,
    /// What each configured notifier kind is sent, by kind (`slack`, `sns`, `pagerduty`, ...).
    pub channels: BTreeMap<String, ChannelSpec>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlackConfig {
    pub webhook_url: Option<Secret>,
    pub bot_token: Option<Secret>,
    pub signing_secret: Option<Secret>,
    pub api_base_url: String,
    pub default_channel: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EscalationConfig {
    /// Ordered from the first level (index 0, `L1`) up.
    pub levels: Vec<Level>,
    pub multi_environment: MultiEnvironmentRule,
    pub outage: OutageRule,
    /// Level indexes notified at once when a rollback fails.
    pub rollback_failed_levels: Vec<usize>,
}

impl EscalationConfig {
    /// Index of the level with this id.
    pub fn level_index(&self, id: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.id == id)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub id: String,
    pub name: String,
    pub slack_mention: Option<String>,
    pub sns_topic_arn: Option<String>,
    pub contact: Option<String>,
    /// Where this level is paged, by notifier kind (`sns` = `sns_topic_arn`, then `notify`).
    pub targets: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MultiEnvironmentRule {
    pub environments: usize,
    pub window_secs: u64,
    pub level: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutageRule {
    pub pipelines: usize,
    pub window_secs: u64,
    pub level: usize,
    pub error_patterns: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StormConfig {
    pub max_incidents: u64,
    pub window_secs: u64,
}

/// `[digest]`: when the periodic health summary is posted and what it flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestConfig {
    /// Whether the digest is posted at all.
    pub enabled: bool,
    /// The period: weekly on a day, or daily.
    pub every: DigestEvery,
    /// Time of day of the post, in UTC.
    pub at: chrono::NaiveTime,
    /// How many days back the digest looks.
    pub window_days: u32,
    /// An alarm incident resolved automatically within this time counts as flapping.
    pub flap_secs: u64,
    /// An execution running longer than this is listed as stuck or very old.
    pub stale_execution_secs: u64,
    /// Channel of the digest; `None` = each environment's own Slack channel.
    pub slack_channel: Option<String>,
}

impl Default for DigestConfig {
    /// The digest of a configuration without `[digest]`: Mondays 09:00 UTC over 7 days.
    fn default() -> Self {
        Self {
            enabled: true,
            every: DigestEvery::Week(defaults::DIGEST_DAY),
            at: defaults::digest_at(),
            window_days: defaults::DIGEST_WINDOW_DAYS_WEEK,
            flap_secs: defaults::DIGEST_FLAP_SECS,
            stale_execution_secs: defaults::DIGEST_STALE_EXECUTION_SECS,
            slack_channel: None,
        }
    }
}

/// How often the digest is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestEvery {
    /// Once a week, on this day.
    Week(chrono::Weekday),
    /// Every day.
    Day,
}

#[derive(Debug, Clone, Serialize)]
pub struct RemediationConfig {
    pub enabled: bool,
    pub restart_stuck_executions: bool,
    pub max_per_pipeline_per_day: u64,
}

/// Who may act on an environment's incidents from a post, the API or the CLI.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Guards {
    /// Slack user ids, user-group ids (`S…`) or API names allowed to approve or reject.
    pub approvers: Vec<String>,
    /// The same, for retry, stop-and-restart and start.
    pub operators: Vec<String>,
    /// Distinct approvers needed (the two-person rule when 2).
    pub approvals_required: u32,
}

/// `[diagnosis]`.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosisConfig {
    pub compare_with_last_green: bool,
    pub causes: Vec<Cause>,
}

impl Default for DiagnosisConfig {
    fn default() -> Self {
        Self {
            compare_with_last_green: true,
            causes: Vec::new(),
        }
    }
}

/// A known failure cause: the first whose pattern matches decides the class.
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    pub name: String,
    #[serde(serialize_with = "serialize_regex")]
    pub pattern: regex::Regex,
    pub class: crate::finding::RootCauseClass,
    pub hint: Option<String>,
    pub runbook_url: Option<String>,
    /// Known to be flaky: the post offers "Retry failed stage".
    pub flaky: bool,
}

impl Cause {
    /// A cause from its parts (the pattern must be a valid regular expression).
    pub fn new(
        name: &str,
        pattern: &str,
        class: crate::finding::RootCauseClass,
        hint: Option<&str>,
    ) -> Result<Self, regex::Error> {
        Ok(Self {
            name: name.to_string(),
            pattern: regex::Regex::new(pattern)?,
            class,
            hint: hint.map(String::from),
            runbook_url: None,
            flaky: false,
        })
    }
}

fn serialize_regex<S: serde::Serializer>(re: &regex::Regex, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(re.as_str())
}

#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    pub deployment_duration_secs: u64,
    pub stuck_after_secs: u64,
    pub coverage_percent: f64,
    pub slow_recurrence_count: usize,
    pub slow_recurrence_window_secs: u64,
    pub slow_recurrence_level: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub approval_actions: Vec<String>,
    pub alarm_rules: Vec<AlarmRule>,
    /// Type opened by other alarms under an environment's prefix; `None` = ignore them.
    pub unmatched_alarms: Option<IncidentType>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlarmRule {
    pub suffix: String,
    pub incident_type: IncidentType,
}

/// One watched environment with every runbook resource name resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub name: String,
    pub pipeline: String,
    pub alarm_prefix: String,
    pub build_project: String,
    pub build_log_group: String,
    pub rollback_log_group: String,
    pub deployments_table: String,
    pub health_url: Option<String>,
    /// `None` when SNS is off.
    pub sns_topic_arn: Option<String>,
    pub slack_channel: String,
    /// Where every post of this environment goes, by notifier kind: `slack` = `slack_channel`,
    /// `sns` = `sns_topic_arn` (when those notifiers are on), then the `notify` map.
    pub targets: BTreeMap<String, String>,
    /// Who may act here.
    pub guards: Guards,
}

/// What to do for one incident type.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub enabled: bool,
    pub severity: Severity,
    pub severity_by_environment: BTreeMap<String, Severity>,
    /// `None` = no acknowledgement target (e.g. approvals).
    pub ack_target_secs: Option<u64>,
    pub steps: Vec<Step>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Policy {
    pub fn severity_for(&self, environment: &str) -> Severity {
        self.severity_by_environment
            .get(environment)
            .copied()
            .unwrap_or(self.severity)
    }
}

/// One escalation step of a policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Index into [`EscalationConfig::levels`].
    pub level: usize,
    pub after_secs: u64,
    pub until: Until,
    pub repeat_every_secs: Option<u64>,
    pub max_repeats: u64,
    pub when: Option<StepCondition>,
}

/// What stops an escalation step from firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    /// An acknowledgement (or resolution) stops it.
    Acknowledged,
    /// Only resolution stops it (the runbook's "if not resolved in 60 min").
    Resolved,
}

/// Extra condition on a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepCondition {
    /// The security scan reported CRITICAL findings.
    CriticalFindings,
}

/// A diagnostic to run for an incident, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Diagnostic {
    PipelineState {
        timeout_secs: u64,
    },
    ExecutionDetails {
        timeout_secs: u64,
    },
    BuildLog(LogSearch),
    CoverageReport(LogSearch),
    SecurityReport(LogSearch),
    RollbackLog(LogSearch),
    DeploymentRecord {
        timeout_secs: u64,
    },
    Alarms {
        timeout_secs: u64,
    },
    HealthCheck {
        timeout_secs: u64,
        expect_status_below: u16,
    },
    StageDurations {
        timeout_secs: u64,
    },
    RelatedEnvironment {
        environment: String,
        timeout_secs: u64,
    },
}

impl Diagnostic {
    pub fn name(&self) -> &'static str {
        match self {
            Self::PipelineState { .. } => "pipeline_state",
            Self::ExecutionDetails { .. } => "execution_details",
            Self::BuildLog(_) => "build_log",
            Self::CoverageReport(_) => "coverage_report",
            Self::SecurityReport(_) => "security_report",
            Self::RollbackLog(_) => "rollback_log",
            Self::DeploymentRecord { .. } => "deployment_record",
            Self::Alarms { .. } => "alarms",
            Self::HealthCheck { .. } => "health_check",
            Self::StageDurations { .. } => "stage_durations",
            Self::RelatedEnvironment { .. } => "related_environment",
        }
    }
}

/// Parameters of a CloudWatch Logs search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSearch {
    pub window_secs: u64,
    pub patterns: Vec<String>,
    pub context_lines: u64,
    pub max_lines: u64,
    pub timeout_secs: u64,
}

impl Config {
    /// Every secret the configuration holds (so that none is ever posted, stored or served).
    pub fn secrets(&self) -> Vec<&str> {
        self.http
            .api_token
            .iter()
            .chain(self.notifiers.secrets())
            .map(Secret::expose)
            .collect()
    }

    /// The redactor of untrusted text under this configuration.
    pub fn redactor(&self) -> crate::redact::Redactor {
        crate::redact::Redactor::new(self.secrets())
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    pub fn environment_for_pipeline(&self, pipeline: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.pipeline == pipeline)
    }

    /// The environment whose alarm prefix is the longest prefix of `alarm`.
    pub fn environment_for_alarm(&self, alarm: &str) -> Option<&Environment> {
        self.environments
            .iter()
            .filter(|e| alarm.starts_with(&e.alarm_prefix))
            .max_by_key(|e| e.alarm_prefix.len())
    }

    pub fn environment_for_build_project(&self, project: &str) -> Option<&Environment> {
        self.environments
            .iter()
            .find(|e| e.build_project == project)
    }

    pub fn policy(&self, incident_type: IncidentType) -> &Policy {
        // Every type is filled in by the loader (built-in default when not configured).
        &self.policies[&incident_type]
    }
}
