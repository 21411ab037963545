//! PagerDuty, both ways.
//! - Out: Events API v2 (`POST /v2/enqueue`). `trigger` when an incident opens or escalates to
//!   a level that names a routing key, `acknowledge` and `resolve` to every key it paged;
//!   `dedup_key` = our incident key, so PagerDuty's incident is ours.
//! - In: a V3 webhook subscription posts `incident.acknowledged` / `incident.resolved` to
//!   `/pagerduty/webhook`; the `X-PagerDuty-Signature` (`v1=<hex HMAC-SHA256 of the body>`, one
//!   per active secret) is verified with `webhook_secret`, and the incident's `incident_key`
//!   (the dedup key) names ours. An ack there stops our escalation like an ack here.

use super::render::{clip, headline};
use super::{post_json, Inbound, Notifier, Post, Refused, SendError, Sent};
use futures_util::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use pipeline_responder_core::config::PagerDutyConfig;
use pipeline_responder_core::decision::NotificationKind;
use pipeline_responder_core::incident::Severity;
use pipeline_responder_core::record::Incident;
use serde_json::{json, Value};
use sha2::Sha256;

/// PagerDuty's limits: a summary is at most 1024 characters, a dedup key at most 255.
const SUMMARY_LIMIT: usize = 1024;
const DEDUP_KEY_LIMIT: usize = 255;

#[derive(Debug, Clone)]
pub struct PagerDuty {
    pub config: PagerDutyConfig,
    pub http: reqwest::Client,
}

/// PagerDuty's severities.
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium | Severity::Low => "warning",
        Severity::Info => "info",
    }
}

/// The dedup key of an incident: its key, or (past PagerDuty's 255 characters) a prefix and
/// the key's SHA-256, still one per incident.
pub fn dedup_key(key: &str) -> String {
    if key.len() <= DEDUP_KEY_LIMIT {
        return key.to_string();
    }
    use sha2::Digest;
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    let mut prefix: String = key.chars().take(DEDUP_KEY_LIMIT - 65).collect();
    while prefix.len() > DEDUP_KEY_LIMIT - 65 {
        prefix.pop();
    }
    format!("{prefix}#{digest}")
}

/// The Events API v2 event of one notification; `None` for kinds PagerDuty does not take.
pub fn event(routing_key: &str, post: &Post<'_>) -> Option<Value> {
    let incident = post.incident;
    let action = match post.notification.kind {
        NotificationKind::Opened | NotificationKind::Escalated => "trigger",
        NotificationKind::Acknowledged => "acknowledge",
        NotificationKind::Resolved => "resolve",
        _ => return None,
    };
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(&incident.key),
    });
    if action == "trigger" {
        event["payload"] = json!({
            "summary": clip(&summary(incident), SUMMARY_LIMIT),
            "source": incident.pipeline,
            "severity": severity(incident.severity),
            "timestamp": incident.event_time.to_rfc3339(),
            "component": incident.stage,
            "group": incident.environment,
            "class": incident.incident_type.as_str(),
            "custom_details": custom_details(incident, &post.message.plain),
        });
        event["links"] = post
            .message
            .links
            .iter()
            .map(|(text, href)| json!({"href": href, "text": text}))
            .collect();
        event["client"] = json!("pipeline-responder");
    }
    Some(event)
}

/// One line for the pager's screen: severity, environment, title, where and why it failed.
fn summary(incident: &Incident) -> String {
    let mut line = headline(incident);
    if let Some(stage) = &incident.stage {
        line.push_str(&format!(" at {stage}"));
    }
    if let Some(error) = incident.error.as_ref().and_then(|e| e.summary.as_deref()) {
        line.push_str(&format!(": {error}"));
    }
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn custom_details(incident: &Incident, plain: &str) -> Value {
    json!({
        "incident": incident.key,
        "type": incident.incident_type.as_str(),
        "environment": incident.environment,
        "pipeline": incident.pipeline,
        "execution": incident.execution_id,
        "stage": incident.stage,
        "action": incident.action,
        "error": incident.error.as_ref().and_then(|e| e.summary.clone()),
        "runbook": incident.runbook_section,
        "next_steps": incident.next_steps,
        "diagnosis": plain,
    })
}

impl Notifier for PagerDuty {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn groups_in_storms(&self) -> bool {
        false
    }

    fn send<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let Some(key) = self.config.routing_keys.get(post.target) else {
                return Err(SendError::permanent(format!(
                    "pagerduty: no routing key named {:?}",
                    post.target
                )));
            };
            let Some(event) = event(key.expose(), &post) else {
                return Ok(Sent::default());
            };
            post_json(
                self.http.post(&self.config.events_url),
                &event,
                "pagerduty events",
            )
            .await
            .map(|_| Sent::default())
        })
    }
}

/// Whether `header` (`v1=<hex>[,v1=<hex>...]`) holds the HMAC-SHA256 of `body` under `secret`.
pub fn verify(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(header) = header else {
        return false;
    };
    header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .filter_map(|hex_sig| hex::decode(hex_sig).ok())
        .any(|sig| {
            let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        })
}

/// Verifies and reads a V3 webhook delivery. Events other than an incident's acknowledgement
/// or resolution (or without an `incident_key`) give `Ok(None)`.
pub fn inbound(
    secret: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<Option<Inbound>, Refused> {
    if !verify(secret, body, signature) {
        return Err(Refused::Signature);
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Refused::Malformed(format!("the body is not JSON: {e}")))?;
    let event = v
        .get("event")
        .ok_or_else(|| Refused::Malformed("no `event` object; is this a V3 webhook?".into()))?;
    let kind = match event.get("event_type").and_then(Value::as_str) {
        Some("incident.acknowledged") => NotificationKind::Acknowledged,
        Some("incident.resolved") => NotificationKind::Resolved,
        _ => return Ok(None),
    };
    let Some(key) = event
        .pointer("/data/incident_key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
    else {
        return Ok(None);
    };
    let agent = event
        .pointer("/agent/summary")
        .and_then(Value::as_str)
        .unwrap_or("someone");
    Ok(Some(Inbound {
        event_id: event
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        key: key.to_string(),
        kind,
        by: format!("{} (PagerDuty)", agent.chars().take(60).collect::<String>()),
        occurred_at: event
            .get("occurred_at")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_and_rotation_is_accepted() {
        let body = br#"{"event":{"id":"01","event_type":"incident.acknowledged","agent":{"summary":"Alice"},"data":{"incident_key":"k1"}}}"#;
        let good = sign("s3cret", body);
        assert!(verify("s3cret", body, Some(&good)));
        let rotated = format!("{},{}", sign("old", body), good);
        assert!(
            verify("s3cret", body, Some(&rotated)),
            "any listed signature"
        );
        assert!(!verify("other", body, Some(&good)));
        assert!(!verify("s3cret", b"{}", Some(&good)), "a changed body");
        assert!(!verify("s3cret", body, None));
        assert!(!verify("s3cret", body, Some("v1=zz")));
        let c = inbound("s3cret", body, Some(&good)).unwrap().unwrap();
        assert_eq!(c.key, "k1");
        assert_eq!(c.kind, NotificationKind::Acknowledged);
        assert_eq!(c.by, "Alice (PagerDuty)");
        assert_eq!(
            inbound("s3cret", body, Some("v1=00")),
            Err(Refused::Signature)
        );
    }

    #[test]
    fn other_events_and_bodies_are_not_commands() {
        let body = br#"{"event":{"id":"02","event_type":"incident.triggered","data":{"incident_key":"k1"}}}"#;
        assert_eq!(inbound("s", body, Some(&sign("s", body))), Ok(None));
        let body = b"not json";
        assert!(matches!(
            inbound("s", body, Some(&sign("s", body))),
            Err(Refused::Malformed(_))
        ));
    }

    #[test]
    fn long_keys_get_a_bounded_dedup_key_of_their_own() {
        let short = "pipeline_execution_failure/p/e1";
        assert_eq!(dedup_key(short), short);
        let long_a = format!("{}a", "x".repeat(300));
        let long_b = format!("{}b", "x".repeat(300));
        assert!(dedup_key(&long_a).len() <= DEDUP_KEY_LIMIT);
        assert_ne!(dedup_key(&long_a), dedup_key(&long_b));
    }
}
