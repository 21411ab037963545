//! Notifications. The outbox worker drains what the store queued, one lane per notifier kind,
//! through the [`Notifier`] of that kind; the [`registry`] builds one per configured
//! `[notifiers.*]` section. A notifier formats the one rendered message ([`render::Rendered`])
//! for its wire; retries, backoff, silences and storm control are the outbox's, the same for all.

#[cfg(test)]
mod conformance;
#[cfg(test)]
pub mod fake;
pub mod markup;
pub mod opsgenie;
pub mod outbox;
#[cfg(test)]
mod outbox_tests;
pub mod pagerduty;
pub mod registry;
pub mod render;
pub mod slack;
pub mod sns;
pub mod storm;
pub mod teams;
pub mod webhook;

use futures_util::future::BoxFuture;
use pipeline_responder_core::decision::Notification;
use pipeline_responder_core::record::{Incident, TimelineEntry};
use std::time::Duration;

/// One notification handed to a notifier: where, what, about which incident, rendered.
#[derive(Debug, Clone, Copy)]
pub struct Post<'a> {
    /// The notification's target at this notifier (a channel, a topic, a routing-key name).
    pub target: &'a str,
    pub notification: &'a Notification,
    pub incident: &'a Incident,
    pub timeline: &'a [TimelineEntry],
    pub message: &'a render::Rendered,
    /// The incident's thread here, for notifiers that thread ([`Notifier::threads`]).
    pub thread: Option<&'a (String, String)>,
}

/// A storm summary: many posts of one lane grouped into one.
#[derive(Debug, Clone)]
pub struct Summary {
    pub subject: String,
    /// Plain text.
    pub plain: String,
    /// The same in Slack mrkdwn (escaped).
    pub slack: String,
    /// How many posts it stands for.
    pub grouped: usize,
}

/// What a verified webhook from a pager asks of one of our incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The delivery's own id (acted on once per process; the actions are idempotent anyway).
    pub event_id: String,
    /// Our incident key (the pager's dedup key or alias).
    pub key: String,
    /// `Acknowledged` or `Resolved`.
    pub kind: pipeline_responder_core::decision::NotificationKind,
    /// Who did it there, e.g. `Alice Doe (PagerDuty)`.
    pub by: String,
    /// When it happened there, when the pager says.
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why a pager's webhook is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No or a wrong signature or token: 401.
    Signature,
    /// Not what that pager sends: 400.
    Malformed(String),
}

/// A channel kind: Slack, SNS, PagerDuty, ... Implementations keep their secrets inside: a
/// [`SendError`] names what failed, never a URL, key or token.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// The kind it serves (`slack`, `sns`, ...): the `type` of its channels.
    fn kind(&self) -> &'static str;

    /// Whether its posts go in a thread under the incident's first post (the outbox then hands
    /// the stored thread to follow-ups).
    fn threads(&self) -> bool {
        false
    }

    /// Whether storm control groups its posts into summaries. Pagers say no: every incident is
    /// paged (they group and rate-limit on their side), and a summary page would never resolve.
    fn groups_in_storms(&self) -> bool {
        true
    }

    /// Sends one notification; a first post may return the thread it started.
    fn send<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<Sent, SendError>>;

    /// Sends a storm summary to `target`. Only asked of notifiers that are grouped
    /// ([`Notifier::groups_in_storms`]); the others need not implement it.
    fn send_summary<'a>(
        &'a self,
        _target: &'a str,
        _summary: &'a Summary,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        let kind = self.kind();
        Box::pin(async move { Err(SendError::permanent(format!("{kind} takes no summaries"))) })
    }
}

/// A notifier whose every post is one JSON body delivered to a named target (Teams, the generic
/// webhook): it says how a post and a summary look and how a body is delivered; the
/// [`Notifier`] around it is this one.
pub trait JsonHook: Send + Sync + std::fmt::Debug {
    /// The kind it serves (see [`Notifier::kind`]).
    const KIND: &'static str;
    /// The body of one post.
    fn post_body(&self, post: &Post<'_>) -> serde_json::Value;
    /// The body of a storm summary.
    fn summary_body(&self, summary: &Summary) -> serde_json::Value;
    /// Delivers `body` to `target`.
    fn deliver(
        &self,
        target: &str,
        body: serde_json::Value,
    ) -> impl std::future::Future<Output = Result<(), SendError>> + Send;
}

impl<T: JsonHook> Notifier for T {
    fn kind(&self) -> &'static str {
        T::KIND
    }

    fn send<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<Sent, SendError>> {
        let body = self.post_body(&post);
        Box::pin(async move {
            self.deliver(post.target, body)
                .await
                .map(|()| Sent::default())
        })
    }

    fn send_summary<'a>(
        &'a self,
        target: &'a str,
        summary: &'a Summary,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(self.deliver(target, self.summary_body(summary)))
    }
}

/// Longest wait a server's Retry-After can impose (a huge value would overflow time arithmetic
/// and hold the lane forever).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

/// A Retry-After header's delay in seconds, capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    let secs = header?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Longest pause between two attempts of a send without a Retry-After.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long to wait before attempt `attempts + 1` after `error`: the server's Retry-After
/// (capped at [`MAX_RETRY_AFTER`]), else exponential from 2 s up to [`MAX_BACKOFF`]. The one
/// retry rule of the outbox, storm summaries and the digest.
pub fn backoff(attempts: u32, error: &SendError) -> Duration {
    error
        .retry_after
        .unwrap_or_else(|| {
            Duration::from_secs(2u64.saturating_pow(attempts.min(6))).min(MAX_BACKOFF)
        })
        .min(MAX_RETRY_AFTER)
}

/// A successful send.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    /// A new Slack thread (channel, ts) to reply under later.
    pub thread: Option<(String, String)>,
}

/// A failed send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// What failed, safe to log (no URL, no token).
    pub message: String,
    /// The server's Retry-After, if it sent one.
    pub retry_after: Option<Duration>,
    /// Retrying will not help (bad token, unknown channel).
    pub permanent: bool,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
            permanent: true,
        }
    }
}

/// Classifies an HTTP answer the way every HTTP notifier must: 2xx is sent; 429 and 5xx are
/// retried, after the server's Retry-After when it sent one; other statuses are permanent. The
/// error carries the status and the start of the body, never the URL.
pub async fn check_status(
    response: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, SendError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(
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

/// A transport error (connect, timeout, reset): retried. reqwest prints the URL, which for a
/// webhook is the secret itself, so it is cut out.
pub fn transport_error(what: &str, e: &reqwest::Error) -> SendError {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    SendError::transient(format!("{what}: {text}"))
}

/// POSTs `body` as JSON and classifies the answer ([`check_status`], [`transport_error`]).
pub async fn post_json(
    request: reqwest::RequestBuilder,
    body: &serde_json::Value,
    what: &str,
) -> Result<reqwest::Response, SendError> {
    let response = request
        .json(body)
        .send()
        .await
        .map_err(|e| transport_error(what, &e))?;
    check_status(response, what).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_retry_after_is_capped() {
        assert_eq!(
            retry_after(Some("18446744073709551615")),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(Some(" 30 ")), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(Some("-5")), None);
        assert_eq!(retry_after(None), None);
    }
}
