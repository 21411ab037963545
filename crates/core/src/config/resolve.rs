//! Raw TOML values → resolved [`Config`]: defaults, `${ENV}` expansion, `{env}` templates, and
//! every semantic check. Problems are pushed to the shared error list; the returned `Config` is
//! only used when that list stays empty.

use super::defaults;
use super::raw::*;
use super::secret::{expand_env, ExpandError, Secret};
use super::*;
use crate::config::load::ConfigError;
use crate::incident::{IncidentType, Severity};
use std::collections::{BTreeMap, BTreeSet};

/// Shortest bearer token `http.api_token` may be (the listener is reachable wherever the Slack
/// button is).
pub const MIN_API_TOKEN_CHARS: usize = 32;

/// Most timers (escalations and reminders) one policy may schedule per incident with the
/// DynamoDB store: a change that cancels one policy's timers and schedules another's, with the
/// incident, its timeline, the processed-event records and the posts, stays within one
/// transaction's 100 items.
pub const DYNAMODB_MAX_TIMERS: u64 = 40;

pub(crate) struct Resolver<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: &'a mut Vec<ConfigError>,
    /// `aws.account_id` was given but could not be expanded (already reported once).
    account_failed: bool,
    /// Paths already reported while reading the file (wrong type, unknown key). What the
    /// resolver finds at or under them is a consequence (a default stood in for the bad value),
    /// not a second mistake, and is not reported.
    reported: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(
        env: &'a dyn Fn(&str) -> Option<String>,
        errors: &'a mut Vec<ConfigError>,
    ) -> Self {
        let reported = errors.iter().map(|e| e.path.clone()).collect();
        Self {
            env,
            errors,
            account_failed: false,
            reported,
        }
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        if self.already_reported(&path) {
            return;
        }
        self.errors.push(ConfigError {
            path,
            message: message.into(),
        });
    }

    pub(crate) fn resolve(mut self, raw: RawConfig) -> Config {
        let daemon = self.daemon(raw.daemon.unwrap_or_default());
        let aws = self.aws(raw.aws.unwrap_or_default());
        let http = self.http(raw.http.unwrap_or_default());
        let raw_store = raw.store.unwrap_or_default();
        let retention_days = self.in_range(
            "store.retention_days",
            raw_store.retention_days,
            90,
            8,
            3650,
        ) as u32;
        let store = self.store(raw_store);
        let sources = raw.sources.unwrap_or_default();
        let sources = SourcesConfig {
            sqs: self.sqs(sources.sqs.unwrap_or_default()),
            watcher: self.watcher(sources.watcher.unwrap_or_default()),
        };
        let notifiers = self.notifiers(raw.notifiers.unwrap_or_default());
        let escalation = self.escalation(raw.escalation.unwrap_or_default(), &notifiers);
        let storm = self.storm(raw.storm.unwrap_or_default());
        let digest = self.digest(raw.digest.unwrap_or_default());
        let raw_remediation = raw.remediation.unwrap_or_default();
        let remediation = self.remediation(&raw_remediation);
        let thresholds = self.thresholds(raw.thresholds.unwrap_or_default(), &escalation);
        let detection = self.detection(raw.detection.unwrap_or_default());
        let diagnosis = self.diagnosis(raw.diagnosis.unwrap_or_default());
        let environments = self.environments(
            raw.environment_defaults.unwrap_or_default(),
            raw.environments,
            &aws,
            &notifiers,
            &raw_remediation,
        );
        let policies = self.policies(raw.policies.unwrap_or_default(), &escalation, &environments);
        if matches!(store, StoreConfig::Dynamodb { .. }) {
            self.fits_dynamodb(&policies);
        }
        Config {
            daemon,
            aws,
            http,
            store,
            retention_days,
            sources,
            notifiers,
            escalation,
            storm,
            digest,
            remediation,
            thresholds,
            detection,
            diagnosis,
            environments,
            policies,
        }
    }

    /// `path`, or a value containing it, was already reported while reading the file. A bad
    /// `enabled` covers its whole section: whether the section's requirements apply is unknown.
    fn already_reported(&self, path: &str) -> bool {
        self.reported.iter().any(|r| {
            let covered = r.strip_suffix(".enabled").unwrap_or(r);
            path.strip_prefix(covered)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    // ----- scalar helpers -------------------------------------------------------------------

    /// Expands `${VAR}` in a plain (non-secret) string.
    fn expand(&mut self, path: &str, raw: &str) -> String {
        match expand_env(raw, self.env) {
            Ok((value, _)) => value,
            Err(e) => {
                self.expand_error(path, e);
                String::new()
            }
        }
    }

    fn expand_error(&mut self, path: &str, e: ExpandError) {
        match e {
            ExpandError::Unset(name) => self.error(
                path,
                format!("environment variable {name} is not set; export it (in ECS: a task definition secret or environment entry) or give a default with ${{{name}:-value}}"),
            ),
            ExpandError::Malformed(why) => self.error(path, why),
        }
    }

    /// A secret: `${VAR}` expanded; the value never appears in any message.
    fn secret(&mut self, path: &str, raw: Option<String>) -> Option<Secret> {
        let raw = raw?;
        match expand_env(&raw, self.env) {
            // `${VAR:-}` with VAR unset means "not configured"; a literal "" is a mistake.
            Ok((value, used)) if value.trim().is_empty() => {
                if used.is_empty() {
                    self.error(
                        path,
                        "is empty; set it to the secret's ${ENV_VAR} reference or remove the key",
                    );
                }
                None
            }
            Ok((value, used)) => {
                // A secret read from a file or a console often ends in a newline: trim it, or
                // every request would be refused with a token that looks right.
                let value = value.trim().to_string();
                if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    self.error(
                        path,
                        "contains spaces or control characters; a token or secret is one word: check the value (a pasted line break?)",
                    );
                    return None;
                }
                let origin = if used.is_empty() {
                    "(written in the file)".to_string()
                } else {
                    used.iter()
                        .map(|n| format!("${{{n}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                Some(Secret::new(value, origin))
            }
            Err(e) => {
                self.expand_error(path, e);
                None
            }
        }
    }

    fn positive(&mut self, path: &str, value: Option<u64>, default: u64) -> u64 {
        match value {
            Some(0) => {
                self.error(
                    path,
                    format!(
                        "must be greater than 0; write a positive whole number (default {default})"
                    ),
                );
                default
            }
            Some(v) => v,
            None => default,
        }
    }

    fn in_range(
        &mut self,
        path: &str,
        value: Option<u64>,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        match value {
            Some(v) if v < min || v > max => {
                self.error(
                    path,
                    format!("{v} is out of range; use a value from {min} to {max}"),
                );
                default
            }
            Some(v) => v,
            None => default,
        }
    }

    fn level_ref(&mut self, path: &str, id: &str, escalation_levels: &[Level]) -> usize {
        match escalation_levels.iter().position(|l| l.id == id) {
            Some(i) => i,
            None => {
                let known: Vec<&str> = escalation_levels.iter().map(|l| l.id.as_str()).collect();
                self.error(
                    path,
                    format!(
                        "undefined escalation level {id:?}; define it under [[escalation.levels]] or use one of: {}",
                        known.join(", ")
                    ),
                );
                0
            }
        }
    }

    fn severity(&mut self, path: &str, raw: &str) -> Option<Severity> {
        let parsed = match raw {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            other => {
                self.error(
                    path,
                    format!("unknown severity {other:?}; use info, low, medium, high or critical"),
                );
                return None;
            }
        };
        Some(parsed)
    }

    fn incident_type(&mut self, path: &str, raw: &str) -> Option<IncidentType> {
        let parsed = IncidentType::parse(raw);
        if parsed.is_none() {
            self.error(
                path,
                format!(
                    "unknown incident type {raw:?}; use one of: {}",
                    type_names()
                ),
            );
        }
        parsed
    }

    // ----- sections -------------------------------------------------------------------------

    fn daemon(&mut self, raw: RawDaemon) -> DaemonConfig {
        DaemonConfig {
            dry_run: raw.dry_run.unwrap_or(false),
            shutdown_grace_secs: self.in_range(
                "daemon.shutdown_grace_secs",
                raw.shutdown_grace_secs,
                defaults::SHUTDOWN_GRACE_SECS,
                1,
                120,
            ),
            first_post_wait_secs: self.in_range(
                "daemon.first_post_wait_secs",
                raw.first_post_wait_secs,
                8,
                0,
                60,
            ),
        }
    }

    fn aws(&mut self, raw: RawAws) -> AwsConfig {
        let region = match raw.region {
            Some(r) => self.expand("aws.region", &r),
            None => defaults::REGION.to_string(),
        };
        if !region.is_empty()
            && !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            self.error(
                "aws.region",
                format!("{region:?} is not an AWS region name; write e.g. us-east-1"),
            );
        }
        let before = self.errors.len();
        let account_id = raw.account_id.map(|a| self.expand("aws.account_id", &a));
        self.account_failed = self.errors.len() > before || self.already_reported("aws.account_id");
        if let Some(account) = &account_id {
            if !account.is_empty()
                && (account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()))
            {
                self.error(
                    "aws.account_id",
                    format!("{account:?} is not a 12-digit AWS account id"),
                );
            }
        }
        AwsConfig {
            region,
            account_id: account_id.filter(|a| !a.is_empty()),
        }
    }

    fn http(&mut self, raw: RawHttp) -> HttpConfig {
        let listen_raw = match raw.listen {
            Some(l) => self.expand("http.listen", &l),
            None => defaults::LISTEN.to_string(),
        };
        let listen = match listen_raw.parse() {
            Ok(addr) => addr,
            Err(_) => {
                self.error(
                    "http.listen",
                    format!("{listen_raw:?} is not an IP address and port; write e.g. 0.0.0.0:9090 (all interfaces) or 127.0.0.1:9090 (host names are not resolved)"),
                );
                ([0, 0, 0, 0], 9090).into()
            }
        };
        let api_token = self.secret("http.api_token", raw.api_token);
        if let Some(token) = &api_token {
            let n = token.expose().chars().count();
            if n < MIN_API_TOKEN_CHARS {
                self.error(
                    "http.api_token",
                    format!("is {n} characters long; anyone who can reach the listener can guess a short token: use at least {MIN_API_TOKEN_CHARS} random characters, e.g. the output of `openssl rand -hex 32`"),
                );
            }
        }
        HttpConfig {
            listen,
            api_token,
            max_connections: self.in_range(
                "http.max_connections",
                raw.max_connections,
                512,
                8,
                100_000,
            ) as usize,
        }
    }

    fn store(&mut self, raw: RawStore) -> StoreConfig {
        // `${VAR}` allowed, so one shipped file serves one task (embedded) and a replicated
        // service (dynamodb, set by the deploy kit's task definition).
        let kind = match &raw.kind {
            Some(k) => self.expand("store.kind", k),
            None => "embedded".to_string(),
        };
        match kind.as_str() {
            "embedded" => {
                let path = raw.path.unwrap_or_else(|| defaults::STORE_PATH.into());
                let path = self.expand("store.path", &path);
                if path.is_empty() {
                    self.error(
                        "store.path",
                        "is empty; set the file of the embedded store (on a mounted volume in ECS)",
                    );
                }
                StoreConfig::Embedded { path }
            }
            "dynamodb" => {
                let table = match raw.table {
                    Some(t) => {
                        let reported = self.errors.len();
                        let table = self.expand("store.table", &t);
                        if table.trim().is_empty() && self.errors.len() == reported {
                            self.error(
                                "store.table",
                                "is empty; name the state table (in ECS: the PIPELINE_RESPONDER_TABLE the stack sets)",
                            );
                        }
                        table
                    }
                    None => {
                        self.error("store.table", "required when store.kind = \"dynamodb\"; set the state table created by deploy/");
                        String::new()
                    }
                };
                StoreConfig::Dynamodb { table }
            }
            other => {
                self.error(
                    "store.kind",
                    format!("unknown store {other:?}; use \"embedded\" or \"dynamodb\""),
                );
                StoreConfig::Embedded {
                    path: String::new(),
                }
            }
        }
    }

    fn sqs(&mut self, raw: RawSqs) -> Option<SqsConfig> {
        if !raw.enabled.unwrap_or(true) {
            return None;
        }
        let queue_url = match raw.queue_url {
            Some(url) => {
                let url = self.expand("sources.sqs.queue_url", &url);
                if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
                    self.error("sources.sqs.queue_url", format!("{url:?} is not a queue URL; write https://sqs.<region>.amazonaws.com/<account>/<queue>"));
                }
                url
            }
            None => {
                self.error("sources.sqs.queue_url", "required while sources.sqs is enabled; set the URL of the EventBridge queue or set sources.sqs.enabled = false");
                String::new()
            }
        };
        Some(SqsConfig {
            queue_url,
            wait_time_secs: self.in_range(
                "sources.sqs.wait_time_secs",
                raw.wait_time_secs,
                20,
                0,
                20,
            ),
            max_messages: self.in_range("sources.sqs.max_messages", raw.max_messages, 10, 1, 10),
            visibility_timeout_secs: self.in_range(
                "sources.sqs.visibility_timeout_secs",
                raw.visibility_timeout_secs,
                60,
                1,
                43_200,
            ),
        })
    }

    fn watcher(&mut self, raw: RawWatcher) -> Option<WatcherConfig> {
        if !raw.enabled.unwrap_or(true) {
            return None;
        }
        let rate = raw.max_requests_per_second.unwrap_or(5.0);
        if !(rate.is_finite() && rate > 0.0) {
            self.error(
                "sources.watcher.max_requests_per_second",
                "must be a number greater than 0, e.g. 5",
            );
        }
        Some(WatcherConfig {
            interval_secs: self.in_range(
                "sources.watcher.interval_secs",
                raw.interval_secs,
                300,
                10,
                86_400,
            ),
            jitter_secs: raw.jitter_secs.unwrap_or(30),
            max_requests_per_second: rate,
        })
    }

    fn notifiers(&mut self, raw: RawNotifiers) -> NotifiersConfig {
        let slack_raw = raw.slack.unwrap_or_default();
        let has_credentials = slack_raw.webhook_url.is_some() || slack_raw.bot_token.is_some();
        let slack = match slack_raw.enabled {
            Some(false) => None,
            Some(true) if !has_credentials => {
                self.error("notifiers.slack", "enabled but neither webhook_url nor bot_token is set; set one (as ${SLACK_WEBHOOK_URL} or ${SLACK_BOT_TOKEN}) or set enabled = false");
                None
            }
            _ if !has_credentials => None,
            _ => {
                let api_base_url = slack_raw
                    .api_base_url
                    .map(|u| self.expand("notifiers.slack.api_base_url", &u))
                    .unwrap_or_else(|| defaults::SLACK_API_BASE_URL.into());
                if !api_base_url.starts_with("http://") && !api_base_url.starts_with("https://") {
                    self.error("notifiers.slack.api_base_url", "must be an http(s) URL");
                }
                let default_channel = slack_raw
                    .default_channel
                    .unwrap_or_else(|| defaults::SLACK_DEFAULT_CHANNEL.into());
                self.check_channel("notifiers.slack.default_channel", &default_channel);
                Some(SlackConfig {
                    webhook_url: self.secret("notifiers.slack.webhook_url", slack_raw.webhook_url),
                    bot_token: self.secret("notifiers.slack.bot_token", slack_raw.bot_token),
                    signing_secret: self
                        .secret("notifiers.slack.signing_secret", slack_raw.signing_secret),
                    api_base_url,
                    default_channel,
                })
            }
        };
        if let Some(webhook) = slack.as_ref().and_then(|s| s.webhook_url.as_ref()) {
            let url = webhook.expose();
            if !url.starts_with("https://") && !url.starts_with("http://") {
                self.error(
                    "notifiers.slack.webhook_url",
                    "is not an http(s) URL; paste the incoming webhook URL Slack gave you",
                );
            }
        }
        let sns_enabled = raw.sns.unwrap_or_default().enabled.unwrap_or(true);
        let pagerduty = self.pagerduty(raw.pagerduty.unwrap_or_default());
        let opsgenie = self.opsgenie(raw.opsgenie.unwrap_or_default());
        let teams = self
            .named_secrets(
                "notifiers.teams",
                "webhooks",
                raw.teams.as_ref().and_then(|t| t.enabled),
                raw.teams.and_then(|t| t.webhooks),
            )
            .map(|webhooks| TeamsConfig { webhooks });
        let webhook = self.webhook(raw.webhook.unwrap_or_default());
        let mut channels = BTreeMap::new();
        let specs = [
            ("slack", slack.is_some(), ChannelSpec::chat()),
            ("sns", sns_enabled, ChannelSpec::broadcast()),
            ("pagerduty", pagerduty.is_some(), ChannelSpec::pager()),
            ("opsgenie", opsgenie.is_some(), ChannelSpec::pager()),
            ("teams", teams.is_some(), ChannelSpec::broadcast()),
            ("webhook", webhook.is_some(), ChannelSpec::all()),
        ];
        for (kind, on, spec) in specs {
            if on {
                channels.insert(kind.to_string(), spec);
            }
        }
        NotifiersConfig {
            slack,
            sns_enabled,
            pagerduty,
            opsgenie,
            teams,
            webhook,
            channels,
        }
    }

    fn http_url(&mut self, path: &str, raw: Option<String>, default: &str) -> String {
        let url = raw
            .map(|u| self.expand(path, &u))
            .unwrap_or_else(|| default.into());
        if !url.starts_with("http://") && !url.starts_with("https://") {
            self.error(path, "must be an http(s) URL");
        }
        url
    }

    /// A `{ name = "${SECRET}" }` map of a notifier section; `None` when the section is off.
    fn named_secrets(
        &mut self,
        section: &str,
        key: &str,
        enabled: Option<bool>,
        raw: Option<BTreeMap<String, String>>,
    ) -> Option<BTreeMap<String, Secret>> {
        let raw = raw.unwrap_or_default();
        match enabled {
            Some(false) => return None,
            Some(true) if raw.is_empty() => {
                self.error(format!("{section}.{key}"), format!("{section} is enabled but names no {key}; add one, e.g. {key} = {{ ops = \"${{SECRET_ENV_VAR}}\" }}, or set enabled = false"));
                return None;
            }
            _ if raw.is_empty() => return None,
            _ => {}
        }
        let mut out = BTreeMap::new();
        for (name, value) in raw {
            let path = format!("{section}.{key}.{name}");
            if let Some(secret) = self.secret(&path, Some(value)) {
                out.insert(name, secret);
            }
        }
        (!out.is_empty()).then_some(out)
    }

    fn pagerduty(&mut self, raw: RawPagerDuty) -> Option<PagerDutyConfig> {
        let routing_keys = self.named_secrets(
            "notifiers.pagerduty",
            "routing_keys",
            raw.enabled,
            raw.routing_keys,
        )?;
        for (name, key) in &routing_keys {
            // An Events API v2 integration key is 32 characters of [0-9a-z].
            if key.expose().len() != 32 || !key.expose().chars().all(|c| c.is_ascii_alphanumeric())
            {
                self.error(format!("notifiers.pagerduty.routing_keys.{name}"), "is not a PagerDuty integration key (32 letters and digits); copy the Integration Key of the service's Events API v2 integration");
            }
        }
        Some(PagerDutyConfig {
            routing_keys,
            webhook_secret: self.secret("notifiers.pagerduty.webhook_secret", raw.webhook_secret),
            events_url: self.http_url(
                "notifiers.pagerduty.events_url",
                raw.events_url,
                defaults::PAGERDUTY_EVENTS_URL,
            ),
        })
    }

    fn opsgenie(&mut self, raw: RawOpsgenie) -> Option<OpsgenieConfig> {
        if raw.enabled == Some(false) {
            return None;
        }
        let api_key = self.secret("notifiers.opsgenie.api_key", raw.api_key);
        let Some(api_key) = api_key else {
            if raw.enabled == Some(true) {
                self.error("notifiers.opsgenie.api_key", "required when Opsgenie is enabled; set it to the API integration's key as ${OPSGENIE_API_KEY}");
            }
            return None;
        };
        Some(OpsgenieConfig {
            api_key,
            api_url: self.http_url(
                "notifiers.opsgenie.api_url",
                raw.api_url,
                defaults::OPSGENIE_API_URL,
            ),
            webhook_token: self.secret("notifiers.opsgenie.webhook_token", raw.webhook_token),
        })
    }

    fn webhook(&mut self, raw: RawWebhook) -> Option<WebhookConfig> {
        let list = raw.endpoints.unwrap_or_default();
        match raw.enabled {
            Some(false) => return None,
            Some(true) if list.is_empty() => {
                self.error("notifiers.webhook.endpoints", "the webhook notifier is enabled but has no endpoint; add [notifiers.webhook.endpoints.NAME] with url and secret, or set enabled = false");
                return None;
            }
            _ if list.is_empty() => return None,
            _ => {}
        }
        let mut endpoints = BTreeMap::new();
        for (name, e) in list {
            let path = format!("notifiers.webhook.endpoints.{name}");
            let url = self.secret(&format!("{path}.url"), e.url);
            let secret = self.secret(&format!("{path}.secret"), e.secret);
            match (url, secret) {
                (Some(url), Some(secret)) => {
                    if !url.expose().starts_with("https://") && !url.expose().starts_with("http://")
                    {
                        self.error(format!("{path}.url"), "must be an http(s) URL");
                    }
                    if secret.expose().len() < 16 {
                        self.error(format!("{path}.secret"), "is shorter than 16 characters; use a long random secret (e.g. openssl rand -hex 32)");
                    }
                    endpoints.insert(name, Endpoint { url, secret });
                }
                (None, _) => self.error(
                    format!("{path}.url"),
                    "required; the URL that receives the signed JSON",
                ),
                (_, None) => self.error(
                    format!("{path}.secret"),
                    "required; the HMAC-SHA256 key receivers verify X-Signature-256 with",
                ),
            }
        }
        (!endpoints.is_empty()).then_some(WebhookConfig { endpoints })
    }

    /// Targets by notifier kind: `base` (the Slack/SNS keys), then the `notify` map, each
    /// checked against the configured notifiers.
    fn targets(
        &mut self,
        path: &str,
        base: Vec<(&str, Option<String>)>,
        notify: Option<BTreeMap<String, String>>,
        notifiers: &NotifiersConfig,
    ) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = base
            .into_iter()
            .filter(|(kind, _)| notifiers.channels.contains_key(*kind))
            .filter_map(|(kind, target)| Some((kind.to_string(), target?)))
            .collect();
        for (kind, target) in notify.unwrap_or_default() {
            let field = format!("{path}.notify.{kind}");
            if matches!(kind.as_str(), "slack" | "sns") {
                self.error(
                    field,
                    format!(
                        "write the {kind} target as {} instead",
                        if kind == "slack" {
                            "slack_channel"
                        } else {
                            "sns_topic_arn"
                        }
                    ),
                );
                continue;
            }
            if let Some(why) = notifiers.check_target(&kind, target.trim()) {
                self.error(field, why);
                continue;
            }
            out.insert(kind, target.trim().to_string());
        }
        out
    }

    fn check_channel(&mut self, path: &str, channel: &str) {
        let ok = channel.starts_with('#') && channel.len() > 1
            || (channel.starts_with(['C', 'G', 'D'])
                && channel.chars().all(|c| c.is_ascii_alphanumeric())
                && channel.len() >= 9);
        if !ok {
            self.error(path, format!("{channel:?} is not a Slack channel; write #name or a channel id like C0123456789"));
        }
    }

    fn escalation(&mut self, raw: RawEscalation, notifiers: &NotifiersConfig) -> EscalationConfig {
        let levels = match raw.levels {
            None => defaults::levels(),
            Some(list) if list.is_empty() => {
                self.error("escalation.levels", "is empty; define at least one [[escalation.levels]] (the runbook has L1, L2, L3)");
                defaults::levels()
            }
            Some(list) => {
                let mut seen = BTreeSet::new();
                let mut levels = Vec::new();
                for (i, level) in list.into_iter().enumerate() {
                    let path = format!("escalation.levels[{i}]");
                    let id = level.id.unwrap_or_default();
                    if id.trim().is_empty() {
                        self.error(
                            format!("{path}.id"),
                            "required; give the level a short id such as L1",
                        );
                    } else if !seen.insert(id.clone()) {
                        self.error(
                            format!("{path}.id"),
                            format!("duplicate level id {id:?}; each level needs its own id"),
                        );
                    }
                    let name = level.name.unwrap_or_else(|| id.clone());
                    let sns_topic_arn = level.sns_topic_arn.map(|a| {
                        let a = self.expand(&format!("{path}.sns_topic_arn"), &a);
                        self.check_topic_arn(&format!("{path}.sns_topic_arn"), &a);
                        a
                    });
                    let targets = self.targets(
                        &path,
                        vec![("sns", sns_topic_arn.clone())],
                        level.notify,
                        notifiers,
                    );
                    levels.push(Level {
                        id,
                        name,
                        slack_mention: level.slack_mention,
                        sns_topic_arn,
                        contact: level.contact,
                        targets,
                    });
                }
                levels
            }
        };
        let last = levels.len().saturating_sub(1);
        let level_or = |me: &mut Self, path: &str, raw: Option<String>, default: usize| match raw {
            Some(id) => me.level_ref(path, &id, &levels),
            None => default.min(last),
        };
        let multi = raw.multi_environment.unwrap_or_default();
        let multi_environment = MultiEnvironmentRule {
            environments: self.in_range(
                "escalation.multi_environment.environments",
                multi.environments,
                2,
                2,
                1000,
            ) as usize,
            window_secs: self.positive(
                "escalation.multi_environment.window_secs",
                multi.window_secs,
                1800,
            ),
            level: level_or(self, "escalation.multi_environment.level", multi.level, 1),
        };
        let outage_raw = raw.outage.unwrap_or_default();
        let outage = OutageRule {
            pipelines: self.in_range(
                "escalation.outage.pipelines",
                outage_raw.pipelines,
                2,
                2,
                10_000,
            ) as usize,
            window_secs: self.positive(
                "escalation.outage.window_secs",
                outage_raw.window_secs,
                900,
            ),
            level: level_or(self, "escalation.outage.level", outage_raw.level, 2),
            error_patterns: outage_raw
                .error_patterns
                .unwrap_or_else(defaults::outage_error_patterns),
        };
        let rollback_failed_levels = match raw.rollback_failed.unwrap_or_default().levels {
            Some(ids) => ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    self.level_ref(
                        &format!("escalation.rollback_failed.levels[{i}]"),
                        id,
                        &levels,
                    )
                })
                .collect(),
            None => vec![1.min(last), 2.min(last)],
        };
        EscalationConfig {
            levels,
            multi_environment,
            outage,
            rollback_failed_levels,
        }
    }

    fn check_topic_arn(&mut self, path: &str, arn: &str) {
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5].is_empty() {
            self.error(
                path,
                format!(
                    "{arn:?} is not an SNS topic ARN; write arn:aws:sns:<region>:<account>:<topic>"
                ),
            );
        }
    }

    fn storm(&mut self, raw: RawStorm) -> StormConfig {
        StormConfig {
            max_incidents: self.positive("storm.max_incidents", raw.max_incidents, 5),
            window_secs: self.positive("storm.window_secs", raw.window_secs, 60),
        }
    }

    fn digest(&mut self, raw: RawDigest) -> DigestConfig {
        let weekly = match raw.every.as_deref() {
            None | Some("week") => true,
            Some("day") => false,
            Some(other) => {
                self.error(
                    "digest.every",
                    format!("unknown period {other:?}; use \"week\" or \"day\""),
                );
                true
            }
        };
        let day = match &raw.day {
            None => defaults::DIGEST_DAY,
            Some(name) => {
                if !weekly {
                    self.error(
                        "digest.day",
                        "is only used by a weekly digest; remove it or set every = \"week\"",
                    );
                }
                weekday(name).unwrap_or_else(|| {
                    self.error(
                        "digest.day",
                        format!("{name:?} is not a day of the week; write monday … sunday (or mon … sun)"),
                    );
                    defaults::DIGEST_DAY
                })
            }
        };
        let at = match &raw.at {
            None => defaults::digest_at(),
            Some(text) => time_of_day(text).unwrap_or_else(|| {
                self.error(
                    "digest.at",
                    format!("{text:?} is not a time of day; write HH:MM or HH:MM:SS in UTC, e.g. \"{}\"", defaults::DIGEST_AT),
                );
                defaults::digest_at()
            }),
        };
        let (every, window_default) = if weekly {
            (DigestEvery::Week(day), defaults::DIGEST_WINDOW_DAYS_WEEK)
        } else {
            (DigestEvery::Day, defaults::DIGEST_WINDOW_DAYS_DAY)
        };
        let window_days = self.in_range(
            "digest.window_days",
            raw.window_days,
            u64::from(window_default),
            1,
            366,
        );
        let slack_channel = raw.slack_channel.inspect(|channel| {
            self.check_channel("digest.slack_channel", channel);
        });
        DigestConfig {
            enabled: raw.enabled.unwrap_or(true),
            every,
            at,
            window_days: u32::try_from(window_days).unwrap_or(window_default),
            flap_secs: self.positive(
                "digest.flap_secs",
                raw.flap_secs,
                defaults::DIGEST_FLAP_SECS,
            ),
            stale_execution_secs: self.positive(
                "digest.stale_execution_secs",
                raw.stale_execution_secs,
                defaults::DIGEST_STALE_EXECUTION_SECS,
            ),
            slack_channel,
        }
    }

    fn remediation(&mut self, raw: &RawRemediation) -> RemediationConfig {
        RemediationConfig {
            enabled: raw.enabled.unwrap_or(false),
            restart_stuck_executions: raw.restart_stuck_executions.unwrap_or(false),
            max_per_pipeline_per_day: self.positive(
                "remediation.max_per_pipeline_per_day",
                raw.max_per_pipeline_per_day,
                1,
            ),
        }
    }

    fn thresholds(&mut self, raw: RawThresholds, escalation: &EscalationConfig) -> Thresholds {
        let coverage = raw.coverage_percent.unwrap_or(80.0);
        if !(0.0..=100.0).contains(&coverage) || !coverage.is_finite() {
            self.error(
                "thresholds.coverage_percent",
                format!("{coverage} is not a percentage; use a number from 0 to 100"),
            );
        }
        let slow_recurrence_level = match raw.slow_recurrence_level {
            Some(id) => self.level_ref("thresholds.slow_recurrence_level", &id, &escalation.levels),
            None => 1.min(escalation.levels.len().saturating_sub(1)),
        };
        Thresholds {
            deployment_duration_secs: self.positive(
                "thresholds.deployment_duration_secs",
                raw.deployment_duration_secs,
                3600,
            ),
            stuck_after_secs: self.positive(
                "thresholds.stuck_after_secs",
                raw.stuck_after_secs,
                900,
            ),
            coverage_percent: coverage,
            slow_recurrence_count: self.positive(
                "thresholds.slow_recurrence_count",
                raw.slow_recurrence_count,
                3,
            ) as usize,
            slow_recurrence_window_secs: self.positive(
                "thresholds.slow_recurrence_window_secs",
                raw.slow_recurrence_window_secs,
                604_800,
            ),
            slow_recurrence_level,
        }
    }

    fn detection(&mut self, raw: RawDetection) -> Detection {
        let alarm_rules = match raw.alarm_rules {
            None => defaults::alarm_rules()
                .into_iter()
                .map(|(suffix, incident_type)| AlarmRule {
                    suffix: suffix.into(),
                    incident_type,
                })
                .collect(),
            Some(rules) => rules
                .into_iter()
                .enumerate()
                .filter_map(|(i, rule)| {
                    let path = format!("detection.alarm_rules[{i}]");
                    let suffix = rule.suffix.unwrap_or_default();
                    if suffix.is_empty() {
                        self.error(
                            format!("{path}.suffix"),
                            "required; e.g. \"-pipeline-failures\"",
                        );
                    }
                    let Some(raw_type) = rule.incident_type else {
                        self.error(
                            format!("{path}.incident_type"),
                            format!("required; use one of: {}", type_names()),
                        );
                        return None;
                    };
                    let incident_type =
                        self.incident_type(&format!("{path}.incident_type"), &raw_type)?;
                    Some(AlarmRule {
                        suffix,
                        incident_type,
                    })
                })
                .collect(),
        };
        let unmatched_alarms = match raw.unmatched_alarms.as_deref() {
            None => Some(IncidentType::RollbackTriggered),
            Some("ignore") => None,
            Some(other) => self.incident_type("detection.unmatched_alarms", other),
        };
        Detection {
            approval_actions: raw
                .approval_actions
                .unwrap_or_else(|| vec!["ApproveProduction".to_string()]),
            alarm_rules,
            unmatched_alarms,
        }
    }

    fn diagnosis(&mut self, raw: RawDiagnosis) -> DiagnosisConfig {
        let mut causes = Vec::new();
        for (i, cause) in raw.causes.unwrap_or_default().into_iter().enumerate() {
            let path = format!("diagnosis.causes[{i}]");
            let name = cause.name.unwrap_or_default();
            if name.trim().is_empty() {
                self.error(
                    format!("{path}.name"),
                    "required; a short name for the post, e.g. \"npm registry rate limit\"",
                );
            }
            let class = match cause.class.as_deref() {
                None => Some(crate::finding::RootCauseClass::Unknown),
                Some(c) => {
                    let parsed = crate::finding::RootCauseClass::parse(c);
                    if parsed.is_none() {
                        let names: Vec<&str> = crate::finding::RootCauseClass::ALL
                            .iter()
                            .map(|c| c.as_str())
                            .collect();
                        self.error(
                            format!("{path}.class"),
                            format!("unknown class {c:?}; use one of: {}", names.join(", ")),
                        );
                    }
                    parsed
                }
            };
            let pattern = match cause.pattern.as_deref() {
                None | Some("") => {
                    self.error(
                        format!("{path}.pattern"),
                        "required; a regular expression matched against each log line, e.g. \"npm ERR! code E429\"",
                    );
                    None
                }
                Some(p) => match regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                    Ok(re) => Some(re),
                    Err(e) => {
                        let why = e.to_string().replace('\n', " ");
                        let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
                        self.error(
                            format!("{path}.pattern"),
                            format!("invalid regular expression: {why}"),
                        );
                        None
                    }
                },
            };
            if let Some(url) = &cause.runbook_url {
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    self.error(format!("{path}.runbook_url"), "must be an http(s) URL");
                }
            }
            if let (Some(pattern), Some(class)) = (pattern, class) {
                causes.push(Cause {
                    name,
                    pattern,
                    class,
                    hint: cause.hint.filter(|h| !h.trim().is_empty()),
                    runbook_url: cause.runbook_url,
                    flaky: cause.flaky.unwrap_or(false),
                });
            }
        }
        DiagnosisConfig {
            compare_with_last_green: raw.compare_with_last_green.unwrap_or(true),
            causes,
        }
    }

    fn environments(
        &mut self,
        defaults_raw: RawEnvironment,
        list: Option<Vec<RawEnvironment>>,
        aws: &AwsConfig,
        notifiers: &NotifiersConfig,
        remediation: &RawRemediation,
    ) -> Vec<Environment> {
        if defaults_raw.name.is_some() {
            self.error(
                "environment_defaults.name",
                "a name is per environment; move it to an [[environments]] entry",
            );
        }
        let list = match list {
            Some(list) if !list.is_empty() => list,
            _ => {
                self.error("environments", "no environment is defined; add at least one [[environments]] with a name (the runbook has test, staging, production)");
                return Vec::new();
            }
        };
        let default_channel = notifiers
            .slack
            .as_ref()
            .map(|s| s.default_channel.clone())
            .unwrap_or_else(|| defaults::SLACK_DEFAULT_CHANNEL.into());
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut pipelines: BTreeMap<String, usize> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, raw) in list.into_iter().enumerate() {
            let path = format!("environments[{i}]");
            if raw.enabled == Some(false) {
                continue;
            }
            let name = raw.name.clone().unwrap_or_default();
            if name.trim().is_empty() {
                self.error(
                    format!("{path}.name"),
                    "required; name the environment, e.g. \"production\"",
                );
                continue;
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                self.error(
                    format!("{path}.name"),
                    format!("{name:?} may only contain letters, digits, '-' and '_'"),
                );
            }
            let duplicate_name = names.contains_key(&name);
            if let Some(first) = names.insert(name.clone(), i) {
                self.error(format!("{path}.name"), format!("duplicate environment {name:?} (also environments[{first}]); give each environment its own name"));
            }
            let field = |me: &mut Self,
                         key: &str,
                         own: &Option<String>,
                         shared: &Option<String>,
                         builtin: Option<&str>|
             -> Option<String> {
                let (template, from) = match (own, shared) {
                    (Some(t), _) => (t.clone(), format!("{path}.{key}")),
                    (None, Some(t)) => (t.clone(), format!("environment_defaults.{key}")),
                    (None, None) => (builtin?.to_string(), format!("{path}.{key}")),
                };
                Some(me.template(&from, &template, &name, None, aws))
            };
            let before_names = self.errors.len();
            let prefix = field(
                self,
                "resource_prefix",
                &raw.resource_prefix,
                &defaults_raw.resource_prefix,
                Some(defaults::RESOURCE_PREFIX),
            )
            .unwrap_or_default();
            let with_prefix = |me: &mut Self,
                               key: &str,
                               own: &Option<String>,
                               shared: &Option<String>,
                               builtin: Option<&str>|
             -> Option<String> {
                let (template, from) = match (own, shared) {
                    (Some(t), _) => (t.clone(), format!("{path}.{key}")),
                    (None, Some(t)) => (t.clone(), format!("environment_defaults.{key}")),
                    (None, None) => (builtin?.to_string(), format!("{path}.{key}")),
                };
                Some(me.template(&from, &template, &name, Some(&prefix), aws))
            };
            let pipeline = with_prefix(
                self,
                "pipeline",
                &raw.pipeline,
                &defaults_raw.pipeline,
                Some(defaults::PIPELINE),
            )
            .unwrap_or_default();
            // A bad prefix or pipeline template was reported just above, and a duplicate name
            // gives the same default pipeline: either way the pipeline is no news.
            let pipeline_resolved = self.errors.len() == before_names && !duplicate_name;
            if !pipeline_resolved {
                // Nothing to compare.
            } else if pipeline.trim().is_empty() {
                self.error(
                    format!("{path}.pipeline"),
                    "is empty; set the CodePipeline name (or resource_prefix)",
                );
            } else if let Some(first) = pipelines.insert(pipeline.clone(), i) {
                self.error(format!("{path}.pipeline"), format!("pipeline {pipeline:?} is already watched by environments[{first}]; each pipeline belongs to one environment"));
            }
            let alarm_prefix = with_prefix(
                self,
                "alarm_prefix",
                &raw.alarm_prefix,
                &defaults_raw.alarm_prefix,
                Some(defaults::ALARM_PREFIX),
            )
            .unwrap_or_default();
            let build_project = with_prefix(
                self,
                "build_project",
                &raw.build_project,
                &defaults_raw.build_project,
                Some(defaults::BUILD_PROJECT),
            )
            .unwrap_or_default();
            let build_log_group = with_prefix(
                self,
                "build_log_group",
                &raw.build_log_group,
                &defaults_raw.build_log_group,
                Some(defaults::BUILD_LOG_GROUP),
            )
            .unwrap_or_default();
            let rollback_log_group = with_prefix(
                self,
                "rollback_log_group",
                &raw.rollback_log_group,
                &defaults_raw.rollback_log_group,
                Some(defaults::ROLLBACK_LOG_GROUP),
            )
            .unwrap_or_default();
            let deployments_table = with_prefix(
                self,
                "deployments_table",
                &raw.deployments_table,
                &defaults_raw.deployments_table,
                Some(defaults::DEPLOYMENTS_TABLE),
            )
            .unwrap_or_default();
            let health_url = with_prefix(
                self,
                "health_url",
                &raw.health_url,
                &defaults_raw.health_url,
                None,
            );
            if let Some(url) = &health_url {
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    self.error(format!("{path}.health_url"), format!("{url:?} is not an http(s) URL; write e.g. https://app.example.com/health"));
                }
            }
            let sns_topic_arn = if notifiers.sns_enabled
                && raw.sns_topic_arn.is_none()
                && defaults_raw.sns_topic_arn.is_none()
                && aws.account_id.is_none()
            {
                // The built-in ARN needs the account: one error at the key to set, not one per
                // environment at a key the file does not contain.
                if !self.account_failed {
                    self.error(
                        "aws.account_id",
                        format!("required by the default SNS topic ARN {:?}; set aws.account_id (e.g. \"${{AWS_ACCOUNT_ID}}\"), write sns_topic_arn for each environment, or set notifiers.sns.enabled = false", defaults::SNS_TOPIC_ARN),
                    );
                }
                None
            } else if notifiers.sns_enabled {
                let arn = with_prefix(
                    self,
                    "sns_topic_arn",
                    &raw.sns_topic_arn,
                    &defaults_raw.sns_topic_arn,
                    Some(defaults::SNS_TOPIC_ARN),
                );
                if let Some(arn) = &arn {
                    if !arn.is_empty() {
                        self.check_topic_arn(&format!("{path}.sns_topic_arn"), arn);
                    }
                }
                arn
            } else {
                None
            };
            let slack_channel = with_prefix(
                self,
                "slack_channel",
                &raw.slack_channel,
                &defaults_raw.slack_channel,
                None,
            )
            .unwrap_or_else(|| default_channel.clone());
            self.check_channel(&format!("{path}.slack_channel"), &slack_channel);
            let mut notify = defaults_raw.notify.clone().unwrap_or_default();
            notify.extend(raw.notify.clone().unwrap_or_default());
            let targets = self.targets(
                &path,
                vec![
                    ("slack", Some(slack_channel.clone())),
                    ("sns", sns_topic_arn.clone()),
                ],
                (!notify.is_empty()).then_some(notify),
                notifiers,
            );
            out.push(Environment {
                name,
                pipeline,
                alarm_prefix,
                build_project,
                build_log_group,
                rollback_log_group,
                deployments_table,
                health_url,
                sns_topic_arn,
                slack_channel,
                targets,
                guards: Guards::default(),
            });
            let env_name = out.last().map(|e| e.name.clone()).unwrap_or_default();
            let guards = self.guards(&path, &env_name, &raw, &defaults_raw, remediation);
            if let Some(last) = out.last_mut() {
                last.guards = guards;
            }
        }
        out
    }

    /// Who may act on one environment: its own lists, else the environment defaults', else
    /// `[remediation]`'s; production needs two approvers unless it says otherwise.
    fn guards(
        &mut self,
        path: &str,
        name: &str,
        raw: &RawEnvironment,
        defaults_raw: &RawEnvironment,
        remediation: &RawRemediation,
    ) -> Guards {
        let mut list = |field: &str,
                        own: &Option<Vec<String>>,
                        shared: &Option<Vec<String>>,
                        top: &Option<Vec<String>>| {
            let ids = own
                .clone()
                .or_else(|| shared.clone())
                .or_else(|| top.clone())
                .unwrap_or_default();
            for (i, id) in ids.iter().enumerate() {
                let id = id.trim();
                if id.is_empty() || id.len() > 100 || id.chars().any(char::is_control) {
                    self.error(
                        format!("{path}.{field}[{i}]"),
                        "not a Slack user id (U…), user-group id (S…) or name; write one per entry, e.g. \"U024BE7LH\"",
                    );
                }
            }
            ids.into_iter()
                .map(|id| id.trim().to_string())
                .collect::<Vec<_>>()
        };
        let approvers = list(
            "approvers",
            &raw.approvers,
            &defaults_raw.approvers,
            &remediation.approvers,
        );
        let operators = list(
            "operators",
            &raw.operators,
            &defaults_raw.operators,
            &remediation.operators,
        );
        let approvals_required = raw
            .approvals_required
            .or(defaults_raw.approvals_required)
            .unwrap_or(if name == "production" { 2 } else { 1 });
        if approvals_required == 0 || approvals_required > 5 {
            self.error(
                format!("{path}.approvals_required"),
                format!(
                    "{approvals_required} is out of range; use 1 to 5 (2 is the two-person rule)"
                ),
            );
        }
        Guards {
            approvers,
            operators,
            approvals_required: approvals_required.clamp(1, 5),
        }
    }

    /// Expands `${VAR}` then the `{env}`, `{prefix}`, `{region}`, `{account}` placeholders.
    fn template(
        &mut self,
        path: &str,
        template: &str,
        env: &str,
        prefix: Option<&str>,
        aws: &AwsConfig,
    ) -> String {
        let expanded = self.expand(path, template);
        let mut out = String::with_capacity(expanded.len());
        let mut rest = expanded.as_str();
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                self.error(path, format!("{template:?}: `{{` without `}}`; placeholders are {{env}}, {{prefix}}, {{region}}, {{account}}"));
                return out;
            };
            let name = &rest[start + 1..start + len];
            match name {
                "env" => out.push_str(env),
                "prefix" => match prefix {
                    Some(p) => out.push_str(p),
                    None => {
                        self.error(path, "{prefix} cannot be used inside resource_prefix itself; use {env}");
                    }
                },
                "region" => out.push_str(&aws.region),
                "account" => match &aws.account_id {
                    Some(a) => out.push_str(a),
                    None if self.account_failed => {}
                    None => self.error(
                        path,
                        format!("{template:?} uses {{account}} but aws.account_id is not set; set aws.account_id (e.g. \"${{AWS_ACCOUNT_ID}}\") or write the full value"),
                    ),
                },
                other => self.error(
                    path,
                    format!("unknown placeholder {{{other}}} in {template:?}; use {{env}}, {{prefix}}, {{region}} or {{account}}"),
                ),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }

    fn policies(
        &mut self,
        raw: BTreeMap<String, RawPolicy>,
        escalation: &EscalationConfig,
        environments: &[Environment],
    ) -> BTreeMap<IncidentType, Policy> {
        let mut out: BTreeMap<IncidentType, Policy> = IncidentType::ALL
            .into_iter()
            .map(|t| (t, defaults::policy(t)))
            .collect();
        for (name, policy) in raw {
            let path = format!("policies.{name}");
            let Some(incident_type) = IncidentType::parse(&name) else {
                self.error(
                    path,
                    format!(
                        "unknown incident type {name:?}; use one of: {}",
                        type_names()
                    ),
                );
                continue;
            };
            let target = out
                .entry(incident_type)
                .or_insert_with(|| defaults::policy(incident_type));
            self.apply_policy(&path, policy, target, escalation, environments);
        }
        // The built-in approval diagnostic looks at "staging"; a configuration without such an
        // environment has nothing to compare with (an explicit, wrong name is reported above).
        for policy in out.values_mut() {
            policy.diagnostics.retain(|d| match d {
                Diagnostic::RelatedEnvironment { environment, .. } => {
                    environments.iter().any(|e| &e.name == environment)
                }
                _ => true,
            });
        }
        // Built-in steps name levels by position; a shorter level list must be caught.
        for (incident_type, policy) in &out {
            for (i, step) in policy.steps.iter().enumerate() {
                if step.level >= escalation.levels.len() {
                    self.error(
                        format!("policies.{incident_type}.escalation[{i}]"),
                        format!(
                            "the built-in policy escalates to level {} but only {} level(s) are defined; define more [[escalation.levels]] or set policies.{incident_type}.escalation",
                            step.level + 1,
                            escalation.levels.len()
                        ),
                    );
                }
            }
        }
        out
    }

    /// The DynamoDB store writes each change of an incident in one transaction of at most 100
    /// items, and a change can cancel one policy's timers and schedule another's (a diagnosis
    /// that changes the type): a policy with more timers than fit could never be stored.
    fn fits_dynamodb(&mut self, policies: &BTreeMap<IncidentType, Policy>) {
        for (incident_type, policy) in policies {
            let timers: u64 = policy
                .steps
                .iter()
                .map(|s| u64::from(s.after_secs > 0) + s.max_repeats)
                .sum();
            if timers > DYNAMODB_MAX_TIMERS {
                self.error(
                    format!("policies.{incident_type}.escalation"),
                    format!("schedules {timers} escalation and reminder timers per incident; with store.kind = \"dynamodb\" at most {DYNAMODB_MAX_TIMERS} fit (each change of an incident is one DynamoDB transaction of at most 100 items): lower max_repeats or use fewer steps"),
                );
            }
        }
    }

    fn apply_policy(
        &mut self,
        path: &str,
        raw: RawPolicy,
        policy: &mut Policy,
        escalation: &EscalationConfig,
        environments: &[Environment],
    ) {
        if let Some(enabled) = raw.enabled {
            policy.enabled = enabled;
        }
        if let Some(s) = raw.severity {
            if let Some(s) = self.severity(&format!("{path}.severity"), &s) {
                policy.severity = s;
            }
        }
        if let Some(map) = raw.severity_by_environment {
            policy.severity_by_environment.clear();
            for (env, s) in map {
                let p = format!("{path}.severity_by_environment.{env}");
                if !environments.iter().any(|e| e.name == env) {
                    self.error(
                        &p,
                        format!(
                            "no environment named {env:?}; use one of the [[environments]] names"
                        ),
                    );
                }
                if let Some(s) = self.severity(&p, &s) {
                    policy.severity_by_environment.insert(env, s);
                }
            }
        }
        if let Some(secs) = raw.ack_target_secs {
            policy.ack_target_secs = (secs > 0).then_some(secs);
        }
        if let Some(steps) = raw.escalation {
            policy.steps = steps
                .into_iter()
                .enumerate()
                .map(|(i, s)| self.step(&format!("{path}.escalation[{i}]"), s, escalation))
                .collect();
        }
        if let Some(diagnostics) = raw.diagnostics {
            self.apply_diagnostics(
                &format!("{path}.diagnostics"),
                diagnostics,
                &mut policy.diagnostics,
                environments,
            );
        }
    }

    fn step(&mut self, path: &str, raw: RawStep, escalation: &EscalationConfig) -> Step {
        let level = match raw.level {
            Some(id) => self.level_ref(&format!("{path}.level"), &id, &escalation.levels),
            None => {
                self.error(
                    format!("{path}.level"),
                    "required; name a level from [[escalation.levels]], e.g. \"L1\"",
                );
                0
            }
        };
        let until = match raw.until.as_deref() {
            None | Some("acknowledged") => Until::Acknowledged,
            Some("resolved") => Until::Resolved,
            Some(other) => {
                self.error(
                    format!("{path}.until"),
                    format!("unknown value {other:?}; use \"acknowledged\" or \"resolved\""),
                );
                Until::Acknowledged
            }
        };
        let when = match raw.when.as_deref() {
            None => None,
            Some("critical_findings") => Some(StepCondition::CriticalFindings),
            Some(other) => {
                self.error(
                    format!("{path}.when"),
                    format!(
                        "unknown condition {other:?}; the only condition is \"critical_findings\""
                    ),
                );
                None
            }
        };
        let repeat_every_secs = match raw.repeat_every_secs {
            Some(0) => {
                self.error(
                    format!("{path}.repeat_every_secs"),
                    "must be greater than 0; omit it for no repeats",
                );
                None
            }
            other => other,
        };
        let max_repeats = match (raw.max_repeats, repeat_every_secs) {
            (Some(n), None) if n > 0 => {
                self.error(
                    format!("{path}.max_repeats"),
                    "needs repeat_every_secs; set how often to repeat",
                );
                0
            }
            (Some(n), _) if n > 100 => {
                self.error(
                    format!("{path}.max_repeats"),
                    format!("{n} repeats is too many; use at most 100"),
                );
                100
            }
            (Some(n), _) => n,
            (None, Some(_)) => 8,
            (None, None) => 0,
        };
        Step {
            level,
            after_secs: raw.after_secs.unwrap_or(0),
            until,
            repeat_every_secs,
            max_repeats,
            when,
        }
    }

    fn apply_diagnostics(
        &mut self,
        path: &str,
        raw: RawDiagnostics,
        list: &mut Vec<Diagnostic>,
        environments: &[Environment],
    ) {
        for (name, toggle) in [
            ("pipeline_state", raw.pipeline_state),
            ("execution_details", raw.execution_details),
            ("deployment_record", raw.deployment_record),
            ("alarms", raw.alarms),
            ("stage_durations", raw.stage_durations),
        ] {
            if let Some(t) = toggle {
                self.check_timeout(&format!("{path}.{name}.timeout_secs"), t.timeout_secs);
                upsert(list, name, t.enabled, |d| with_timeout(d, t.timeout_secs));
            }
        }
        for (name, search) in [
            ("build_log", raw.build_log),
            ("coverage_report", raw.coverage_report),
            ("security_report", raw.security_report),
            ("rollback_log", raw.rollback_log),
        ] {
            let Some(s) = search else { continue };
            if s.window_secs == Some(0) {
                self.error(
                    format!("{path}.{name}.window_secs"),
                    "must be greater than 0; write how many seconds back to search, e.g. 1800",
                );
            }
            if s.max_lines == Some(0) {
                self.error(
                    format!("{path}.{name}.max_lines"),
                    "must be greater than 0; write how many lines to keep, e.g. 40 (or set enabled = false)",
                );
            }
            if s.patterns
                .as_ref()
                .is_some_and(|p| p.iter().any(|x| x.trim().is_empty()))
            {
                self.error(
                    format!("{path}.{name}.patterns"),
                    "contains an empty pattern; remove it",
                );
            }
            self.check_timeout(&format!("{path}.{name}.timeout_secs"), s.timeout_secs);
            upsert(list, name, s.enabled, |d| update_search(d, &s));
        }
        if let Some(h) = raw.health_check {
            if h.expect_status_below
                .is_some_and(|s| !(200..=600).contains(&s))
            {
                self.error(
                    format!("{path}.health_check.expect_status_below"),
                    "use an HTTP status between 200 and 600, e.g. 400",
                );
            }
            self.check_timeout(&format!("{path}.health_check.timeout_secs"), h.timeout_secs);
            upsert(list, "health_check", h.enabled, |d| match d {
                Diagnostic::HealthCheck {
                    timeout_secs,
                    expect_status_below,
                } => Diagnostic::HealthCheck {
                    timeout_secs: h.timeout_secs.unwrap_or(timeout_secs),
                    expect_status_below: h
                        .expect_status_below
                        .map_or(expect_status_below, |v| v.min(600) as u16),
                },
                other => other,
            });
        }
        if let Some(r) = raw.related_environment {
            if let Some(env) = &r.environment {
                if !environments.iter().any(|e| &e.name == env) {
                    self.error(
                        format!("{path}.related_environment.environment"),
                        format!(
                            "no environment named {env:?}; use one of the [[environments]] names"
                        ),
                    );
                }
            }
            self.check_timeout(
                &format!("{path}.related_environment.timeout_secs"),
                r.timeout_secs,
            );
            upsert(list, "related_environment", r.enabled, |d| match d {
                Diagnostic::RelatedEnvironment {
                    environment,
                    timeout_secs,
                } => Diagnostic::RelatedEnvironment {
                    environment: r.environment.clone().unwrap_or(environment),
                    timeout_secs: r.timeout_secs.unwrap_or(timeout_secs),
                },
                other => other,
            });
        }
    }

    fn check_timeout(&mut self, path: &str, timeout: Option<u64>) {
        match timeout {
            Some(0) => self.error(
                path,
                "must be greater than 0; write a budget in seconds, e.g. 10",
            ),
            Some(t) if t > 300 => self.error(
                path,
                format!("{t} s is longer than a diagnostic may take; use at most 300"),
            ),
            _ => {}
        }
    }
}

/// Replaces (or adds, or removes when disabled) the diagnostic `name` in a policy's list.
fn upsert(
    list: &mut Vec<Diagnostic>,
    name: &str,
    enabled: Option<bool>,
    build: impl FnOnce(Diagnostic) -> Diagnostic,
) {
    let position = list.iter().position(|d| d.name() == name);
    if enabled == Some(false) {
        if let Some(p) = position {
            list.remove(p);
        }
        return;
    }
    let Some(base) = position
        .map(|p| list[p].clone())
        .or_else(|| defaults::diagnostic(name))
    else {
        return;
    };
    let updated = build(base);
    match position {
        Some(p) => list[p] = updated,
        None => list.push(updated),
    }
}

fn with_timeout(d: Diagnostic, timeout: Option<u64>) -> Diagnostic {
    let Some(t) = timeout else { return d };
    match d {
        Diagnostic::PipelineState { .. } => Diagnostic::PipelineState { timeout_secs: t },
        Diagnostic::ExecutionDetails { .. } => Diagnostic::ExecutionDetails { timeout_secs: t },
        Diagnostic::DeploymentRecord { .. } => Diagnostic::DeploymentRecord { timeout_secs: t },
        Diagnostic::Alarms { .. } => Diagnostic::Alarms { timeout_secs: t },
        Diagnostic::StageDurations { .. } => Diagnostic::StageDurations { timeout_secs: t },
        other => other,
    }
}

fn update_search(d: Diagnostic, raw: &RawLogSearch) -> Diagnostic {
    let apply = |mut s: LogSearch| {
        if let Some(v) = raw.window_secs {
            s.window_secs = v;
        }
        if let Some(v) = &raw.patterns {
            s.patterns = v.clone();
        }
        if let Some(v) = raw.context_lines {
            s.context_lines = v;
        }
        if let Some(v) = raw.max_lines {
            s.max_lines = v;
        }
        if let Some(v) = raw.timeout_secs {
            s.timeout_secs = v;
        }
        s
    };
    match d {
        Diagnostic::BuildLog(s) => Diagnostic::BuildLog(apply(s)),
        Diagnostic::CoverageReport(s) => Diagnostic::CoverageReport(apply(s)),
        Diagnostic::SecurityReport(s) => Diagnostic::SecurityReport(apply(s)),
        Diagnostic::RollbackLog(s) => Diagnostic::RollbackLog(apply(s)),
        other => other,
    }
}

/// `monday` … `sunday` or `mon` … `sun`, any case.
fn weekday(name: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    let name = name.to_ascii_lowercase();
    [
        ("monday", Mon),
        ("tuesday", Tue),
        ("wednesday", Wed),
        ("thursday", Thu),
        ("friday", Fri),
        ("saturday", Sat),
        ("sunday", Sun),
    ]
    .into_iter()
    .find(|(full, _)| name == *full || name == full[..3])
    .map(|(_, day)| day)
}

/// `HH:MM` or `HH:MM:SS` (24-hour, two digits each; no leap second).
fn time_of_day(text: &str) -> Option<chrono::NaiveTime> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let number = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<u32>().ok());
    chrono::NaiveTime::from_hms_opt(number(0)?, number(1)?, number(2)?)
}

fn type_names() -> String {
    IncidentType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
