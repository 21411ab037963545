//! Slack: incoming webhook, or the Web API with a bot token (`chat.postMessage`, thread replies
//! under the incident's first post, `chat.update` of that post). Secrets stay inside: errors
//! name the endpoint kind, never the webhook URL or token.

use super::{SendError, Sent};
use pipeline_responder_core::config::SlackConfig;
use serde_json::{json, Value};

/// Sends to Slack.
#[derive(Debug, Clone)]
pub struct Slack {
    config: SlackConfig,
    http: reqwest::Client,
}

impl Slack {
    pub fn new(config: SlackConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// Posts `text`/`blocks` to `channel`; with a bot token, as a reply in `thread` when given.
    /// Returns the new thread (channel, ts) for a first bot post.
    pub async fn post(
        &self,
        channel: &str,
        text: &str,
        blocks: &Value,
        thread: Option<&(String, String)>,
    ) -> Result<Sent, SendError> {
        if let Some(token) = &self.config.bot_token {
            let mut body =
                json!({"channel": channel, "text": text, "blocks": blocks, "unfurl_links": false});
            if let Some((_, ts)) = thread {
                body["thread_ts"] = json!(ts);
            }
            let url = format!(
                "{}/chat.postMessage",
                self.config.api_base_url.trim_end_matches('/')
            );
            let answer = self.api(&url, token.expose(), &body).await?;
            let ts = answer.get("ts").and_then(Value::as_str).map(String::from);
            let posted_channel = answer
                .get("channel")
                .and_then(Value::as_str)
                .unwrap_or(channel)
                .to_string();
            return Ok(Sent {
                thread: match (thread, ts) {
                    (None, Some(ts)) => Some((posted_channel, ts)),
                    _ => None,
                },
            });
        }
        let Some(webhook) = &self.config.webhook_url else {
            return Err(SendError::permanent(
                "slack: no webhook_url or bot_token configured",
            ));
        };
        let body =
            json!({"channel": channel, "text": text, "blocks": blocks, "unfurl_links": false});
        let response = self
            .http
            .post(webhook.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| SendError::transient(format!("slack webhook: {}", without_url(&e))))?;
        check_status(response, "slack webhook")
            .await
            .map(|_| Sent::default())
    }

    /// Rewrites the incident's first bot post (its state changed: escalated, resolved).
    pub async fn update(
        &self,
        thread: &(String, String),
        text: &str,
        blocks: &Value,
    ) -> Result<(), SendError> {
        let Some(token) = &self.config.bot_token else {
            return Ok(());
        };
        let url = format!(
            "{}/chat.update",
            self.config.api_base_url.trim_end_matches('/')
        );
        let body = json!({"channel": thread.0, "ts": thread.1, "text": text, "blocks": blocks});
        self.api(&url, token.expose(), &body).await.map(|_| ())
    }

    async fn api(&self, url: &str, token: &str, body: &Value) -> Result<Value, SendError> {
        let response = self
            .http
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| SendError::transient(format!("slack api: {}", without_url(&e))))?;
        let response = check_status(response, "slack api").await?;
        let answer: Value = response.json().await.map_err(|e| {
            SendError::transient(format!(
                "slack api: unreadable answer ({})",
                without_url(&e)
            ))
        })?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(answer);
        }
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error");
        // Auth and channel errors will not fix themselves; rate limits and internal errors may.
        match error {
            "ratelimited"
            | "internal_error"
            | "fatal_error"
            | "service_unavailable"
            | "request_timeout" => Err(SendError::transient(format!("slack api: {error}"))),
            _ => Err(SendError::permanent(format!("slack api: {error}"))),
        }
    }
}

async fn check_status(
    response: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, SendError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = super::retry_after(
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
    );
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let message = format!("{what}: HTTP {} {}", status.as_u16(), body.trim());
    if status.as_u16() == 429 || status.is_server_error() {
        Err(SendError {
            message,
            retry_after,
            permanent: false,
        })
    } else {
        Err(SendError::permanent(message))
    }
}

/// reqwest errors print the URL, which for a webhook is the secret itself.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}
