//! Rows: how incidents, timeline entries, deadlines and posts are written and read back, one
//! decision's writes, and one batch of the retention sweep.

use super::SAVED;
use crate::store::plan::Changes;
use crate::store::{Applied, Result};
use chrono::{DateTime, Utc};
use pipeline_responder_core::decision::{Deadline, Notification};
use pipeline_responder_core::incident::IncidentStatus;
use pipeline_responder_core::record::{Incident, TimelineEntry};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

/// A write transaction that takes the write lock up front, so a second process on the same file
/// waits (busy timeout) instead of failing when a read would later upgrade to a write.
pub(super) fn write(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

pub(super) fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(super) fn processed(conn: &Connection, id: &str, transition: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM events WHERE id = ?1 OR transition = ?2 LIMIT 1")?
        .query_row(params![id, transition], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn load(conn: &Connection, key: &str) -> Result<Option<Incident>> {
    let data: Option<String> = conn
        .prepare_cached("SELECT data FROM incidents WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()?;
    Ok(data.and_then(|d| readable(conn, key, &d)))
}

/// Rows removed per table per retention batch (one short transaction each).
pub(super) const PRUNE_BATCH: i64 = 500;

/// One batch of the retention sweep, in one transaction.
pub(super) fn prune_batch(
    conn: &mut Connection,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<crate::store::Pruned> {
    let cutoff = before.timestamp_millis();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Resolved before the cutoff and owing no post.
    let keys: Vec<String> = tx
        .prepare_cached(
            "SELECT key FROM incidents i WHERE status = 'resolved' AND resolved_at < ?1
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.key = i.key AND o.state = 'pending')
             LIMIT ?2",
        )?
        .query_map(params![cutoff, PRUNE_BATCH], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for key in &keys {
        for sql in [
            "DELETE FROM timeline WHERE key = ?1",
            "DELETE FROM deadlines WHERE key = ?1",
            "DELETE FROM outbox WHERE key = ?1",
            "DELETE FROM threads WHERE key = ?1",
            "DELETE FROM incidents WHERE key = ?1",
        ] {
            tx.execute(sql, params![key])?;
        }
    }
    let events = tx.execute(
        "DELETE FROM events WHERE rowid IN
         (SELECT rowid FROM events WHERE processed_at < ?1 LIMIT ?2)",
        params![cutoff, PRUNE_BATCH],
    )?;
    let mut other = 0;
    for (sql, at) in [
        (
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE state != 'pending'
             AND COALESCE(sent_at, next_attempt_at) < ?1 LIMIT ?2)",
            cutoff,
        ),
        (
            "DELETE FROM deadlines WHERE id IN (SELECT id FROM deadlines WHERE state != 'pending'
             AND at < ?1 LIMIT ?2)",
            cutoff,
        ),
        (
            "DELETE FROM silences WHERE id IN (SELECT id FROM silences WHERE ends_at < ?1 LIMIT ?2)",
            cutoff,
        ),
        (
            "DELETE FROM quarantine WHERE rowid IN
             (SELECT rowid FROM quarantine WHERE found_at < ?1 LIMIT ?2)",
            cutoff,
        ),
        (
            "DELETE FROM claims WHERE key IN (SELECT key FROM claims WHERE expires_at < ?1 LIMIT ?2)",
            now.timestamp_millis(),
        ),
    ] {
        other += tx.execute(sql, params![at, PRUNE_BATCH])? as u64;
    }
    tx.commit()?;
    Ok(crate::store::Pruned {
        incidents: keys.len() as u64,
        events: events as u64,
        other,
    })
}

/// A stored incident read back; one that cannot be read (a row written by another program or
/// a damaged one) is quarantined so the rest of the store keeps working: counted
/// (`store_errors_total{operation="unreadable_row"}`), logged with its key, moved to the
/// `quarantine` table for an operator to look at, and its pending deadlines cancelled. An
/// event about it later opens a new incident under the key.
pub(super) fn readable(conn: &Connection, key: &str, data: &str) -> Option<Incident> {
    let problem = match serde_json::from_str(data) {
        Ok(incident) => return Some(incident),
        Err(e) => e.to_string(),
    };
    crate::store::count_unreadable();
    let moved = conn.execute_batch("SAVEPOINT quarantine").and_then(|()| {
        let now = Utc::now().timestamp_millis();
        conn.execute(
            "INSERT INTO quarantine (key, found_at, problem, data) VALUES (?1, ?2, ?3, ?4)",
            params![key, now, problem, data],
        )?;
        conn.execute("DELETE FROM incidents WHERE key = ?1", params![key])?;
        conn.execute(
            "UPDATE deadlines SET state = 'skipped' WHERE key = ?1 AND state = 'pending'",
            params![key],
        )?;
        conn.execute_batch("RELEASE quarantine")
    });
    match moved {
        Ok(()) => {
            tracing::error!(incident_key = %key, error = %problem, "Store: an incident row is unreadable; moved it to the quarantine table and serving the rest")
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO quarantine; RELEASE quarantine");
            tracing::error!(incident_key = %key, error = %problem, quarantine_error = %e, "Store: an incident row is unreadable (and could not be moved aside); leaving it out")
        }
    }
    None
}

/// Writes an incident (and notes its view for the cache, see `with_db`).
pub(super) fn save(tx: &Transaction<'_>, incident: &Incident) -> Result<()> {
    SAVED.with(|saved| saved.borrow_mut().push(incident.view()));
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

pub(super) fn timeline(conn: &Connection, key: &str, entry: &TimelineEntry) -> Result<()> {
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

/// Queues a notification that may not be sent before `due`.
pub(super) fn queue(
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

pub(super) fn schedule(tx: &Transaction<'_>, key: &str, deadline: &Deadline) -> Result<()> {
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

pub(super) fn cancel_deadlines(tx: &Transaction<'_>, key: &str) -> Result<()> {
    tx.execute(
        "UPDATE deadlines SET state = 'cancelled' WHERE key = ?1 AND state = 'pending'",
        params![key],
    )?;
    Ok(())
}

/// Writes what [`plan::apply`] decided.
pub(super) fn write_changes(
    tx: &Transaction<'_>,
    changes: Changes,
    now: DateTime<Utc>,
) -> Result<Applied> {
    for (incident, _) in &changes.incidents {
        save(tx, incident)?;
    }
    for (key, entry) in &changes.timeline {
        timeline(tx, key, entry)?;
    }
    for key in &changes.cancel {
        cancel_deadlines(tx, key)?;
    }
    for (key, deadline) in &changes.schedule {
        schedule(tx, key, deadline)?;
    }
    for q in &changes.outbox {
        queue(tx, &q.key, &q.notification, q.note.as_deref(), now, q.due)?;
    }
    Ok(changes.applied)
}
