//! Acknowledge and resolve, whoever asks (the API, a Slack button, a pager's webhook): the rules
//! say who is told (pagers stop paging at every level they paged), the store records it once.

use super::Api;
use crate::store::{Closing, Result};
use chrono::Utc;
use pipeline_responder_core::decision::NotificationKind;
use pipeline_responder_core::rules;
use std::sync::Arc;

/// What happened to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Nothing to do: already acknowledged or resolved.
    AlreadyDone,
    NotFound,
}

/// Acknowledges `key` as `by`; escalation "until acknowledged" stops.
pub async fn acknowledge(api: &Api, key: &str, by: &str) -> Result<Outcome> {
    act(api, key, by, NotificationKind::Acknowledged).await
}

/// Resolves `key` by hand as `by`.
pub async fn resolve(api: &Api, key: &str, by: &str) -> Result<Outcome> {
    act(api, key, by, NotificationKind::Resolved).await
}

async fn act(api: &Api, key: &str, by: &str, kind: NotificationKind) -> Result<Outcome> {
    let now = Utc::now();
    let config = Arc::clone(&api.config);
    // Decided on the incident as the store reads it for the change: one read, and a level
    // paged a moment before is told too.
    let closing: Closing = Arc::new(move |incident| {
        rules::closing_notifications(
            &config,
            &incident.environment,
            kind,
            incident.highest_level_notified,
            now,
        )
    });
    let done = if kind == NotificationKind::Resolved {
        api.store.resolve(key, by, closing, now).await?
    } else {
        api.store.acknowledge(key, by, closing, now).await?
    };
    if !done {
        // Rare: tell an unknown incident from one already acknowledged or resolved.
        return Ok(match api.store.incident(key).await? {
            Some(_) => Outcome::AlreadyDone,
            None => Outcome::NotFound,
        });
    }
    tracing::info!(incident_key = %key, by = %by, "Incident {}", kind.as_str());
    api.wakeups.posts_queued();
    Ok(Outcome::Done)
}
