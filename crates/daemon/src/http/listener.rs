//! The accept loop of the one HTTP listener, hardened for a port reachable from the internet
//! (behind an ALB, wherever the Slack button is):
//! - at most [`Limits::max_connections`] connections at once, so file descriptors stay for the
//!   store, AWS and Slack; at the cap the oldest connection with no request in flight is closed
//!   to make room (a flood of idle connections cannot lock out the ECS health check), and only
//!   when every connection is busy is the new one closed at accept;
//! - request headers must arrive within [`Limits::header_timeout`] (slowloris);
//! - a connection with no request in flight for [`Limits::idle_timeout`] is closed (idle
//!   keep-alive), and a request (body included) must be answered within
//!   [`Limits::request_timeout`] (the middleware in http/mod.rs).

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// `configured` connections at most, and never more than the process's open-file limit
    /// leaves after a reserve for the store, AWS and notifier clients.
    pub fn new(configured: usize) -> Self {
        let fd_room = open_file_limit().map(|n| n.saturating_sub(FD_RESERVE).max(16));
        Self {
            max_connections: fd_room.map_or(configured, |room| configured.min(room)),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// File descriptors kept for everything but inbound connections.
const FD_RESERVE: usize = 64;

/// The soft `Max open files` of this process (Linux), if it can be read.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `app` on `listener` until `cancel`; in-flight requests finish.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open: Arc<Mutex<BTreeMap<u64, Arc<Conn>>>> = Arc::default();
    let connections = tokio_util::task::TaskTracker::new();
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, _) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Full: close the oldest idle connection and take its slot once it is gone.
                let evicted = lock(&open)
                    .values()
                    .find(|c| {
                        c.in_flight.load(Ordering::SeqCst) == 0
                            && !c.evicted.swap(true, Ordering::SeqCst)
                    })
                    .map(|c| c.evict.notify_one())
                    .is_some();
                let slot = if evicted {
                    tokio::time::timeout(EVICTION_WAIT, Arc::clone(&slots).acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                } else {
                    None
                };
                match slot {
                    Some(slot) => slot,
                    None => {
                        tracing::warn!(evicted, "HTTP connection refused: at the connection cap");
                        crate::metrics::metrics().http_refused.inc();
                        drop(stream);
                        continue;
                    }
                }
            }
        };
        next_id += 1;
        let id = next_id;
        let conn = Arc::new(Conn::default());
        lock(&open).insert(id, Arc::clone(&conn));
        let (app, cancel, open) = (app.clone(), cancel.clone(), Arc::clone(&open));
        connections.spawn(async move {
            connection(stream, app, limits, conn, cancel).await;
            lock(&open).remove(&id);
            drop(slot);
        });
    }
    connections.close();
    connections.wait().await;
}

/// How long a new connection waits for an evicted one to close.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// One open connection, as the accept loop sees it.
#[derive(Default)]
struct Conn {
    in_flight: AtomicUsize,
    evicted: std::sync::atomic::AtomicBool,
    evict: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    state: Arc<Conn>,
    cancel: CancellationToken,
) {
    let last_done = Arc::new(Mutex::new(Instant::now()));
    let service = {
        let (state, last_done) = (Arc::clone(&state), Arc::clone(&last_done));
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut app = app.clone();
            let (state, last_done) = (Arc::clone(&state), Arc::clone(&last_done));
            state.in_flight.fetch_add(1, Ordering::SeqCst);
            async move {
                let response = app.call(request.map(axum::body::Body::new)).await;
                *lock(&last_done) = Instant::now();
                state.in_flight.fetch_sub(1, Ordering::SeqCst);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let idle_since = *lock(&last_done);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = cancel.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = state.evict.notified(), if !closing => {
                // Closed to make room: at once when no request is in flight (idle, or headers
                // still trickling in); a request that started meanwhile still finishes.
                if state.in_flight.load(Ordering::SeqCst) == 0 {
                    tracing::debug!("HTTP connection closed to make room");
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(idle_since + limits.idle_timeout), if !closing => {
                let idle = state.in_flight.load(Ordering::SeqCst) == 0
                    && lock(&last_done).elapsed() >= limits.idle_timeout;
                if idle {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
