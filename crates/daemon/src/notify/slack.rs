//! Slack: incoming webhook, or the Web API with a bot token (`chat.postMessage`, thread replies
//! under the incident's first post, `chat.update` of that post). Secrets stay inside: errors
//! name the endpoint kind, never the webhook URL or token.

use super::render::render;
use super::{check_status, transport_error, Notifier, Post, SendError, Sent, Summary};
use futures_util::future::BoxFuture;
use pipeline_responder_core::config::SlackConfig;
use pipeline_responder_core::decision::NotificationKind;
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
            .map_err(|e| transport_error("slack webhook", &e))?;
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

    /// `views.open`: shows `view` (a modal) to whoever clicked; `trigger_id` lasts 3 s.
    pub async fn open_view(&self, trigger_id: &str, view: &Value) -> Result<(), SendError> {
        let token = self.bot_token()?;
        let url = self.method_url("views.open");
        let body = json!({"trigger_id": trigger_id, "view": view});
        self.api(&url, token, &body).await.map(|_| ())
    }

    /// `usergroups.users.list`: the user ids in user group `group` (needs `usergroups:read`).
    pub async fn usergroup_members(&self, group: &str) -> Result<Vec<String>, SendError> {
        let token = self.bot_token()?;
        let url = self.method_url("usergroups.users.list");
        // A read method: Slack takes its arguments as a form, not as JSON.
        let form = serde_urlencoded::to_string([("usergroup", group)])
            .map_err(|e| SendError::permanent(format!("slack: {e}")))?;
        let request = self
            .http
            .post(&url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        let answer = self.answer(request.bearer_auth(token)).await?;
        Ok(answer
            .get("users")
            .and_then(Value::as_array)
            .map(|users| {
                users
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Answers the person who clicked, visible to them only, through the interaction's
    /// `response_url`. Only Slack's own hooks host (or the configured API's host, for a
    /// Slack-compatible gateway) is called: the URL comes from the request.
    pub async fn respond_ephemeral(&self, response_url: &str, text: &str) -> Result<(), SendError> {
        if !self.may_respond(response_url) {
            return Err(SendError::permanent(
                "slack response_url: not a Slack host; not called",
            ));
        }
        let body = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
        let response = self
            .http
            .post(response_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error("slack response_url", &e))?;
        check_status(response, "slack response_url")
            .await
            .map(|_| ())
    }

    fn may_respond(&self, url: &str) -> bool {
        let origin = |u: &str| {
            reqwest::Url::parse(u).ok().map(|u| {
                (
                    u.scheme().to_string(),
                    u.host_str().map(String::from),
                    u.port_or_known_default(),
                )
            })
        };
        let Some(target) = origin(url) else {
            return false;
        };
        let slack = (
            "https".to_string(),
            Some("hooks.slack.com".to_string()),
            Some(443),
        );
        target == slack || origin(&self.config.api_base_url) == Some(target)
    }

    fn bot_token(&self) -> Result<&str, SendError> {
        self.config
            .bot_token
            .as_ref()
            .map(|t| t.expose())
            .ok_or_else(|| SendError::permanent("slack: this needs a bot_token"))
    }

    fn method_url(&self, method: &str) -> String {
        format!(
            "{}/{method}",
            self.config.api_base_url.trim_end_matches('/')
        )
    }

    async fn api(&self, url: &str, token: &str, body: &Value) -> Result<Value, SendError> {
        self.answer(self.http.post(url).bearer_auth(token).json(body))
            .await
    }

    /// Sends a Web API request and reads Slack's `{"ok": ...}` answer.
    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Value, SendError> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_error("slack api", &e))?;
        let response = check_status(response, "slack api").await?;
        let answer: Value = response
            .json()
            .await
            .map_err(|e| transport_error("slack api: unreadable answer", &e))?;
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

/// The Slack notifier: the first post starts the incident's thread; later posts reply in it
/// and rewrite the first post so it shows the current state (escalated, resolved).
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    pub slack: Slack,
    pub config: std::sync::Arc<pipeline_responder_core::config::Config>,
}

impl Notifier for SlackNotifier {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn threads(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let kind = post.notification.kind;
            let reply_in = post.thread.filter(|_| kind != NotificationKind::Opened);
            let message = post.message;
            let sent = self
                .slack
                .post(post.target, &message.text, &message.blocks, reply_in)
                .await?;
            if let Some(thread) = reply_in {
                let current = render(
                    &self.config,
                    post.incident,
                    post.timeline,
                    NotificationKind::Opened,
                    None,
                    None,
                );
                if let Err(e) = self
                    .slack
                    .update(thread, &current.text, &current.blocks)
                    .await
                {
                    tracing::warn!(incident_key = %post.incident.key, error = %e.message, "Slack chat.update failed");
                }
            }
            Ok(sent)
        })
    }

    fn send_summary<'a>(
        &'a self,
        target: &'a str,
        summary: &'a Summary,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let text = &summary.slack;
            let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": text.chars().take(2900).collect::<String>(), "verbatim": true}}]);
            self.slack
                .post(target, text, &blocks, None)
                .await
                .map(|_| ())
        })
    }
}
