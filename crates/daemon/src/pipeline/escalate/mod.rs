//! The escalation engine: fires each incident's stored deadlines when they come due — once,
//! after a restart too, and not after an acknowledgement (unless the step runs until
//! resolution). Deadlines are absolute times in the store, so nothing is kept in memory.

use crate::store::Store;
use chrono::{DateTime, Utc};
use pipeline_responder_core::config::Config;
use pipeline_responder_core::rules;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The time source: the system clock in production; in tests, one that follows Tokio's paused
/// time so timers can be advanced without sleeping.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// A clock at `base` when created, moving with Tokio time (paused or not).
#[cfg_attr(not(test), allow(dead_code))]
pub fn tokio_clock(base: DateTime<Utc>) -> Clock {
    let start = tokio::time::Instant::now();
    Arc::new(move || base + chrono::Duration::from_std(start.elapsed()).unwrap_or_default())
}

/// Longest sleep between two looks at the store (new deadlines appear as incidents open).
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// Fires due deadlines.
#[derive(Clone)]
pub struct Escalator {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Clock,
    pub wakeups: crate::wakeups::Wakeups,
}

impl std::fmt::Debug for Escalator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Escalator").finish_non_exhaustive()
    }
}

impl Escalator {
    /// Fires every deadline due now; returns how many sent notifications.
    pub async fn tick(&self) -> usize {
        let now = (self.clock)();
        let due = match self.store.due_deadlines(now, 200).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "Deadlines unreadable");
                crate::metrics::metrics()
                    .store_errors
                    .with_label_values(&["deadlines"])
                    .inc();
                return 0;
            }
        };
        let mut fired = 0;
        for deadline in due {
            let key = deadline.key.clone();
            let level = deadline.deadline.level_id.clone();
            let kind = match deadline.deadline.kind {
                pipeline_responder_core::decision::DeadlineKind::Escalation => "escalation",
                pipeline_responder_core::decision::DeadlineKind::Reminder => "reminder",
            };
            let notifications = rules::deadline_notifications(
                &self.config,
                &deadline.environment,
                &deadline.deadline,
                now,
            );
            match self.store.fire_deadline(deadline, notifications, now).await {
                Ok(true) => {
                    fired += 1;
                    tracing::info!(incident_key = %key, level = %level, kind, "Escalated");
                    crate::metrics::metrics()
                        .escalations
                        .with_label_values(&[&level, kind])
                        .inc();
                }
                Ok(false) => {
                    tracing::debug!(incident_key = %key, level = %level, "Deadline no longer applies")
                }
                Err(e) => {
                    tracing::error!(incident_key = %key, error = %e, "Deadline not fired; retried next tick");
                    crate::metrics::metrics()
                        .store_errors
                        .with_label_values(&["deadlines"])
                        .inc();
                }
            }
        }
        if fired > 0 {
            self.wakeups.posts_queued();
        }
        fired
    }

    /// Ticks at each deadline (and at least every few seconds) until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            self.tick().await;
            let wait = match self.store.next_deadline_at().await {
                Ok(Some(next)) => (next - (self.clock)())
                    .to_std()
                    .unwrap_or_default()
                    .min(MAX_SLEEP),
                _ => MAX_SLEEP,
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.wakeups.deadlines() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
