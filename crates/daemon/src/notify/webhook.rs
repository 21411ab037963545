//! The generic webhook: our own JSON (schema in docs/webhook.md) POSTed to a configured URL,
//! signed so the receiver can trust it: `X-Signature-256: sha256=<hex>` is the HMAC-SHA256,
//! under the endpoint's secret, of `<X-Signature-Timestamp>.<body>`; receivers refuse a
//! timestamp more than 5 minutes old (replays).

use super::{post_json, JsonHook, Post, SendError, Summary};
use hmac::{Hmac, KeyInit, Mac};
use pipeline_responder_core::config::WebhookConfig;
use serde_json::{json, Value};
use sha2::Sha256;

/// The version of the body's schema (`schema` field).
pub const SCHEMA: &str = "pipeline-responder.notification.v1";

#[derive(Debug, Clone)]
pub struct Webhook {
    pub config: WebhookConfig,
    pub http: reqwest::Client,
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body of one post (docs/webhook.md).
pub fn body(post: &Post<'_>) -> Value {
    let i = post.incident;
    json!({
        "schema": SCHEMA,
        "notification": post.notification.kind.as_str(),
        "subject": post.message.subject,
        "text": post.message.plain,
        "links": post.message.links.iter().map(|(text, url)| json!({"text": text, "url": url})).collect::<Vec<_>>(),
        "incident": {
            "key": i.key,
            "type": i.incident_type.as_str(),
            "severity": i.severity.as_str(),
            "status": format!("{:?}", i.status).to_lowercase(),
            "title": i.title,
            "environment": i.environment,
            "pipeline": i.pipeline,
            "execution_id": i.execution_id,
            "stage": i.stage,
            "action": i.action,
            "alarms": i.alarms,
            "error": i.error.as_ref().and_then(|e| e.summary.clone()),
            "runbook_section": i.runbook_section,
            "next_steps": i.next_steps,
            "opened_at": i.opened_at,
            "acknowledged_at": i.acknowledged_at,
            "acknowledged_by": i.acknowledged_by,
            "resolved_at": i.resolved_at,
            "resolution": i.resolution,
        },
    })
}

impl JsonHook for Webhook {
    const KIND: &'static str = "webhook";

    fn post_body(&self, post: &Post<'_>) -> Value {
        body(post)
    }

    fn summary_body(&self, summary: &Summary) -> Value {
        json!({
            "schema": SCHEMA,
            "notification": "storm_summary",
            "subject": summary.subject,
            "text": summary.plain,
            "grouped": summary.grouped,
        })
    }

    async fn deliver(&self, target: &str, body: Value) -> Result<(), SendError> {
        let Some(endpoint) = self.config.endpoints.get(target) else {
            return Err(SendError::permanent(format!(
                "webhook: no endpoint named {target:?}"
            )));
        };
        let text = body.to_string();
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = sign(endpoint.secret.expose(), &timestamp, text.as_bytes());
        let request = self
            .http
            .post(endpoint.url.expose())
            .header("X-Signature-Timestamp", timestamp)
            .header("X-Signature-256", signature);
        post_json(request, &body, "webhook").await.map(|_| ())
    }
}
