//! The config sections of the notifiers beyond Slack and SNS (`[notifiers.pagerduty]`,
//! `[notifiers.opsgenie]`, `[notifiers.teams]`, `[notifiers.webhook]`), what each kind of
//! notifier is sent ([`ChannelSpec`]), and the check of the targets environments and levels
//! name in their `notify = { kind = "target" }` maps.
//!
//! A new notifier adds its raw section to [`RawPagers`]-like structs here, its resolved config
//! to [`NotifiersConfig`], and one arm to [`NotifiersConfig::check_target`].

use super::secret::Secret;
use super::NotifiersConfig;
use crate::decision::NotificationKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one kind of notifier is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelSpec {
    /// The notification kinds it receives; others are not queued for it.
    pub takes: Vec<NotificationKind>,
    /// Its posts carry the addressed levels' `slack_mention`s.
    pub mentions: bool,
    /// Acknowledgements and resolutions go to the targets of every level paged so far (a pager
    /// closes at each level what it opened there), not only the environment's.
    pub follows_levels: bool,
}

impl ChannelSpec {
    /// Posts every kind except acknowledgements (chat channels; the ack shows in the thread).
    pub fn chat() -> Self {
        use NotificationKind::*;
        Self {
            takes: vec![Opened, Updated, Refined, Escalated, Reminder, Resolved],
            mentions: true,
            follows_levels: false,
        }
    }

    /// One message per state change, no thread replies (SNS, Teams).
    pub fn broadcast() -> Self {
        use NotificationKind::*;
        Self {
            takes: vec![Opened, Refined, Escalated, Reminder, Resolved],
            mentions: false,
            follows_levels: false,
        }
    }

    /// A pager: open (or page a new level), acknowledge, resolve.
    pub fn pager() -> Self {
        use NotificationKind::*;
        Self {
            takes: vec![Opened, Escalated, Acknowledged, Resolved],
            mentions: false,
            follows_levels: true,
        }
    }

    /// Everything (the generic webhook).
    pub fn all() -> Self {
        Self {
            takes: NotificationKind::ALL.to_vec(),
            mentions: false,
            follows_levels: true,
        }
    }

    pub fn takes(&self, kind: NotificationKind) -> bool {
        self.takes.contains(&kind)
    }
}

/// `[notifiers.pagerduty]`: Events API v2, and the V3 webhook that brings acks back.
#[derive(Debug, Default, Deserialize)]
pub struct RawPagerDuty {
    /// Default true when routing keys are set.
    pub enabled: Option<bool>,
    /// Named integration (routing) keys, e.g. `{ sre = "${PD_ROUTING_KEY_SRE}" }`; levels and
    /// environments name them in `notify = { pagerduty = "sre" }`.
    pub routing_keys: Option<BTreeMap<String, String>>,
    /// Signing secret of the V3 webhook subscription that posts to `/pagerduty/webhook`.
    pub webhook_secret: Option<String>,
    /// Events API endpoint; change only to point at a fake. Default
    /// `https://events.pagerduty.com/v2/enqueue`.
    pub events_url: Option<String>,
}

/// `[notifiers.opsgenie]`: the Alert API, and its outgoing webhook.
#[derive(Debug, Default, Deserialize)]
pub struct RawOpsgenie {
    pub enabled: Option<bool>,
    /// API key of an API integration (`${OPSGENIE_API_KEY}`).
    pub api_key: Option<String>,
    /// Default `https://api.opsgenie.com` (EU accounts: `https://api.eu.opsgenie.com`).
    pub api_url: Option<String>,
    /// Shared secret the outgoing webhook sends in its `X-Webhook-Token` header (a custom header
    /// of the Opsgenie webhook integration), verifying `/opsgenie/webhook`.
    pub webhook_token: Option<String>,
}

/// `[notifiers.teams]`: Workflows incoming webhooks (Adaptive Cards).
#[derive(Debug, Default, Deserialize)]
pub struct RawTeams {
    pub enabled: Option<bool>,
    /// Named workflow URLs, e.g. `{ ops = "${TEAMS_WEBHOOK_OPS}" }`.
    pub webhooks: Option<BTreeMap<String, String>>,
}

/// `[notifiers.webhook]`: our JSON, signed, to any URL.
#[derive(Debug, Default, Deserialize)]
pub struct RawWebhook {
    pub enabled: Option<bool>,
    /// Named endpoints, e.g. `[notifiers.webhook.endpoints.audit]` with `url` and `secret`.
    pub endpoints: Option<BTreeMap<String, RawEndpoint>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawEndpoint {
    pub url: Option<String>,
    /// HMAC-SHA256 key of the `X-Signature-256` header.
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PagerDutyConfig {
    pub routing_keys: BTreeMap<String, Secret>,
    pub webhook_secret: Option<Secret>,
    pub events_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpsgenieConfig {
    pub api_key: Secret,
    pub api_url: String,
    pub webhook_token: Option<Secret>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamsConfig {
    pub webhooks: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookConfig {
    pub endpoints: BTreeMap<String, Endpoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub url: Secret,
    pub secret: Secret,
}

impl NotifiersConfig {
    /// What the notifier of `kind` is sent; `None` when that notifier is not configured.
    pub fn spec(&self, kind: &str) -> Option<&ChannelSpec> {
        self.channels.get(kind)
    }

    /// Whether a notification of `kind` is queued for channels of `channel_kind`.
    pub fn takes(&self, channel_kind: &str, kind: NotificationKind) -> bool {
        self.spec(channel_kind).is_some_and(|s| s.takes(kind))
    }

    /// Why `target` is not a target of the notifier `kind` (`None`: it is).
    pub fn check_target(&self, kind: &str, target: &str) -> Option<String> {
        let named = |names: Vec<&String>, what: &str| {
            (!names.iter().any(|n| n.as_str() == target)).then(|| {
                format!(
                    "{target:?} is not one of the {what} of [notifiers.{kind}] ({}); add it there or name one of them",
                    names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                )
            })
        };
        match kind {
            "pagerduty" => named(
                self.pagerduty.iter().flat_map(|p| p.routing_keys.keys()).collect(),
                "routing_keys",
            ),
            "teams" => named(
                self.teams.iter().flat_map(|t| t.webhooks.keys()).collect(),
                "webhooks",
            ),
            "webhook" => named(
                self.webhook.iter().flat_map(|w| w.endpoints.keys()).collect(),
                "endpoints",
            ),
            "opsgenie" => opsgenie_responders(target).err(),
            _ if !self.channels.contains_key(kind) => Some(format!(
                "no notifier {kind:?} is configured; add [notifiers.{kind}] or remove this target (known: {})",
                self.channels.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            )),
            _ => None,
        }
    }

    /// Every secret of the notifier sections.
    pub fn secrets(&self) -> Vec<&Secret> {
        let slack = self.slack.as_ref();
        let mut out: Vec<&Secret> = [
            slack.and_then(|s| s.webhook_url.as_ref()),
            slack.and_then(|s| s.bot_token.as_ref()),
            slack.and_then(|s| s.signing_secret.as_ref()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(p) = &self.pagerduty {
            out.extend(p.routing_keys.values());
            out.extend(p.webhook_secret.as_ref());
        }
        if let Some(o) = &self.opsgenie {
            out.push(&o.api_key);
            out.extend(o.webhook_token.as_ref());
        }
        if let Some(t) = &self.teams {
            out.extend(t.webhooks.values());
        }
        if let Some(w) = &self.webhook {
            for e in w.endpoints.values() {
                out.push(&e.url);
                out.push(&e.secret);
            }
        }
        out
    }
}

/// An Opsgenie responder list: `team:NAME`, `user:EMAIL`, `escalation:NAME` or
/// `schedule:NAME`, comma-separated. Returns (type, name) pairs.
pub fn opsgenie_responders(target: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut out = Vec::new();
    for part in target.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once(':') {
            Some((kind @ ("team" | "user" | "escalation" | "schedule"), name))
                if !name.trim().is_empty() =>
            {
                out.push((kind, name.trim()));
            }
            _ => {
                return Err(format!(
                    "{part:?} is not an Opsgenie responder; write team:NAME, user:EMAIL, escalation:NAME or schedule:NAME (comma-separated)"
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("names no responder; write e.g. team:SRE".into());
    }
    Ok(out)
}
