//! The outbox worker: sends what the store queued, in order per incident, with backoff and
//! Retry-After, and records the outcome. One lane per notifier kind, drained by a task of its
//! own, so a failing notifier delays only its own posts. Each post goes through the same stages,
//! in [`OutboxWorker::drain_items`]: claim → silence → storm → send → record.

use super::markup::Markup;
use super::registry::Notifiers;
use super::render::render;
use super::storm::{Lane, StormGuard};
use super::{Post, SendError, Sent, Summary};
use crate::metrics::metrics;
use crate::store::until_stored;
use crate::store::{channel_name, OutboxItem, Silence, Store};
use chrono::{Duration as ChronoDuration, Utc};
use pipeline_responder_core::config::Config;
use pipeline_responder_core::decision::NotificationKind;
use pipeline_responder_core::record::TimelineKind;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Give up on a notification after this many attempts (~25 minutes of retries).
const MAX_ATTEMPTS: u32 = 30;

/// Drains the outbox.
#[derive(Debug, Clone)]
pub struct OutboxWorker {
    pub config: Arc<Config>,
    pub store: Store,
    pub notifiers: Notifiers,
    pub dry_run: bool,
    pub wakeups: crate::wakeups::Wakeups,
    /// Posts per channel and kind in the storm window (shared by restarts of this worker).
    pub storm: Arc<std::sync::Mutex<StormGuard>>,
}

impl OutboxWorker {
    /// Runs until `cancel`, then makes one last pass so queued posts are not left behind.
    ///
    /// Each pass reads the pending notifications once and hands each notifier kind's to a task
    /// of its own; a kind whose previous task is still sending (an SNS Publish that hangs until
    /// its timeout, a Slack rate limit) is skipped this pass, so it delays only its own posts.
    pub async fn run(self, cancel: CancellationToken) {
        let done = Arc::new(Notify::new());
        let mut running: HashMap<String, tokio::task::JoinHandle<usize>> = HashMap::new();
        loop {
            running.retain(|_, task| !task.is_finished());
            if running.len() < self.notifiers.kinds().count().max(1) {
                for (family, items) in self.pending().await {
                    if running.contains_key(&family) || items.is_empty() {
                        continue;
                    }
                    let (worker, done) = (self.clone(), Arc::clone(&done));
                    let task = tokio::spawn(async move {
                        let sent = worker.drain_items(items).await;
                        // More may be waiting behind what was sent; a pass that sent nothing
                        // (all not yet due) waits for the timer or the next wake-up instead.
                        if sent > 0 {
                            done.notify_one();
                        }
                        sent
                    });
                    running.insert(family, task);
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wakeups.posts() => {}
                _ = done.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        for (_, task) in running {
            let _ = task.await;
        }
        self.drain().await;
    }

    /// One pass over the pending notifications of every channel; returns how many were sent.
    pub async fn drain(&self) -> usize {
        let mut sent = 0;
        for (_, items) in self.pending().await {
            sent += self.drain_items(items).await;
        }
        sent
    }

    /// The pending notifications (a page of them), by notifier kind.
    async fn pending(&self) -> Vec<(String, Vec<OutboxItem>)> {
        let items = match self.store.outbox_pending(200).await {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "Outbox unreadable");
                metrics().store_errors.with_label_values(&["outbox"]).inc();
                return Vec::new();
            }
        };
        let mut lanes: BTreeMap<String, Vec<OutboxItem>> = BTreeMap::new();
        for item in items {
            lanes
                .entry(item.notification.channel.kind.clone())
                .or_default()
                .push(item);
        }
        lanes.into_iter().collect()
    }

    /// Sends `items` (one page, in order); returns how many were sent.
    async fn drain_items(&self, items: Vec<OutboxItem>) -> usize {
        if items.is_empty() {
            return 0;
        }
        let now = Utc::now();
        // Order matters within one incident and channel (the first post before its follow-ups),
        // not across channels: a failing Slack must not hold back SNS.
        let mut blocked: HashSet<(String, String)> = HashSet::new();
        let mut sent = 0;
        let mut storm_buckets: HashMap<Lane, Vec<OutboxItem>> = HashMap::new();
        let silences = self.store.silences(now).await.unwrap_or_default();
        for item in items {
            // Keep each incident's posts in order: a later post waits for an earlier one.
            let lane = (item.key.clone(), channel_name(&item.notification));
            if blocked.contains(&lane) || item.next_attempt_at > now {
                blocked.insert(lane);
                continue;
            }
            // Another replica may be sending it (or an earlier post of its lane) right now.
            // The lease runs from now, not from the start of this pass (a long pass would hand out
            // leases that are already over).
            match self.store.outbox_claim(&item, Utc::now()).await {
                Ok(true) => {}
                Ok(false) => {
                    blocked.insert(lane);
                    continue;
                }
                Err(e) => {
                    tracing::error!(incident_key = %item.key, error = %e, "Cannot claim a notification; retried next pass");
                    blocked.insert(lane);
                    continue;
                }
            }
            if let Some(silence) = self.silenced_by(&item, &silences, now).await {
                if let Err(e) = self.store.outbox_silenced(&item, silence, Utc::now()).await {
                    tracing::error!(incident_key = %item.key, error = %e, "Cannot record a silenced notification");
                }
                tracing::info!(incident_key = %item.key, silence, "Notification silenced");
                count(&item, "silenced", 1);
                continue;
            }
            let storm_lane: Lane = channel_name(&item.notification);
            let grouped = self
                .notifiers
                .get(&item.notification.channel.kind)
                .is_none_or(|n| n.groups_in_storms())
                && !self.in_thread(&item).await;
            if grouped && !self.guard().allows(&storm_lane, now) {
                storm_buckets.entry(storm_lane).or_default().push(item);
                continue;
            }
            match self.send(&item).await {
                Ok(outcome) => {
                    sent += 1;
                    count(&item, if self.dry_run { "dry_run" } else { "sent" }, 1);
                    if grouped {
                        self.guard().record(&storm_lane, Utc::now());
                    }
                    tracing::info!(
                        incident_key = %item.key,
                        channel = %channel_name(&item.notification),
                        queued_ms = (Utc::now() - item.created_at).num_milliseconds(),
                        "Notification sent"
                    );
                    // Sent: the mark must land, or the post would be sent again.
                    if let Err(e) = until_stored("Recording a sent notification", &item.key, || {
                        self.store
                            .outbox_sent(&item, Utc::now(), outcome.thread.clone())
                    })
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
        for (lane, items) in storm_buckets {
            sent += self.summarize(lane, items, now).await;
        }
        sent
    }

    /// The id of a silence that covers the item's incident now, if any.
    async fn silenced_by(
        &self,
        item: &OutboxItem,
        silences: &[Silence],
        now: chrono::DateTime<Utc>,
    ) -> Option<i64> {
        if silences.is_empty() {
            return None;
        }
        let (incident, _) = self.store.incident(&item.key).await.ok()??;
        silences
            .iter()
            .find(|s| s.covers(&incident, now))
            .map(|s| s.id)
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, StormGuard> {
        self.storm
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One summary post for `items` (all of one channel and kind), or defer them to the next
    /// summary of the lane when this window already had one.
    async fn summarize(
        &self,
        lane: Lane,
        items: Vec<OutboxItem>,
        now: chrono::DateTime<Utc>,
    ) -> usize {
        let at = self.guard().next_summary_at(&lane, now);
        if at > now {
            if let Err(e) = self
                .store
                .outbox_defer(items.iter().map(|i| (i.id, i.key.clone())).collect(), at)
                .await
            {
                tracing::error!(error = %e, "Cannot defer storm notifications");
            }
            return 0;
        }
        let mut by_env: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for item in &items {
            if let Ok(Some((incident, _))) = self.store.incident(&item.key).await {
                *by_env.entry(incident.environment).or_default() += 1;
                *by_type
                    .entry(incident.incident_type.to_string())
                    .or_default() += 1;
            }
        }
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for item in &items {
            *kinds
                .entry(item.notification.kind.as_str().to_string())
                .or_default() += 1;
        }
        let mut keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        keys.dedup();
        // Written once per markup: keys and environment names are escaped for Slack.
        let text_in = |m: &Markup| {
            let list = |counts: &BTreeMap<String, usize>| {
                counts
                    .iter()
                    .map(|(k, v)| format!("{} {v}", m.esc(k)))
                    .collect::<Vec<_>>()
                    .join(" · ")
            };
            let more = keys.len().saturating_sub(5);
            let first: Vec<String> = keys
                .iter()
                .take(5)
                .map(|k| format!("`{}`", m.esc(k)))
                .collect();
            format!(
                "🌪 Storm control: {} more posts grouped into this one ({}; more than {} in {} s).\nBy environment: {}\nBy type: {}\nFirst: {}{}\nEvery incident is recorded and escalated: `pipeline-responder incidents list`.",
                items.len(),
                list(&kinds),
                self.config.storm.max_incidents,
                self.config.storm.window_secs,
                list(&by_env),
                list(&by_type),
                first.join(", "),
                if more > 0 { format!(" (+{more} more)") } else { String::new() },
            )
        };
        let summary = Summary {
            subject: format!("[STORM] {} grouped notifications", items.len()),
            plain: text_in(&Markup::Plain),
            slack: text_in(&Markup::slack(&self.config)),
            grouped: items.len(),
        };
        let channel = &items[0].notification.channel;
        let outcome = if self.dry_run {
            tracing::info!(channel = %lane, grouped = items.len(), "Dry-run: storm summary not sent");
            Ok(())
        } else {
            match self.notifiers.get(&channel.kind) {
                Some(notifier) => notifier.send_summary(&channel.target, &summary).await,
                None => Err(not_configured(&channel.kind)),
            }
        };
        match outcome {
            Ok(()) => {
                self.guard().record_summary(&lane, Utc::now());
                count(&items[0], "storm_summary", 1);
                count(&items[0], "summarized", items.len() as u64);
                tracing::warn!(channel = %lane, grouped = items.len(), "Storm: summary posted instead of individual posts");
                let ids: Vec<_> = items.iter().map(|i| (i.id, i.key.clone())).collect();
                if let Err(e) = until_stored("Recording a storm summary", &lane, || {
                    self.store.outbox_summarized(ids.clone(), Utc::now())
                })
                .await
                {
                    tracing::error!(error = %e, "Storm summary sent but not recorded; may repeat once");
                }
                1
            }
            Err(e) => {
                tracing::warn!(channel = %lane, error = %e.message, "Storm summary failed; retried next pass");
                0
            }
        }
    }

    async fn failed(&self, item: &OutboxItem, error: SendError) {
        let attempts = item.attempts + 1;
        let give_up = error.permanent || attempts >= MAX_ATTEMPTS;
        count(item, if give_up { "given_up" } else { "failed" }, 1);
        let backoff = super::backoff(attempts, &error);
        let retry_at = (!give_up).then(|| {
            let now = Utc::now();
            ChronoDuration::from_std(backoff)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(now)
        });
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

    /// A follow-up that goes in the thread of an incident already posted on its own (an update,
    /// an action's answer, the resolution): not channel noise, so storm control neither groups
    /// it nor counts it against the window (clicks in a thread must not push the next incident
    /// into a summary). A failed lookup counts as "not in a thread".
    async fn in_thread(&self, item: &OutboxItem) -> bool {
        let n = &item.notification;
        if n.kind == NotificationKind::Opened
            || !self
                .notifiers
                .get(&n.channel.kind)
                .is_some_and(|x| x.threads())
        {
            return false;
        }
        matches!(self.store.thread(&item.key).await, Ok(Some(_)))
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
        let Some(notifier) = self.notifiers.get(&n.channel.kind) else {
            return Err(not_configured(&n.channel.kind));
        };
        let thread = if notifier.threads() {
            self.store
                .thread(&item.key)
                .await
                .map_err(|e| SendError::transient(e.to_string()))?
        } else {
            None
        };
        let post = Post {
            target: &n.channel.target,
            notification: n,
            incident: &incident,
            timeline: &timeline,
            message: &message,
            thread: thread.as_ref(),
        };
        let result = notifier.send(post).await;
        // The first notification of the incident on any channel: how long people waited. Slack
        // and SNS send concurrently, so the timeline read before sending may show neither.
        if result.is_ok()
            && n.kind == NotificationKind::Opened
            && !timeline.iter().any(|e| e.kind == TimelineKind::Notified)
            && first_notified(&item.key)
        {
            let waited = (Utc::now() - incident.event_time).num_milliseconds().max(0);
            metrics()
                .first_notification_latency
                .observe(waited as f64 / 1000.0);
        }
        result
    }
}

/// True the first time it is called for `key` in this process (a bounded memory of recent keys).
fn first_notified(key: &str) -> bool {
    static SEEN: std::sync::LazyLock<std::sync::Mutex<HashSet<String>>> =
        std::sync::LazyLock::new(Default::default);
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if seen.len() >= 100_000 {
        seen.clear();
    }
    seen.insert(key.to_string())
}

/// A notification for a kind no notifier serves (its section was removed from the config).
fn not_configured(kind: &str) -> SendError {
    SendError::permanent(format!("{kind} is not configured"))
}

/// Counts notifications by notifier kind (`slack`, `pagerduty`: never the target itself).
fn count(item: &OutboxItem, outcome: &str, n: u64) {
    metrics()
        .notifications
        .with_label_values(&[item.notification.channel.kind.as_str(), outcome])
        .inc_by(n);
}
