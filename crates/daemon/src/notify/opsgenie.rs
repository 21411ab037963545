//! Opsgenie, both ways.
//! - Out: the Alert API with `Authorization: GenieKey <api_key>`. Open: create the alert with
//!   `alias` = our incident key, priority from severity and the level's responders; escalation:
//!   create again (a no-op on an open alias) and add the new level's responders; acknowledge
//!   and close by alias.
//! - In: the Webhook integration posts its alert actions to `/opsgenie/webhook` with the
//!   configured `X-Webhook-Token` custom header; `Acknowledge` and `Close` ack and resolve ours.

use super::render::{clip, headline};
use super::{post_json, Inbound, Notifier, Post, Refused, SendError, Sent};
use futures_util::future::BoxFuture;
use pipeline_responder_core::config::{opsgenie_responders, OpsgenieConfig};
use pipeline_responder_core::decision::NotificationKind;
use pipeline_responder_core::incident::Severity;
use serde_json::{json, Value};

/// Opsgenie's limits: message 130 characters, alias 512, description 15,000.
const MESSAGE_LIMIT: usize = 130;
const ALIAS_LIMIT: usize = 512;
const DESCRIPTION_LIMIT: usize = 15_000;

#[derive(Debug, Clone)]
pub struct Opsgenie {
    pub config: OpsgenieConfig,
    pub http: reqwest::Client,
}

impl Opsgenie {
    async fn call(&self, path: &str, body: &Value) -> Result<(), SendError> {
        let url = format!("{}{path}", self.config.api_url.trim_end_matches('/'));
        let request = self.http.post(url).header(
            reqwest::header::AUTHORIZATION,
            format!("GenieKey {}", self.config.api_key.expose()),
        );
        post_json(request, body, "opsgenie").await.map(|_| ())
    }
}

/// Opsgenie priorities.
pub fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "P1",
        Severity::High => "P2",
        Severity::Medium => "P3",
        Severity::Low => "P4",
        Severity::Info => "P5",
    }
}

/// The responders of a target, in the Alert API's shape.
pub fn responders(target: &str) -> Vec<Value> {
    opsgenie_responders(target)
        .unwrap_or_default()
        .into_iter()
        .map(|(kind, name)| match kind {
            "user" => json!({"type": "user", "username": name}),
            _ => json!({"type": kind, "name": name}),
        })
        .collect()
}

/// `/v2/alerts/<alias>` with the alias as one escaped path segment.
fn alert_path(key: &str, action: &str) -> String {
    let alias: String = key.chars().take(ALIAS_LIMIT).collect();
    let escaped: String = alias
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/v2/alerts/{escaped}/{action}?identifierType=alias")
}

/// The create request of one post.
pub fn create(post: &Post<'_>) -> Value {
    let i = post.incident;
    let message = headline(i);
    json!({
        "message": clip(&message, MESSAGE_LIMIT),
        "alias": i.key.chars().take(ALIAS_LIMIT).collect::<String>(),
        "description": clip(&post.message.plain, DESCRIPTION_LIMIT),
        "responders": responders(post.target),
        "priority": priority(i.severity),
        "source": "pipeline-responder",
        "entity": i.pipeline,
        "tags": [i.environment, i.incident_type.as_str()],
        "details": {
            "incident": i.key,
            "environment": i.environment,
            "pipeline": i.pipeline,
            "stage": i.stage.clone().unwrap_or_default(),
            "runbook": i.runbook_section,
            "links": post.message.links.iter().map(|(t, u)| format!("{t}: {u}")).collect::<Vec<_>>().join(" "),
        },
    })
}

impl Notifier for Opsgenie {
    fn kind(&self) -> &'static str {
        "opsgenie"
    }

    fn groups_in_storms(&self) -> bool {
        false
    }

    fn send<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let key = &post.incident.key;
            let note = json!({"source": "pipeline-responder", "user": "pipeline-responder"});
            match post.notification.kind {
                NotificationKind::Opened => self.call("/v2/alerts", &create(&post)).await?,
                NotificationKind::Escalated => {
                    // Creating an open alias again changes nothing there; the new level's
                    // responders are added one by one so that they are notified.
                    self.call("/v2/alerts", &create(&post)).await?;
                    for responder in responders(post.target) {
                        let body = json!({"responder": responder, "source": "pipeline-responder"});
                        self.call(&alert_path(key, "responders"), &body).await?;
                    }
                }
                NotificationKind::Acknowledged => {
                    self.call(&alert_path(key, "acknowledge"), &note).await?
                }
                NotificationKind::Resolved => self.call(&alert_path(key, "close"), &note).await?,
                _ => {}
            }
            Ok(Sent::default())
        })
    }
}

/// Verifies (the `X-Webhook-Token` header, compared in constant time) and reads one delivery
/// of the Webhook integration. Actions other than `Acknowledge` and `Close` give `Ok(None)`.
pub fn inbound(token: &str, header: Option<&str>, body: &[u8]) -> Result<Option<Inbound>, Refused> {
    use sha2::Digest;
    // Comparing digests takes the same time whatever the header holds.
    let same = header.is_some_and(|h| {
        sha2::Sha256::digest(h.trim().as_bytes()) == sha2::Sha256::digest(token.as_bytes())
    });
    if !same {
        return Err(Refused::Signature);
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Refused::Malformed(format!("the body is not JSON: {e}")))?;
    let kind = match v.get("action").and_then(Value::as_str) {
        Some("Acknowledge") => NotificationKind::Acknowledged,
        Some("Close") => NotificationKind::Resolved,
        Some(_) => return Ok(None),
        None => {
            return Err(Refused::Malformed(
                "no `action`; is this the Opsgenie Webhook integration?".into(),
            ))
        }
    };
    let alert = v.get("alert").cloned().unwrap_or(Value::Null);
    let Some(key) = alert
        .get("alias")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    let user = alert
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or("someone");
    let id = alert
        .get("alertId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(Some(Inbound {
        event_id: if id.is_empty() {
            String::new()
        } else {
            format!("{}/{id}", kind.as_str())
        },
        key: key.to_string(),
        kind,
        by: format!("{} (Opsgenie)", user.chars().take(60).collect::<String>()),
        occurred_at: None,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_one_path_segment_and_responders_keep_their_kind() {
        assert_eq!(
            alert_path("pipeline_execution_failure/p/e 1", "close"),
            "/v2/alerts/pipeline_execution_failure%2Fp%2Fe%201/close?identifierType=alias"
        );
        assert_eq!(
            responders("team:SRE, user:ann@example.com"),
            vec![
                json!({"type": "team", "name": "SRE"}),
                json!({"type": "user", "username": "ann@example.com"})
            ]
        );
    }

    #[test]
    fn the_webhook_token_is_required_and_only_ack_and_close_act() {
        let body = br#"{"action":"Acknowledge","alert":{"alertId":"a1","alias":"k1","username":"ann@example.com"}}"#;
        assert_eq!(inbound("tok", Some("nope"), body), Err(Refused::Signature));
        assert_eq!(inbound("tok", None, body), Err(Refused::Signature));
        let got = inbound("tok", Some("tok"), body).unwrap().unwrap();
        assert_eq!(got.key, "k1");
        assert_eq!(got.kind, NotificationKind::Acknowledged);
        assert_eq!(got.by, "ann@example.com (Opsgenie)");
        let note = br#"{"action":"AddNote","alert":{"alias":"k1"}}"#;
        assert_eq!(inbound("tok", Some("tok"), note), Ok(None));
    }
}
