//! The outbox worker: sends what the store queued, in order per incident, with backoff and
//! Retry-After, and records the outcome. Runs until cancelled; a failing channel delays only its
//! own posts.

use super::render::render;
use super::slack::Slack;
use super::{SendError, Sent};
use crate::store::{channel_name, OutboxItem, Store};
use chrono::{Duration as ChronoDuration, Utc};
use pipeline_responder_aws::sns::SnsPublisher;
use pipeline_responder_core::config::Config;
use pipeline_responder_core::decision::{Channel, NotificationKind};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Give up on a notification after this many attempts (~25 minutes of retries).
const MAX_ATTEMPTS: u32 = 30;
/// Longest pause between two attempts.
const MAX_BACKOFF_SECS: u64 = 60;

/// Drains the outbox.
#[derive(Debug, Clone)]
pub struct OutboxWorker {
    pub config: Arc<Config>,
    pub store: Store,
    pub slack: Option<Slack>,
    pub sns: Option<SnsPublisher>,
    pub dry_run: bool,
    pub wakeup: Arc<Notify>,
}

impl OutboxWorker {
    /// Runs until `cancel`, then makes one last pass so queued posts are not left behind.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            self.drain().await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.drain().await;
    }

    /// One pass over the pending notifications; returns how many were sent.
    pub async fn drain(&self) -> usize {
        let items = match self.store.outbox_pending(200).await {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "Outbox unreadable");
                return 0;
            }
        };
        let now = Utc::now();
        // Order matters within one incident and channel (the first post before its follow-ups),
        // not across channels: a failing Slack must not hold back SNS.
        let mut blocked: HashSet<(String, String)> = HashSet::new();
        let mut sent = 0;
        for item in items {
            // Keep each incident's posts in order: a later post waits for an earlier one.
            let lane = (item.key.clone(), channel_name(&item.notification));
            if blocked.contains(&lane) || item.next_attempt_at > now {
                blocked.insert(lane);
                continue;
            }
            match self.send(&item).await {
                Ok(outcome) => {
                    sent += 1;
                    tracing::info!(
                        incident_key = %item.key,
                        channel = %channel_name(&item.notification),
                        queued_ms = (Utc::now() - item.created_at).num_milliseconds(),
                        "Notification sent"
                    );
                    if let Err(e) = self
                        .store
                        .outbox_sent(&item, Utc::now(), outcome.thread)
                        .await
                    {
                        tracing::error!(incident_key = %item.key, error = %e, "Sent but not recorded; may repeat once");
                    }
                }
                Err(error) => {
                    blocked.insert(lane);
                    self.failed(&item, error).await;
                }
            }
        }
        sent
    }

    async fn failed(&self, item: &OutboxItem, error: SendError) {
        let attempts = item.attempts + 1;
        let give_up = error.permanent || attempts >= MAX_ATTEMPTS;
        let backoff = error.retry_after.unwrap_or_else(|| {
            Duration::from_secs(2u64.saturating_pow(attempts.min(6)).min(MAX_BACKOFF_SECS))
        });
        let retry_at =
            (!give_up).then(|| Utc::now() + ChronoDuration::from_std(backoff).unwrap_or_default());
        tracing::warn!(
            incident_key = %item.key,
            channel = %channel_name(&item.notification),
            attempts,
            give_up,
            error = %error.message,
            "Notification failed"
        );
        if let Err(e) = self
            .store
            .outbox_failed(item, Utc::now(), error.message, retry_at)
            .await
        {
            tracing::error!(incident_key = %item.key, error = %e, "Cannot record the failed notification");
        }
    }

    async fn send(&self, item: &OutboxItem) -> Result<Sent, SendError> {
        let Some((incident, timeline)) = self
            .store
            .incident(&item.key)
            .await
            .map_err(|e| SendError::transient(e.to_string()))?
        else {
            return Err(SendError::permanent(format!(
                "incident {} not found",
                item.key
            )));
        };
        let n = &item.notification;
        let message = render(
            &self.config,
            &incident,
            &timeline,
            n.kind,
            item.note.as_deref(),
            n.mention.as_deref(),
        );
        if self.dry_run {
            tracing::info!(incident_key = %item.key, channel = %channel_name(n), subject = %message.subject, "Dry-run: notification not sent");
            return Ok(Sent::default());
        }
        match &n.channel {
            Channel::Slack { channel } => {
                let Some(slack) = &self.slack else {
                    return Err(SendError::permanent("slack is not configured"));
                };
                let thread = self
                    .store
                    .thread(&item.key)
                    .await
                    .map_err(|e| SendError::transient(e.to_string()))?;
                let reply_in = if n.kind == NotificationKind::Opened {
                    None
                } else {
                    thread.as_ref()
                };
                let sent = slack
                    .post(channel, &message.text, &message.blocks, reply_in)
                    .await?;
                if let Some(thread) = reply_in {
                    // Keep the first post current (state, ack button) for people who only see it.
                    let current = render(
                        &self.config,
                        &incident,
                        &timeline,
                        NotificationKind::Opened,
                        None,
                        None,
                    );
                    if let Err(e) = slack.update(thread, &current.text, &current.blocks).await {
                        tracing::warn!(incident_key = %item.key, error = %e.message, "Slack chat.update failed");
                    }
                }
                Ok(sent)
            }
            Channel::Sns { topic_arn } => {
                let Some(sns) = &self.sns else {
                    return Err(SendError::permanent("sns is not configured"));
                };
                let attributes = [
                    ("incident_type", incident.incident_type.as_str().to_string()),
                    ("severity", incident.severity.as_str().to_string()),
                    ("environment", incident.environment.clone()),
                    ("incident_key", incident.key.clone()),
                    ("notification", format!("{:?}", n.kind).to_lowercase()),
                ];
                sns.publish(topic_arn, &message.subject, &message.text, &attributes)
                    .await
                    .map(|_| Sent::default())
                    .map_err(|e| SendError {
                        message: e.to_string(),
                        retry_after: None,
                        permanent: !e.is_retriable(),
                    })
            }
        }
    }
}
