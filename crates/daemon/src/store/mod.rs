//! The embedded store: incidents with their timeline, processed event ids, escalation deadlines,
//! and the notification outbox, in one SQLite file.
//!
//! Why SQLite (rusqlite, bundled): one file on the task's volume, ACID transactions with WAL and
//! `synchronous = FULL` (a commit survives kill -9 and power loss), and operators can inspect it
//! with the `sqlite3` shell during an incident. Every change an input causes — the incident, its
//! timeline, its deadlines, the notifications to send, and the event id marked processed — is
//! written in ONE transaction, so a crash leaves either all of it or none of it (the SQS message
//! is then redelivered and handled again). Notifications go through the outbox: they are sent
//! after the commit and marked sent afterwards, so a crash repeats a post at most once and never
//! loses one.

mod schema;

use chrono::{DateTime, Utc};
use pipeline_responder_core::decision::{
    Channel, Deadline, Decision, IncidentUpdate, Notification, NotificationKind,
};
use pipeline_responder_core::incident::{IncidentStatus, IncidentsView};
use pipeline_responder_core::record::{
    action_key, DiagnosticResult, Incident, TimelineEntry, TimelineKind,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
use std::sync::{Arc, Mutex};

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

/// The embedded store. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store file.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        schema::prepare(&conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `work` on the connection on a blocking thread.
    async fn with<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Whether an input (by id or by transition) was already processed.
    pub async fn is_processed(&self, id: &str, transition: &str) -> Result<bool> {
        let (id, transition) = (id.to_string(), transition.to_string());
        self.with(move |conn| processed(conn, &id, &transition))
            .await
    }

    /// The incidents the rules should consult: active ones and those resolved since `since`.
    pub async fn view(&self, since: DateTime<Utc>) -> Result<IncidentsView> {
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT data FROM incidents WHERE status != 'resolved' OR resolved_at >= ?1",
            )?;
            let rows =
                stmt.query_map(params![since.timestamp_millis()], |r| r.get::<_, String>(0))?;
            let mut incidents = Vec::new();
            for row in rows {
                let incident: Incident = serde_json::from_str(&row?)?;
                incidents.push(incident.view());
            }
            Ok(IncidentsView::new(incidents))
        })
        .await
    }

    /// Stores everything `decision` says, and marks the input processed, in one transaction.
    /// `updates` are notifications for `Update` actions that asked to notify.
    pub async fn apply(
        &self,
        input: InputRecord,
        decision: Decision,
        updates: Vec<(String, Notification)>,
        now: DateTime<Utc>,
        hold_first_post_until: Option<DateTime<Utc>>,
    ) -> Result<Applied> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            if processed(&tx, &input.id, &input.transition)? {
                return Ok(Applied {
                    duplicate: true,
                    ..Applied::default()
                });
            }
            let applied =
                apply_decision(&tx, &input, &decision, &updates, now, hold_first_post_until)?;
            tx.execute(
                "INSERT OR IGNORE INTO events (id, transition, processed_at) VALUES (?1, ?2, ?3)",
                params![input.id, input.transition, now.timestamp_millis()],
            )?;
            tx.commit()?;
            Ok(applied)
        })
        .await
    }

    /// An incident and its timeline.
    pub async fn incident(&self, key: &str) -> Result<Option<(Incident, Vec<TimelineEntry>)>> {
        let key = key.to_string();
        self.with(move |conn| {
            let Some(incident) = load(conn, &key)? else {
                return Ok(None);
            };
            let mut stmt =
                conn.prepare_cached("SELECT data FROM timeline WHERE key = ?1 ORDER BY id")?;
            let rows = stmt.query_map(params![key], |r| r.get::<_, String>(0))?;
            let mut timeline = Vec::new();
            for row in rows {
                timeline.push(serde_json::from_str(&row?)?);
            }
            Ok(Some((incident, timeline)))
        })
        .await
    }

    /// Every incident, newest first (`active_only` leaves out resolved ones).
    pub async fn incidents(&self, active_only: bool) -> Result<Vec<Incident>> {
        self.with(move |conn| {
            let sql = if active_only {
                "SELECT data FROM incidents WHERE status != 'resolved' ORDER BY opened_at DESC"
            } else {
                "SELECT data FROM incidents ORDER BY opened_at DESC"
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(serde_json::from_str(&row?)?);
            }
            Ok(out)
        })
        .await
    }

    /// Pending notifications, oldest first (the caller keeps each incident's posts in order).
    pub async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxItem>> {
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, key, notification, note, attempts, created_at, next_attempt_at FROM outbox
                 WHERE state = 'pending' ORDER BY id LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, key, notification, note, attempts, created, next) = row?;
                out.push(OutboxItem {
                    id,
                    key,
                    notification: serde_json::from_str(&notification)?,
                    note,
                    attempts,
                    created_at: DateTime::from_timestamp_millis(created).unwrap_or_default(),
                    next_attempt_at: DateTime::from_timestamp_millis(next).unwrap_or_default(),
                });
            }
            Ok(out)
        })
        .await
    }

    /// Records a sent notification (and, for Slack bot posts, the message ts to thread under).
    pub async fn outbox_sent(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        thread: Option<(String, String)>,
    ) -> Result<()> {
        let (id, key) = (item.id, item.key.clone());
        let text = format!(
            "sent {} via {}",
            kind_name(&item.notification),
            channel_name(&item.notification)
        );
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1 WHERE id = ?1",
                params![id, now.timestamp_millis()],
            )?;
            if let Some((channel, ts)) = thread {
                tx.execute(
                    "INSERT OR IGNORE INTO threads (key, channel, ts) VALUES (?1, ?2, ?3)",
                    params![key, channel, ts],
                )?;
            }
            timeline(&tx, &key, &TimelineEntry { at: now, kind: TimelineKind::Notified, text })?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Records a failed attempt; the item is retried at `retry_at`, or given up when `None`.
    pub async fn outbox_failed(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let (id, key) = (item.id, item.key.clone());
        let channel = channel_name(&item.notification);
        self.with(move |conn| {
            let tx = conn.transaction()?;
            match retry_at {
                Some(at) => tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                    params![id, at.timestamp_millis(), error],
                )?,
                None => {
                    timeline(&tx, &key, &TimelineEntry {
                        at: now,
                        kind: TimelineKind::NotifyFailed,
                        text: format!("{channel}: gave up: {error}"),
                    })?;
                    tx.execute(
                        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                        params![id, error],
                    )?
                }
            };
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Stores diagnostic results and the facts they revealed, releases the held first post, and
    /// queues a follow-up in the incident's Slack channel(s) when the first post already went out.
    pub async fn record_diagnosis(
        &self,
        key: &str,
        results: Vec<DiagnosticResult>,
        update: IncidentUpdate,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let key = key.to_string();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let Some(mut incident) = load(&tx, &key)? else {
                return Ok(false);
            };
            incident.record_diagnosis(&results);
            incident.merge(&update);
            save(&tx, &incident)?;
            for r in &results {
                let state = if r.ok { "" } else { " (failed)" };
                timeline(&tx, &key, &TimelineEntry {
                    at: now,
                    kind: TimelineKind::Diagnostic,
                    text: format!("{}{state}: {}", r.name, r.summary),
                })?;
            }
            let released = tx.execute(
                "UPDATE outbox SET next_attempt_at = ?2 WHERE key = ?1 AND state = 'pending' AND attempts = 0 AND next_attempt_at > ?2",
                params![key, now.timestamp_millis()],
            )?;
            let sent_slack: Vec<String> = {
                let mut stmt = tx.prepare_cached("SELECT notification FROM outbox WHERE key = ?1 AND state = 'sent'")?;
                let rows = stmt.query_map(params![key], |r| r.get::<_, String>(0))?;
                rows.collect::<std::result::Result<_, _>>()?
            };
            let mut channels: Vec<Notification> = Vec::new();
            for text in sent_slack {
                let n: Notification = serde_json::from_str(&text)?;
                if n.kind == NotificationKind::Opened && matches!(n.channel, Channel::Slack { .. }) && !channels.contains(&n) {
                    channels.push(n);
                }
            }
            for n in channels {
                let follow_up = Notification { kind: NotificationKind::Updated, mention: None, ..n };
                queue(&tx, &key, &follow_up, Some("diagnostics"), now)?;
            }
            tx.commit()?;
            Ok(released > 0)
        })
        .await
    }

    /// Records an acknowledgement: escalation steps that run "until acknowledged" stop.
    /// Returns false when the incident is unknown or no longer open.
    pub async fn acknowledge(&self, key: &str, by: &str, now: DateTime<Utc>) -> Result<bool> {
        let (key, by) = (key.to_string(), by.to_string());
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let Some(mut incident) = load(&tx, &key)? else {
                return Ok(false);
            };
            if incident.status != IncidentStatus::Open {
                return Ok(false);
            }
            incident.status = IncidentStatus::Acknowledged;
            incident.acknowledged_at = Some(now);
            incident.acknowledged_by = Some(by.clone());
            save(&tx, &incident)?;
            timeline(
                &tx,
                &key,
                &TimelineEntry {
                    at: now,
                    kind: TimelineKind::Acknowledged,
                    text: format!("acknowledged by {by}"),
                },
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Resolves an incident by hand: pending deadlines are cancelled and `notifications` queued.
    /// Returns false when the incident is unknown or already resolved.
    pub async fn resolve(
        &self,
        key: &str,
        by: &str,
        notifications: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (key, by) = (key.to_string(), by.to_string());
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let Some(mut incident) = load(&tx, &key)? else {
                return Ok(false);
            };
            if !incident.status.is_active() {
                return Ok(false);
            }
            let reason = format!("resolved by {by}");
            incident.status = IncidentStatus::Resolved;
            incident.resolved_at = Some(now);
            incident.resolution = Some(reason.clone());
            save(&tx, &incident)?;
            tx.execute(
                "UPDATE deadlines SET state = 'cancelled' WHERE key = ?1 AND state = 'pending'",
                params![key],
            )?;
            timeline(
                &tx,
                &key,
                &TimelineEntry {
                    at: now,
                    kind: TimelineKind::Resolved,
                    text: reason.clone(),
                },
            )?;
            for n in &notifications {
                queue(&tx, &key, n, Some(&reason), now)?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Pending deadlines due at `now`, oldest first.
    pub async fn due_deadlines(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueDeadline>> {
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT d.id, d.key, d.data, i.data FROM deadlines d JOIN incidents i ON i.key = d.key
                 WHERE d.state = 'pending' AND d.at <= ?1 ORDER BY d.at, d.id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now.timestamp_millis(), limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, key, deadline, incident) = row?;
                let incident: Incident = serde_json::from_str(&incident)?;
                out.push(DueDeadline {
                    id,
                    key,
                    deadline: serde_json::from_str(&deadline)?,
                    environment: incident.environment,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Pending deadlines (for readiness and metrics).
    #[cfg_attr(not(test), allow(dead_code))] // metrics and readiness read it next
    pub async fn pending_deadlines(&self) -> Result<i64> {
        self.with(|conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM deadlines WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// When the next pending deadline is due, if any.
    pub async fn next_deadline_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.with(|conn| {
            let at: Option<i64> = conn.query_row(
                "SELECT MIN(at) FROM deadlines WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?;
            Ok(at.and_then(DateTime::from_timestamp_millis))
        })
        .await
    }

    /// Fires one deadline, once: in one transaction, claims it (pending → fired/skipped), checks
    /// against the incident as it is now whether it still applies (ack, resolution, condition,
    /// level already reached), and if so records the escalation and queues `notifications`.
    /// Returns whether notifications were queued.
    pub async fn fire_deadline(
        &self,
        due: DueDeadline,
        notifications: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let Some(mut incident) = load(&tx, &due.key)? else {
                return Ok(false);
            };
            let state = pipeline_responder_core::rules::DeadlineState {
                status: incident.status,
                critical_findings: incident.critical_findings,
                highest_level_notified: incident.highest_level_notified,
            };
            let applies = pipeline_responder_core::rules::deadline_applies(&due.deadline, state);
            let claimed = tx.execute(
                "UPDATE deadlines SET state = ?2 WHERE id = ?1 AND state = 'pending'",
                params![due.id, if applies { "fired" } else { "skipped" }],
            )?;
            if claimed == 0 || !applies {
                tx.commit()?;
                return Ok(false);
            }
            let d = &due.deadline;
            let what = match d.kind {
                pipeline_responder_core::decision::DeadlineKind::Escalation => {
                    incident.highest_level_notified = Some(
                        incident
                            .highest_level_notified
                            .map_or(d.level, |h| h.max(d.level)),
                    );
                    save(&tx, &incident)?;
                    format!(
                        "{}: not acknowledged by {}",
                        d.level_id,
                        d.at.format("%H:%M UTC")
                    )
                }
                pipeline_responder_core::decision::DeadlineKind::Reminder => format!(
                    "{}: still waiting since {}",
                    d.level_id,
                    incident.opened_at.format("%H:%M UTC")
                ),
            };
            timeline(
                &tx,
                &due.key,
                &TimelineEntry {
                    at: now,
                    kind: TimelineKind::Escalated,
                    text: what.clone(),
                },
            )?;
            let note = match d.kind {
                pipeline_responder_core::decision::DeadlineKind::Escalation => format!("to {what}"),
                pipeline_responder_core::decision::DeadlineKind::Reminder => what.clone(),
            };
            for n in &notifications {
                queue(&tx, &due.key, n, Some(&note), now)?;
            }
            tx.commit()?;
            Ok(!notifications.is_empty())
        })
        .await
    }

    /// Marks notifications as covered by a storm summary (not sent one by one).
    pub async fn outbox_summarized(
        &self,
        ids: Vec<(i64, String)>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            for (id, key) in &ids {
                tx.execute(
                    "UPDATE outbox SET state = 'summarized', sent_at = ?2 WHERE id = ?1",
                    params![id, now.timestamp_millis()],
                )?;
                timeline(
                    &tx,
                    key,
                    &TimelineEntry {
                        at: now,
                        kind: TimelineKind::Notified,
                        text: "included in a storm summary post".into(),
                    },
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Postpones notifications to `at` (the next storm summary).
    pub async fn outbox_defer(&self, ids: Vec<i64>, at: DateTime<Utc>) -> Result<()> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            for id in &ids {
                tx.execute(
                    "UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1",
                    params![id, at.timestamp_millis()],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Stores a silence; returns its id.
    pub async fn add_silence(&self, silence: Silence) -> Result<i64> {
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO silences (environment, pipeline, incident_type, starts_at, ends_at, created_by, comment)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    silence.environment,
                    silence.pipeline,
                    silence.incident_type,
                    silence.starts_at.timestamp_millis(),
                    silence.ends_at.timestamp_millis(),
                    silence.created_by,
                    silence.comment
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    /// Silences that have not ended by `now`.
    pub async fn silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>> {
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, environment, pipeline, incident_type, starts_at, ends_at, created_by, comment
                 FROM silences WHERE ends_at > ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![now.timestamp_millis()], |r| {
                Ok(Silence {
                    id: r.get(0)?,
                    environment: r.get(1)?,
                    pipeline: r.get(2)?,
                    incident_type: r.get(3)?,
                    starts_at: DateTime::from_timestamp_millis(r.get(4)?).unwrap_or_default(),
                    ends_at: DateTime::from_timestamp_millis(r.get(5)?).unwrap_or_default(),
                    created_by: r.get(6)?,
                    comment: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
        .await
    }

    /// Ends a silence now; false when there is no such silence.
    pub async fn end_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.with(move |conn| {
            Ok(conn.execute(
                "UPDATE silences SET ends_at = ?2 WHERE id = ?1 AND ends_at > ?2",
                params![id, now.timestamp_millis()],
            )? > 0)
        })
        .await
    }

    /// Marks a notification as not sent because a silence covers its incident.
    pub async fn outbox_silenced(
        &self,
        item: &OutboxItem,
        silence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (id, key) = (item.id, item.key.clone());
        let text = format!(
            "{} not sent: silence {silence_id}",
            channel_name(&item.notification)
        );
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE outbox SET state = 'silenced', sent_at = ?2 WHERE id = ?1",
                params![id, now.timestamp_millis()],
            )?;
            timeline(
                &tx,
                &key,
                &TimelineEntry {
                    at: now,
                    kind: TimelineKind::Notified,
                    text,
                },
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The Slack thread (channel, ts) of an incident's first bot post, if any.
    pub async fn thread(&self, key: &str) -> Result<Option<(String, String)>> {
        let key = key.to_string();
        self.with(move |conn| {
            Ok(conn
                .prepare_cached("SELECT channel, ts FROM threads WHERE key = ?1")?
                .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
        .await
    }
}

fn processed(conn: &Connection, id: &str, transition: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM events WHERE id = ?1 OR transition = ?2 LIMIT 1")?
        .query_row(params![id, transition], |_| Ok(()))
        .optional()?
        .is_some())
}

fn load(conn: &Connection, key: &str) -> Result<Option<Incident>> {
    let data: Option<String> = conn
        .prepare_cached("SELECT data FROM incidents WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()?;
    Ok(match data {
        Some(d) => Some(serde_json::from_str(&d)?),
        None => None,
    })
}

fn save(tx: &Transaction<'_>, incident: &Incident) -> Result<()> {
    let status = match incident.status {
        IncidentStatus::Open => "open",
        IncidentStatus::Acknowledged => "acknowledged",
        IncidentStatus::Resolved => "resolved",
    };
    tx.execute(
        "INSERT INTO incidents (key, status, opened_at, resolved_at, data) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(key) DO UPDATE SET status = ?2, resolved_at = ?4, data = ?5",
        params![
            incident.key,
            status,
            incident.opened_at.timestamp_millis(),
            incident.resolved_at.map(|t| t.timestamp_millis()),
            serde_json::to_string(incident)?
        ],
    )?;
    Ok(())
}

fn timeline(conn: &Connection, key: &str, entry: &TimelineEntry) -> Result<()> {
    conn.execute(
        "INSERT INTO timeline (key, at, data) VALUES (?1, ?2, ?3)",
        params![
            key,
            entry.at.timestamp_millis(),
            serde_json::to_string(entry)?
        ],
    )?;
    Ok(())
}

fn queue(
    tx: &Transaction<'_>,
    key: &str,
    notification: &Notification,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    queue_at(tx, key, notification, note, now, now)
}

/// Queues a notification that may not be sent before `due`.
fn queue_at(
    tx: &Transaction<'_>,
    key: &str,
    notification: &Notification,
    note: Option<&str>,
    now: DateTime<Utc>,
    due: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO outbox (key, notification, note, state, attempts, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?5)",
        params![
            key,
            serde_json::to_string(notification)?,
            note,
            now.timestamp_millis(),
            due.timestamp_millis()
        ],
    )?;
    Ok(())
}

fn schedule(tx: &Transaction<'_>, key: &str, deadline: &Deadline) -> Result<()> {
    tx.execute(
        "INSERT INTO deadlines (key, at, state, data) VALUES (?1, ?2, 'pending', ?3)",
        params![
            key,
            deadline.at.timestamp_millis(),
            serde_json::to_string(deadline)?
        ],
    )?;
    Ok(())
}

fn apply_decision(
    tx: &Transaction<'_>,
    input: &InputRecord,
    decision: &pipeline_responder_core::decision::Decision,
    updates: &[(String, Notification)],
    now: DateTime<Utc>,
    hold_first_post_until: Option<DateTime<Utc>>,
) -> Result<Applied> {
    use pipeline_responder_core::decision::Action;
    let mut applied = Applied::default();
    let mut skipped: Vec<&str> = Vec::new();
    for action in &decision.actions {
        let key = action_key(action);
        if let Action::Open(open) = action {
            if load(tx, key)?.is_some() {
                // Another input (or replica) opened it first: this one only joins.
                skipped.push(key);
                continue;
            }
            let incident = Incident::open(open, &input.id, input.event_time);
            save(tx, &incident)?;
            timeline(
                tx,
                key,
                &TimelineEntry {
                    at: now,
                    kind: TimelineKind::Opened,
                    text: format!("opened by {} event {}", decision.input_kind, input.id),
                },
            )?;
            for deadline in &open.schedule {
                schedule(tx, key, deadline)?;
            }
            for n in &open.notifications {
                // The first post waits briefly for the diagnostics, so it can say what failed.
                let due = if open.diagnostics.is_empty() {
                    now
                } else {
                    hold_first_post_until.unwrap_or(now)
                };
                queue_at(tx, key, n, None, now, due)?;
                applied.queued += 1;
            }
            applied.opened.push(key.to_string());
            continue;
        }
        if skipped.contains(&key) {
            continue;
        }
        let Some(mut incident) = load(tx, key)? else {
            continue;
        };
        let Some(entry) = incident.apply(action, now) else {
            continue;
        };
        let escalation_note;
        save(tx, &incident)?;
        timeline(tx, key, &entry)?;
        let (notifications, note): (&[Notification], Option<&str>) = match action {
            Action::Refine {
                schedule: deadlines,
                notifications,
                reason,
                ..
            } => {
                tx.execute(
                    "UPDATE deadlines SET state = 'cancelled' WHERE key = ?1 AND state = 'pending'",
                    params![key],
                )?;
                for deadline in deadlines {
                    schedule(tx, key, deadline)?;
                }
                (notifications, Some(reason))
            }
            Action::Resolve {
                notifications,
                reason,
                ..
            } => {
                tx.execute(
                    "UPDATE deadlines SET state = 'cancelled' WHERE key = ?1 AND state = 'pending'",
                    params![key],
                )?;
                (notifications, Some(reason))
            }
            Action::Escalate {
                notifications,
                reason,
                level_id,
                ..
            } => {
                escalation_note = format!("to {level_id}: {reason}");
                (notifications, Some(escalation_note.as_str()))
            }
            _ => (&[], None),
        };
        for n in notifications {
            queue(tx, key, n, note, now)?;
            applied.queued += 1;
        }
    }
    for (key, n) in updates {
        if !skipped.contains(&key.as_str()) {
            queue(tx, key, n, None, now)?;
            applied.queued += 1;
        }
    }
    Ok(applied)
}

fn kind_name(n: &Notification) -> String {
    serde_json::to_value(n.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A printable channel name (never a URL or token).
pub fn channel_name(n: &Notification) -> String {
    match &n.channel {
        pipeline_responder_core::decision::Channel::Slack { channel } => format!("slack {channel}"),
        pipeline_responder_core::decision::Channel::Sns { topic_arn } => format!("sns {topic_arn}"),
    }
}

#[cfg(test)]
mod tests;
