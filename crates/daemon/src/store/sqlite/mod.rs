//! The embedded store: one SQLite file (rusqlite, bundled).
//!
//! Why SQLite: one file on the task's volume, ACID transactions with WAL and
//! `synchronous = FULL` (a commit survives kill -9 and power loss), and operators can inspect it
//! with the `sqlite3` shell during an incident. Every change an input causes — the incident, its
//! timeline, its deadlines, the notifications to send, and the event id marked processed — is
//! written in ONE transaction, so a crash leaves either all of it or none of it (the SQS message
//! is then redelivered and handled again). One process owns the file, so claims (outbox leases,
//! deadline claims, one-off job claims) are plain state changes inside those transactions.

//!
//! Files: `backend` (the [`Backend`](crate::store::Backend) operations), `rows` (rows written
//! and read back, a decision's writes, the retention batch).

mod backend;
mod rows;

use crate::store::schema;
use crate::store::{Result, StoreError};
use chrono::{DateTime, Utc};
use pipeline_responder_core::incident::{IncidentView, IncidentsView};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The embedded store. All clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Db>>,
    /// This process (for outbox leases, when two processes open one file).
    owner: String,
}

impl SqliteStore {
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
            conn: Arc::new(Mutex::new(Db { conn, views: None })),
            owner: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
        })
    }

    /// Runs `work` on the connection on a blocking thread.
    async fn with<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.with_db(move |db| work(&mut db.conn)).await
    }

    /// Runs `work` on the connection and the views cache, then brings the cache up to date with
    /// the incidents `work` saved: on success their new views replace the old; on an error
    /// (whose transaction may or may not have committed) the cache is dropped and reloaded from
    /// the file on the next `view`.
    async fn with_db<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            SAVED.with(|saved| saved.borrow_mut().clear());
            let result = work(&mut guard);
            let saved = SAVED.with(|saved| std::mem::take(&mut *saved.borrow_mut()));
            match (&result, &mut guard.views) {
                (Ok(_), Some(views)) => {
                    for view in saved {
                        views.insert(view);
                    }
                }
                (Err(_), views) if !saved.is_empty() => *views = None,
                _ => {}
            }
            result
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }
}

/// The connection, and the rules' view of the incidents kept in memory (one process owns the
/// file): without it every input would read and parse every open incident.
struct Db {
    conn: Connection,
    views: Option<Views>,
}

/// Active incidents and those resolved since `since`, indexed for the rules (shared with
/// whoever holds the last answer; changed in place when nobody does).
struct Views {
    since: DateTime<Utc>,
    view: Arc<IncidentsView>,
}

impl Views {
    fn insert(&mut self, view: IncidentView) {
        Arc::make_mut(&mut self.view).insert(Arc::new(view));
    }
}

thread_local! {
    /// Views of the incidents saved by the `with_db` work running on this thread (a blocking
    /// thread runs one at a time, under the connection lock).
    static SAVED: std::cell::RefCell<Vec<IncidentView>> = const { std::cell::RefCell::new(Vec::new()) };
}
