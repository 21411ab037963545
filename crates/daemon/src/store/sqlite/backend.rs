//! The [`Backend`] operations on the file.

use super::rows::{
    cancel_deadlines, load, millis, processed, prune_batch, queue, readable, save, timeline, write,
    write_changes,
};
use super::{SqliteStore, Views};
use crate::store::plan;
use crate::store::{
    Applied, Backend, Close, Closing, DueDeadline, InputRecord, OutboxItem, Result, Silence,
};
use chrono::{DateTime, Utc};
use pipeline_responder_core::actions::ActionRecord;
use pipeline_responder_core::decision::{Decision, IncidentUpdate, Notification};
use pipeline_responder_core::incident::{IncidentStatus, IncidentsView};
use pipeline_responder_core::record::{DiagnosticResult, Incident, TimelineEntry};
use pipeline_responder_core::transition;
use rusqlite::{params, OptionalExtension};
use std::collections::HashMap;
use std::sync::Arc;

#[async_trait::async_trait]
impl Backend for SqliteStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn is_processed(&self, id: &str, transition: &str) -> Result<bool> {
        let (id, transition) = (id.to_string(), transition.to_string());
        self.with(move |conn| processed(conn, &id, &transition))
            .await
    }

    async fn view(&self, since: DateTime<Utc>) -> Result<Arc<IncidentsView>> {
        self.with_db(move |db| Ok(Arc::clone(&current(db, since)?.view)))
            .await
    }

    async fn apply(
        &self,
        input: InputRecord,
        decision: Decision,
        now: DateTime<Utc>,
        hold_first_post_until: Option<DateTime<Utc>>,
    ) -> Result<Applied> {
        self.with(move |conn| {
            let tx = write(conn)?;
            if processed(&tx, &input.id, &input.transition)? {
                return Ok(Applied {
                    duplicate: true,
                    ..Applied::default()
                });
            }
            let mut loaded = HashMap::new();
            for key in plan::keys(&decision) {
                if let Some(incident) = load(&tx, &key)? {
                    loaded.insert(key, incident);
                }
            }
            let changes = plan::apply(&input, &decision, now, hold_first_post_until, loaded);
            let applied = write_changes(&tx, changes, now)?;
            tx.execute(
                "INSERT OR IGNORE INTO events (id, transition, processed_at) VALUES (?1, ?2, ?3)",
                params![input.id, input.transition, now.timestamp_millis()],
            )?;
            tx.commit()?;
            Ok(applied)
        })
        .await
    }

    async fn incident(&self, key: &str) -> Result<Option<(Incident, Vec<TimelineEntry>)>> {
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
                match serde_json::from_str(&row?) {
                    Ok(entry) => timeline.push(entry),
                    // One unreadable entry does not hide the incident.
                    Err(e) => {
                        crate::store::count_unreadable();
                        tracing::warn!(incident_key = %key, error = %e, "Store: a timeline entry is unreadable; left out")
                    }
                }
            }
            Ok(Some((incident, timeline)))
        })
        .await
    }

    async fn incidents(&self, active_only: bool) -> Result<Vec<Incident>> {
        self.with(move |conn| {
            let sql = if active_only {
                "SELECT key, data FROM incidents WHERE status != 'resolved' ORDER BY opened_at DESC"
            } else {
                "SELECT key, data FROM incidents ORDER BY opened_at DESC"
            };
            let rows: Vec<(String, String)> = conn
                .prepare_cached(sql)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(key, data)| readable(conn, &key, &data))
                .collect())
        })
        .await
    }

    async fn incidents_page(
        &self,
        active_only: bool,
        limit: usize,
        after: Option<crate::store::Cursor>,
    ) -> Result<Vec<Incident>> {
        self.with(move |conn| {
            let (at, key) = match &after {
                Some(c) => (Some(c.opened_at_ms), c.key.clone()),
                None => (None, String::new()),
            };
            let rows: Vec<(String, String)> = conn
                .prepare_cached(
                    "SELECT key, data FROM incidents
                     WHERE (?1 = 0 OR status != 'resolved')
                       AND (?2 IS NULL OR opened_at < ?2 OR (opened_at = ?2 AND key < ?3))
                     ORDER BY opened_at DESC, key DESC LIMIT ?4",
                )?
                .query_map(params![active_only, at, key, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(key, data)| readable(conn, &key, &data))
                .collect())
        })
        .await
    }

    async fn prune(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Pruned> {
        let mut pruned = crate::store::Pruned::default();
        loop {
            let (batch, done) = self
                .with_db(move |db| {
                    let batch = prune_batch(&mut db.conn, before, now)?;
                    if batch.incidents > 0 {
                        // Reloaded from the file on the next `view`.
                        db.views = None;
                    }
                    let done = batch == crate::store::Pruned::default();
                    Ok((batch, done))
                })
                .await?;
            pruned.incidents += batch.incidents;
            pruned.events += batch.events;
            pruned.other += batch.other;
            if done {
                return Ok(pruned);
            }
            // Let waiting writers in between batches.
            tokio::task::yield_now().await;
        }
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxItem>> {
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
                    created_at: millis(created),
                    next_attempt_at: millis(next),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn outbox_claim(&self, item: &OutboxItem, now: DateTime<Utc>) -> Result<bool> {
        let (id, owner) = (item.id, self.owner.clone());
        self.with(move |conn| {
            Ok(conn.execute(
                "UPDATE outbox SET lease_owner = ?2, lease_until = ?3
                 WHERE id = ?1 AND state = 'pending'
                   AND (lease_until IS NULL OR lease_until < ?4 OR lease_owner = ?2)",
                params![
                    id,
                    owner,
                    (now + plan::LEASE).timestamp_millis(),
                    now.timestamp_millis()
                ],
            )? > 0)
        })
        .await
    }

    async fn outbox_sent(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        thread: Option<(String, String)>,
    ) -> Result<()> {
        let (id, key) = (item.id, item.key.clone());
        let entry = TimelineEntry::sent(&item.notification, now);
        self.with(move |conn| {
            let tx = write(conn)?;
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
            timeline(&tx, &key, &entry)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn outbox_failed(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let (id, key) = (item.id, item.key.clone());
        let gave_up = TimelineEntry::gave_up(&item.notification, &error, now);
        self.with(move |conn| {
            let tx = write(conn)?;
            match retry_at {
                Some(at) => tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3,
                     lease_owner = NULL, lease_until = NULL WHERE id = ?1",
                    params![id, at.timestamp_millis(), error],
                )?,
                None => {
                    timeline(&tx, &key, &gave_up)?;
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

    async fn record_diagnosis(
        &self,
        key: &str,
        results: Vec<DiagnosticResult>,
        update: IncidentUpdate,
        follow_ups: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let key = key.to_string();
        self.with(move |conn| {
            let tx = write(conn)?;
            let Some(mut incident) = load(&tx, &key)? else {
                return Ok(false);
            };
            for entry in incident.diagnose(&results, &update, now) {
                timeline(&tx, &key, &entry)?;
            }
            save(&tx, &incident)?;
            let released = tx.execute(
                "UPDATE outbox SET next_attempt_at = ?2 WHERE key = ?1 AND state = 'pending' AND attempts = 0 AND next_attempt_at > ?2",
                params![key, now.timestamp_millis()],
            )?;
            let sent: Vec<Notification> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT notification FROM outbox WHERE key = ?1 AND state = 'sent'",
                )?;
                let rows = stmt.query_map(params![key], |r| r.get::<_, String>(0))?;
                let mut sent = Vec::new();
                for row in rows {
                    sent.push(serde_json::from_str(&row?)?);
                }
                sent
            };
            for n in transition::follow_ups(&sent, &follow_ups) {
                queue(&tx, &key, &n, Some("diagnostics"), now, now)?;
            }
            tx.commit()?;
            Ok(released > 0)
        })
        .await
    }

    async fn acknowledge(
        &self,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.close(Close::Acknowledge, key, by, notifications, now)
            .await
    }

    async fn resolve(
        &self,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.close(Close::Resolve, key, by, notifications, now)
            .await
    }

    async fn record_action(
        &self,
        key: &str,
        record: ActionRecord,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let by = record.by.clone();
        self.close(Close::Act(record), key, &by, notifications, now)
            .await
    }

    async fn due_deadlines(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueDeadline>> {
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT d.id, d.key, d.data, i.data FROM deadlines d JOIN incidents i ON i.key = d.key
                 WHERE d.state = 'pending' AND d.at <= ?1 ORDER BY d.at, d.id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now.timestamp_millis(), limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let rows: Vec<_> = rows.collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for (id, key, deadline, incident) in rows {
                let Some(incident) = readable(conn, &key, &incident) else {
                    continue;
                };
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

    async fn pending_deadlines(&self) -> Result<i64> {
        self.with(|conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM deadlines WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn gauges(
        &self,
        now: DateTime<Utc>,
        late: chrono::Duration,
    ) -> Result<crate::store::Gauges> {
        // Active incidents are counted from the rules' view kept in memory (every active one is
        // in it) when it is loaded, else by SQLite from the status index; timers by SQLite from
        // the deadlines index. No incident is parsed, so a scrape costs little however many
        // are open.
        self.with_db(move |db| {
            let mut active = Vec::new();
            if let Some(views) = &db.views {
                let mut counts: HashMap<(String, IncidentStatus), i64> = HashMap::new();
                for view in views.view.active() {
                    *counts
                        .entry((view.environment.clone(), view.status))
                        .or_default() += 1;
                }
                active.extend(counts.into_iter().map(|((e, s), n)| (e, s, n)));
            } else {
                let mut stmt = db.conn.prepare_cached(
                    "SELECT json_extract(data, '$.environment'), status, COUNT(*) FROM incidents
                     WHERE status != 'resolved' GROUP BY 1, 2",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?;
                for row in rows {
                    let (environment, status, n) = row?;
                    let status = match status.as_str() {
                        "open" => IncidentStatus::Open,
                        "acknowledged" => IncidentStatus::Acknowledged,
                        _ => continue,
                    };
                    active.push((environment.unwrap_or_default(), status, n));
                }
            }
            let conn = &db.conn;
            let pending_deadlines = conn.query_row(
                "SELECT COUNT(*) FROM deadlines WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?;
            let (overdue, oldest): (i64, Option<i64>) = conn.query_row(
                "SELECT COALESCE(SUM(d.at <= ?2), 0), MIN(d.at) FROM deadlines d
                 JOIN incidents i ON i.key = d.key WHERE d.state = 'pending' AND d.at <= ?1",
                params![now.timestamp_millis(), (now - late).timestamp_millis() - 1],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(crate::store::Gauges {
                active,
                pending_deadlines,
                overdue_deadlines: overdue,
                oldest_due: oldest.and_then(DateTime::from_timestamp_millis),
            })
        })
        .await
    }

    async fn next_deadline_at(&self) -> Result<Option<DateTime<Utc>>> {
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

    async fn fire_deadline(
        &self,
        due: DueDeadline,
        notifications: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.with(move |conn| {
            let tx = write(conn)?;
            let Some(mut incident) = load(&tx, &due.key)? else {
                return Ok(false);
            };
            let fired = incident.fire(&due.deadline, now);
            let claimed = tx.execute(
                "UPDATE deadlines SET state = ?2 WHERE id = ?1 AND state = 'pending'",
                params![due.id, if fired.is_some() { "fired" } else { "skipped" }],
            )?;
            let (1.., Some(fire)) = (claimed, fired) else {
                tx.commit()?;
                return Ok(false);
            };
            if fire.incident_changed {
                save(&tx, &incident)?;
            }
            timeline(&tx, &due.key, &fire.entry)?;
            for n in &notifications {
                queue(&tx, &due.key, n, Some(&fire.note), now, now)?;
            }
            tx.commit()?;
            Ok(!notifications.is_empty())
        })
        .await
    }

    async fn outbox_summarized(&self, items: Vec<(i64, String)>, now: DateTime<Utc>) -> Result<()> {
        self.with(move |conn| {
            let tx = write(conn)?;
            for (id, key) in &items {
                tx.execute(
                    "UPDATE outbox SET state = 'summarized', sent_at = ?2 WHERE id = ?1",
                    params![id, now.timestamp_millis()],
                )?;
                timeline(&tx, key, &TimelineEntry::summarized(now))?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn outbox_defer(&self, items: Vec<(i64, String)>, at: DateTime<Utc>) -> Result<()> {
        self.with(move |conn| {
            let tx = write(conn)?;
            for (id, _) in &items {
                tx.execute(
                    "UPDATE outbox SET next_attempt_at = ?2, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
                    params![id, at.timestamp_millis()],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn add_silence(&self, silence: Silence) -> Result<i64> {
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

    async fn silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>> {
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
                    starts_at: millis(r.get(4)?),
                    ends_at: millis(r.get(5)?),
                    created_by: r.get(6)?,
                    comment: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })
        .await
    }

    async fn end_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.with(move |conn| {
            Ok(conn.execute(
                "UPDATE silences SET ends_at = ?2 WHERE id = ?1 AND ends_at > ?2",
                params![id, now.timestamp_millis()],
            )? > 0)
        })
        .await
    }

    async fn outbox_silenced(
        &self,
        item: &OutboxItem,
        silence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (id, key) = (item.id, item.key.clone());
        let entry = TimelineEntry::silenced(&item.notification, silence_id, now);
        self.with(move |conn| {
            let tx = write(conn)?;
            tx.execute(
                "UPDATE outbox SET state = 'silenced', sent_at = ?2 WHERE id = ?1",
                params![id, now.timestamp_millis()],
            )?;
            timeline(&tx, &key, &entry)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn claim_once(&self, key: &str, now: DateTime<Utc>, keep_days: u32) -> Result<bool> {
        let (key, owner) = (key.to_string(), self.owner.clone());
        let expires_at = plan::claim_expires(now, keep_days);
        self.with(move |conn| {
            let tx = write(conn)?;
            // A lapsed claim is forgotten (the table stays as small as the claims kept).
            tx.execute(
                "DELETE FROM claims WHERE expires_at <= ?1",
                params![now.timestamp_millis()],
            )?;
            let claimed = tx.execute(
                "INSERT OR IGNORE INTO claims (key, owner, claimed_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    key,
                    owner,
                    now.timestamp_millis(),
                    expires_at.timestamp_millis()
                ],
            )? > 0;
            tx.commit()?;
            Ok(claimed)
        })
        .await
    }

    async fn probe(&self, now: DateTime<Utc>) -> Result<()> {
        let owner = self.owner.clone();
        self.with(move |conn| {
            let tx = write(conn)?;
            tx.execute(
                "INSERT INTO claims (key, owner, claimed_at, expires_at) VALUES ('probe/' || ?1, ?1, ?2, ?2)
                 ON CONFLICT (key) DO UPDATE SET claimed_at = excluded.claimed_at, expires_at = excluded.expires_at",
                params![owner, now.timestamp_millis()],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn thread(&self, key: &str) -> Result<Option<(String, String)>> {
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

impl SqliteStore {
    /// An acknowledgement or resolution by hand, in one transaction.
    async fn close(
        &self,
        close: Close,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (key, by) = (key.to_string(), by.to_string());
        self.with(move |conn| {
            let tx = write(conn)?;
            let Some(mut incident) = load(&tx, &key)? else {
                return Ok(false);
            };
            let Some(entry) = close.apply(&mut incident, &by, now) else {
                return Ok(false);
            };
            save(&tx, &incident)?;
            if !incident.status.is_active() {
                cancel_deadlines(&tx, &key)?;
            }
            timeline(&tx, &key, &entry)?;
            for n in &notifications(&incident) {
                queue(&tx, &key, n, Some(&entry.text), now, now)?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}

/// The views kept in memory, loaded from the file once (again for an earlier `since`), then kept
/// current by `with_db`; incidents resolved before `since` are dropped.
pub(super) fn current(db: &mut super::Db, since: DateTime<Utc>) -> Result<&mut Views> {
    if db.views.as_ref().is_none_or(|v| v.since > since) {
        let rows: Vec<(String, String)> = db
            .conn
            .prepare_cached(
                "SELECT key, data FROM incidents WHERE status != 'resolved' OR resolved_at >= ?1",
            )?
            .query_map(params![since.timestamp_millis()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut views = Views {
            since,
            view: Arc::default(),
        };
        for (key, data) in rows {
            if let Some(incident) = readable(&db.conn, &key, &data) {
                views.insert(incident.view());
            }
        }
        db.views = Some(views);
    }
    let Some(views) = db.views.as_mut() else {
        unreachable!("loaded above")
    };
    if views.since < since {
        Arc::make_mut(&mut views.view).forget_resolved_before(since);
        views.since = since;
    }
    Ok(views)
}
