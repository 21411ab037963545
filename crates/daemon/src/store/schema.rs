//! Table layout of the embedded store. `user_version` numbers the layout for later migrations.

use super::Result;
use rusqlite::Connection;

const VERSION: i64 = 5;

pub(super) fn prepare(conn: &Connection) -> Result<()> {
    // WAL keeps readers off the writer's back; FULL makes every commit durable (fsync).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= VERSION {
        return Ok(());
    }
    // Each step brings one layout version to the next, in order.
    if version < 1 {
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS incidents (
                 key TEXT PRIMARY KEY,
                 status TEXT NOT NULL,
                 opened_at INTEGER NOT NULL,
                 resolved_at INTEGER,
                 data TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS incidents_status ON incidents (status, resolved_at);
             CREATE TABLE IF NOT EXISTS timeline (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 key TEXT NOT NULL,
                 at INTEGER NOT NULL,
                 data TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS timeline_key ON timeline (key, id);
             CREATE TABLE IF NOT EXISTS events (
                 id TEXT PRIMARY KEY,
                 transition TEXT NOT NULL,
                 processed_at INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS events_transition ON events (transition);
             CREATE TABLE IF NOT EXISTS deadlines (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 key TEXT NOT NULL,
                 at INTEGER NOT NULL,
                 state TEXT NOT NULL,
                 data TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS deadlines_due ON deadlines (state, at);
             CREATE TABLE IF NOT EXISTS outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 key TEXT NOT NULL,
                 notification TEXT NOT NULL,
                 note TEXT,
                 state TEXT NOT NULL,
                 attempts INTEGER NOT NULL,
                 created_at INTEGER NOT NULL,
                 next_attempt_at INTEGER NOT NULL,
                 sent_at INTEGER,
                 last_error TEXT
             );
             CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
             CREATE TABLE IF NOT EXISTS threads (
                 key TEXT PRIMARY KEY,
                 channel TEXT NOT NULL,
                 ts TEXT NOT NULL
             );
             PRAGMA user_version = 1;
             COMMIT;",
        )?;
    }
    if version < 2 {
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS silences (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 environment TEXT,
                 pipeline TEXT,
                 incident_type TEXT,
                 starts_at INTEGER NOT NULL,
                 ends_at INTEGER NOT NULL,
                 created_by TEXT NOT NULL,
                 comment TEXT
             );
             PRAGMA user_version = 2;
             COMMIT;",
        )?;
    }
    if version < 3 {
        // Outbox leases: the process sending a post holds it for a while (see `outbox_claim`).
        conn.execute_batch(
            "BEGIN;
             ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
             ALTER TABLE outbox ADD COLUMN lease_until INTEGER;
             PRAGMA user_version = 3;
             COMMIT;",
        )?;
    }
    if version < 4 {
        // One-off job claims (see `claim_once`): a row per claimed key until `expires_at`.
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS claims (
                 key TEXT PRIMARY KEY,
                 owner TEXT NOT NULL,
                 claimed_at INTEGER NOT NULL,
                 expires_at INTEGER NOT NULL
             );
             PRAGMA user_version = 4;
             COMMIT;",
        )?;
    }
    if version < 5 {
        // Unreadable incident rows are moved aside (see `sqlite::readable`); the retention
        // sweep finds old processed events and sent posts by index, and the incident list pages by time.
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE IF NOT EXISTS quarantine (
                 key TEXT NOT NULL,
                 found_at INTEGER NOT NULL,
                 problem TEXT NOT NULL,
                 data TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS events_processed ON events (processed_at);
             CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at);
             CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at, key);
             PRAGMA user_version = 5;
             COMMIT;",
        )?;
    }
    Ok(())
}
