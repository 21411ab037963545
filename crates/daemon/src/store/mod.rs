//! The embedded store: incidents with their timeline, processed event ids, escalation deadlines,
//! the notification outbox, and one-off job claims, in one SQLite file.
//!
//! Why SQLite (rusqlite, bundled): one file on the task's volume, ACID transactions with WAL and
//! `synchronous = FULL` (a commit survives kill -9 and power loss), and operators can inspect it
//! with the `sqlite3` shell during an incident. Every change an input causes — the incident, its
//! timeline, its deadlines, the notifications to send, and the event id marked processed — is
//! written in ONE transaction, so a crash leaves either all of it or none of it (the SQS message
//! is then redelivered and handled again). Notifications go through the outbox: they are sent
//! after the commit and marked sent afterwards, so a crash repeats a post at most once and never
//! loses one.

mod boundary;
pub mod dynamodb;
mod plan;
mod schema;
mod sqlite;

pub use dynamodb::DynamoStore;
pub use plan::channel_name;
pub use sqlite::SqliteStore;

use chrono::{DateTime, Utc};
use pipeline_responder_core::actions::ActionRecord;
use pipeline_responder_core::decision::{Deadline, Decision, IncidentUpdate, Notification};
use pipeline_responder_core::incident::{IncidentStatus, IncidentsView};
use pipeline_responder_core::record::{DiagnosticResult, Incident, TimelineEntry};
use pipeline_responder_core::redact::Redactor;
use std::path::Path;
use std::sync::Arc;

/// Why the store failed. Every variant means "not stored": the caller must not acknowledge the
/// input (the SQS message stays and comes back).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: stored JSON is unreadable ({0}); the file was written by another version?")]
    Json(#[from] serde_json::Error),
    #[error("store: cannot open {path}: {source}; check the volume is mounted and writable")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("store: worker thread failed: {0}")]
    Join(String),
    #[error("store: DynamoDB {operation} failed: {message}")]
    Dynamo {
        operation: &'static str,
        message: String,
    },
    #[error(
        "store: DynamoDB item {item} is malformed: {problem}; was it written by another program?"
    )]
    Malformed { item: String, problem: String },
    #[error("store: {0} kept changing under concurrent writers; retried and gave up (the input is retried later)")]
    Contended(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The input whose effects are being stored.
#[derive(Debug, Clone)]
pub struct InputRecord {
    /// Event id (EventBridge `id`, SNS `MessageId`, ...).
    pub id: String,
    /// Second de-duplication key (same transition under another id).
    pub transition: String,
    /// When the event happened.
    pub event_time: DateTime<Utc>,
}

/// A notification waiting to be sent (or retried).
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub key: String,
    pub notification: Notification,
    /// Why it was queued (e.g. the escalation reason), shown in the post.
    pub note: Option<String>,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// Not before this time (backoff after a failure).
    pub next_attempt_at: DateTime<Utc>,
}

/// A silence: notifications of matching incidents are not sent while it lasts (the incidents
/// are still recorded, diagnosed and escalated in the timeline).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Silence {
    #[serde(default)]
    pub id: i64,
    pub environment: Option<String>,
    pub pipeline: Option<String>,
    pub incident_type: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: Option<String>,
}

impl Silence {
    /// Whether the silence covers `incident` at `now` (every given field must match).
    pub fn covers(&self, incident: &Incident, now: DateTime<Utc>) -> bool {
        now >= self.starts_at
            && now < self.ends_at
            && self
                .environment
                .as_deref()
                .is_none_or(|e| e == incident.environment)
            && self
                .pipeline
                .as_deref()
                .is_none_or(|p| p == incident.pipeline)
            && self
                .incident_type
                .as_deref()
                .is_none_or(|t| t == incident.incident_type.as_str())
    }
}

/// A deadline that has come due, with the incident's environment (for its channels).
#[derive(Debug, Clone)]
pub struct DueDeadline {
    pub id: i64,
    pub key: String,
    pub deadline: Deadline,
    pub environment: String,
}

/// What the metrics gauges show about stored state, read in one go per scrape.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Gauges {
    /// Active incidents counted by (environment, status).
    pub active: Vec<(String, IncidentStatus, i64)>,
    /// Pending deadlines.
    pub pending_deadlines: i64,
    /// Pending deadlines due longer than the `late` given.
    pub overdue_deadlines: i64,
    /// When the oldest pending deadline that is due now was due.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// Where a page of the incident list ends: the list is newest first by (opened_at, key), and
/// the next page starts after this one. Shown to API clients as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub opened_at_ms: i64,
    pub key: String,
}

impl Cursor {
    /// The cursor after `incident`.
    pub fn after(incident: &Incident) -> Self {
        Self {
            opened_at_ms: incident.opened_at.timestamp_millis(),
            key: incident.key.clone(),
        }
    }

    /// Opaque, URL-safe form (hex of `<millis>:<key>`).
    pub fn encode(&self) -> String {
        format!("{}:{}", self.opened_at_ms, self.key)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads what [`Cursor::encode`] wrote; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        if !text.len().is_multiple_of(2) || text.len() > 4096 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect();
        let text = String::from_utf8(bytes?).ok()?;
        let (ms, key) = text.split_once(':')?;
        Some(Self {
            opened_at_ms: ms.parse().ok()?,
            key: key.to_string(),
        })
    }

    /// Whether `incident` comes after this cursor in the list's order.
    pub fn precedes(&self, incident: &Incident) -> bool {
        let at = incident.opened_at.timestamp_millis();
        at < self.opened_at_ms || (at == self.opened_at_ms && incident.key < self.key)
    }
}

/// What a retention sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Resolved incidents (with their timelines, settled posts and timers).
    pub incidents: u64,
    /// Processed-event ids.
    pub events: u64,
    /// Settled posts, fired timers, ended silences, lapsed claims and quarantined rows.
    pub other: u64,
}

/// What storing an input did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The input had been processed before: nothing was changed.
    pub duplicate: bool,
    /// Keys of incidents opened by this input.
    pub opened: Vec<String>,
    /// Outbox rows queued.
    pub queued: usize,
}

/// The notifications a closing transition (acknowledge, resolve) queues, decided from the
/// incident as the store reads it for that transition (so a level paged a moment before is
/// told too, and the incident is read once).
pub type Closing = Arc<dyn Fn(&Incident) -> Vec<Notification> + Send + Sync>;

/// A transition by hand, as both backends write it: an acknowledgement (escalation "until
/// acknowledged" stops), a resolution, or an operator's action (an answered approval resolves).
/// Pending deadlines are cancelled whenever the incident ends up resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Close {
    Acknowledge,
    Resolve,
    Act(ActionRecord),
}

impl Close {
    /// The transition on `incident`; none when it is already done (an action is always
    /// recorded: refusals are audited too).
    pub(crate) fn apply(
        &self,
        incident: &mut Incident,
        by: &str,
        now: DateTime<Utc>,
    ) -> Option<TimelineEntry> {
        match self {
            Close::Acknowledge => incident.acknowledge(by, now),
            Close::Resolve => incident.resolve_by(by, now),
            Close::Act(record) => Some(incident.record_action(record, now)),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Close::Acknowledge => "acknowledgement",
            Close::Resolve => "resolution",
            Close::Act(_) => "action",
        }
    }
}

/// Notifications that do not depend on the incident (the store tests).
#[cfg(test)]
pub fn fixed(notifications: Vec<Notification>) -> Closing {
    Arc::new(move |_| notifications.clone())
}

/// What every store does. Both implementations ([`SqliteStore`], [`DynamoStore`]) pass one
/// conformance suite (`tests.rs`); the daemon holds whichever the configuration names as a
/// [`Store`]. Every method that changes anything changes it atomically: all of it or none.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// "embedded" or "dynamodb" (for logs).
    fn kind(&self) -> &'static str;

    /// Whether an input (by id or by transition) was already processed.
    async fn is_processed(&self, id: &str, transition: &str) -> Result<bool>;

    /// The incidents the rules should consult: active ones and those resolved since `since`.
    async fn view(&self, since: DateTime<Utc>) -> Result<Arc<IncidentsView>>;

    /// Stores everything `decision` says and marks the input processed, atomically. An open of
    /// a key that exists (another input or replica was first) only joins it.
    async fn apply(
        &self,
        input: InputRecord,
        decision: Decision,
        now: DateTime<Utc>,
        hold_first_post_until: Option<DateTime<Utc>>,
    ) -> Result<Applied>;

    /// An incident and its timeline (oldest entry first).
    async fn incident(&self, key: &str) -> Result<Option<(Incident, Vec<TimelineEntry>)>>;

    /// Every incident, newest first (`active_only` leaves out resolved ones).
    async fn incidents(&self, active_only: bool) -> Result<Vec<Incident>>;

    /// One page of [`Backend::incidents`]: newest first by (opened_at, key), at most `limit`,
    /// after `after`. This default reads them all; SQLite reads only the page.
    async fn incidents_page(
        &self,
        active_only: bool,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Vec<Incident>> {
        let mut all = self.incidents(active_only).await?;
        all.sort_by(|a, b| (b.opened_at, &b.key).cmp(&(a.opened_at, &a.key)));
        Ok(all
            .into_iter()
            .filter(|i| after.as_ref().is_none_or(|c| c.precedes(i)))
            .take(limit)
            .collect())
    }

    /// Removes what is older than `before` and no longer needed: resolved incidents (with their
    /// timelines, settled posts and timers), processed-event ids, settled posts, ended silences,
    /// lapsed claims. Small batches, so writers are not held up. This default removes nothing
    /// (DynamoDB's TTL expires such items by itself).
    async fn prune(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<Pruned> {
        let _ = (before, now);
        Ok(Pruned::default())
    }

    /// Pending notifications, oldest first (the caller keeps each incident's posts in order).
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxItem>>;

    /// Takes a pending notification for sending by this process for a while (a lease), so that
    /// two replicas never send the same post; false when another process holds it or it is no
    /// longer pending. A replica that dies holding a lease repeats at most that one post when
    /// the lease runs out and another replica takes it.
    async fn outbox_claim(&self, item: &OutboxItem, now: DateTime<Utc>) -> Result<bool>;

    /// Records a sent notification (and, for Slack bot posts, the message ts to thread under).
    async fn outbox_sent(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        thread: Option<(String, String)>,
    ) -> Result<()>;

    /// Records a failed attempt; the item is retried at `retry_at`, or given up when `None`.
    async fn outbox_failed(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()>;

    /// Stores diagnostic results and the facts they revealed, releases the held first post, and
    /// queues a follow-up in the incident's Slack channel(s) when the first post already went
    /// out. Returns whether a held first post was released.
    async fn record_diagnosis(
        &self,
        key: &str,
        results: Vec<DiagnosticResult>,
        update: IncidentUpdate,
        follow_ups: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Records an acknowledgement: escalation steps that run "until acknowledged" stop.
    /// Returns false when the incident is unknown or no longer open.
    async fn acknowledge(
        &self,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Resolves an incident by hand: pending deadlines are cancelled and `notifications` queued.
    /// Returns false when the incident is unknown or already resolved.
    async fn resolve(
        &self,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Records an operator's action (allowed or refused) in the incident's timeline and queues
    /// `notifications` (decided on the incident with the action recorded); an answered approval
    /// resolves the incident and cancels its deadlines. False when the incident is unknown.
    async fn record_action(
        &self,
        key: &str,
        record: ActionRecord,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Pending deadlines due at `now`, oldest first (found by index, not by scanning).
    async fn due_deadlines(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueDeadline>>;

    /// Pending deadlines (for readiness and metrics).
    async fn pending_deadlines(&self) -> Result<i64>;

    /// The counts the metrics gauges show. This default reads whole incidents; a backend that
    /// can count without reading them (SQLite) does so.
    async fn gauges(&self, now: DateTime<Utc>, late: chrono::Duration) -> Result<Gauges> {
        let mut active: std::collections::HashMap<(String, IncidentStatus), i64> =
            Default::default();
        for incident in self.incidents(true).await? {
            *active
                .entry((incident.environment, incident.status))
                .or_default() += 1;
        }
        let due = self.due_deadlines(now, 10_000).await?;
        Ok(Gauges {
            active: active.into_iter().map(|((e, s), n)| (e, s, n)).collect(),
            pending_deadlines: self.pending_deadlines().await?,
            overdue_deadlines: due.iter().filter(|d| now - d.deadline.at > late).count() as i64,
            oldest_due: due.iter().map(|d| d.deadline.at).min(),
        })
    }

    /// When the next pending deadline is due, if any.
    async fn next_deadline_at(&self) -> Result<Option<DateTime<Utc>>>;

    /// Fires one deadline, once across processes: claims it (pending → fired/skipped), checks
    /// against the incident as it is now whether it still applies, and if so records the
    /// escalation and queues `notifications`, all atomically. Returns whether notifications
    /// were queued.
    async fn fire_deadline(
        &self,
        due: DueDeadline,
        notifications: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Marks notifications (id, incident key) as covered by a storm summary.
    async fn outbox_summarized(&self, items: Vec<(i64, String)>, now: DateTime<Utc>) -> Result<()>;

    /// Postpones notifications (id, incident key) to `at` (the next storm summary).
    async fn outbox_defer(&self, items: Vec<(i64, String)>, at: DateTime<Utc>) -> Result<()>;

    /// Stores a silence; returns its id.
    async fn add_silence(&self, silence: Silence) -> Result<i64>;

    /// Silences that have not ended by `now`.
    async fn silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>>;

    /// Ends a silence now; false when there is no such silence.
    async fn end_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool>;

    /// Marks a notification as not sent because a silence covers its incident.
    async fn outbox_silenced(
        &self,
        item: &OutboxItem,
        silence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// The Slack thread (channel, ts) of an incident's first bot post, if any.
    async fn thread(&self, key: &str) -> Result<Option<(String, String)>>;

    /// Claims a one-off job (e.g. the digest of one period) for this process: true for exactly one
    /// caller across processes and restarts; false when it was claimed before. The claim is kept
    /// for `keep_days` (then it may be forgotten).
    async fn claim_once(&self, key: &str, now: DateTime<Utc>, keep_days: u32) -> Result<bool>;

    /// Writes (and makes durable) one small record, to learn whether writes work now.
    async fn probe(&self, now: DateTime<Utc>) -> Result<()>;
}

/// The daemon's handle on its store. Cheap to clone; all clones share one backend. Every call
/// goes through the [`boundary`]: what is written is cleaned of control characters and secrets,
/// and whether writes work is kept for `/readyz` and the sources.
#[derive(Clone)]
pub struct Store(Arc<boundary::Boundary>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Store").field(&self.0.kind()).finish()
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    /// Opens (creating if needed) the embedded store file.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self::new(SqliteStore::open(path)?))
    }

    /// Wraps any backend (redacting the patterns of [`Redactor::default`]).
    pub fn new(backend: impl Backend) -> Self {
        Self(Arc::new(boundary::Boundary {
            inner: Arc::new(backend),
            redactor: Redactor::default(),
            health: Arc::default(),
        }))
    }

    /// The same store, also redacting the configuration's secrets.
    pub fn redacting(&self, redactor: Redactor) -> Self {
        Self(Arc::new(boundary::Boundary {
            inner: Arc::clone(&self.0.inner),
            redactor,
            health: Arc::clone(&self.0.health),
        }))
    }

    /// Writes that worked so far in this process (any change of what this process stored
    /// changes it).
    pub fn writes(&self) -> u64 {
        self.0.health.writes()
    }

    /// Why writes fail, if they do: tries a small write when none was tried in the last
    /// [`PROBE_EVERY`] (a readiness probe must see a full disk even when nothing else writes),
    /// and otherwise answers from the last write.
    pub async fn write_problem(&self) -> Option<String> {
        if self.0.health.probe_due(PROBE_EVERY) {
            let _ = self.0.probe(Utc::now()).await;
        }
        self.0.health.problem()
    }
}

/// Runs a store call until it works: a failing store (full disk, a locked or read-only file,
/// DynamoDB unreachable) is waited out with backoff from 1 s to 30 s, so what is owed (a
/// diagnosis, a sent-mark) is kept rather than dropped. A malformed item is not retried: it will
/// not fix itself.
pub async fn until_stored<T, F, Fut>(what: &str, key: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        match call().await {
            Err(e) if !matches!(e, StoreError::Malformed { .. }) => {
                tracing::warn!(incident_key = %key, error = %e, retry_in_secs = pause.as_secs(), "{what}: store failed; retrying until it works");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
            done => return done,
        }
    }
}

/// Counts one stored record that could not be read and was left out (both backends), as
/// `store_errors_total{operation="unreadable_row"}`.
fn count_unreadable() {
    crate::metrics::metrics()
        .store_errors
        .with_label_values(&["unreadable_row"])
        .inc();
}

/// How often readiness probes may write to the store.
pub const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

pub mod retention;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
