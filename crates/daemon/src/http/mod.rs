//! The one HTTP listener: `/healthz`, `/readyz`, and the bearer-token API
//! (`/api/v1/incidents`, ack, resolve, and `/api/v1/events` for EventBridge API destinations).
//!
//! One file per area: `auth` (the token, the deadline), `probes`, `incidents`, `events`,
//! `silences`, and the signed webhooks (`slack_interactions`, `pager_webhooks`).

mod auth;
mod events;
pub mod incident_actions;
mod incidents;
pub mod listener;
mod operator_actions;
pub mod pager_webhooks;
mod probes;
mod silences;
mod slack_actions;
pub mod slack_interactions;

use crate::pipeline::ingest::Ingest;
use crate::store::Store;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pipeline_responder_core::config::Config;
use serde_json::json;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    pub config: Arc<Config>,
    pub store: Store,
    pub ingest: Ingest,
    pub wakeups: crate::wakeups::Wakeups,
    pub health: Arc<crate::health::Health>,
    pub scrapes: Arc<crate::metrics::Scrapes>,
    /// The pagers' webhook deliveries already acted on.
    pub deliveries: Arc<pager_webhooks::Deliveries>,
    /// Approve, reject, retry, restart, start.
    pub actions: crate::actions::Actions,
}

/// Body limits: an ack, a resolve or a silence is a few lines of JSON; a Slack interaction is
/// a form of at most a few KiB. An EventBridge event is at most 256 KiB: the events route reads
/// up to 2 MiB (only with the token) so that a larger one is answered 400 `too_large` and
/// counted like any rejected event.
const SMALL_BODY: usize = 8 * 1024;
const SLACK_BODY: usize = 64 * 1024;
const EVENT_BODY: usize = 2 * 1024 * 1024;
/// A request, body included, is answered within this (a slow body is cut off).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn router(api: Api) -> Router {
    let small = || DefaultBodyLimit::max(SMALL_BODY);
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(probes::ready))
        .route("/metrics", get(probes::metrics))
        .route("/api/v1/incidents", get(incidents::list))
        .route("/api/v1/incidents/{id}", get(incidents::show))
        .route("/api/v1/incidents/{id}/report", get(incidents::report))
        .route(
            "/api/v1/incidents/{id}/ack",
            post(incidents::ack).layer(small()),
        )
        .route(
            "/api/v1/incidents/{id}/resolve",
            post(incidents::resolve).layer(small()),
        )
        .route(
            "/api/v1/incidents/{id}/actions/{action}",
            post(operator_actions::act).layer(small()),
        )
        .route(
            "/api/v1/events",
            post(events::events).layer(DefaultBodyLimit::max(EVENT_BODY)),
        )
        .route(
            "/api/v1/silences",
            get(silences::list).post(silences::add).layer(small()),
        )
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(silences::end),
        )
        .route(
            "/pagerduty/webhook",
            post(pager_webhooks::pagerduty).layer(DefaultBodyLimit::max(SLACK_BODY)),
        )
        .route(
            "/opsgenie/webhook",
            post(pager_webhooks::opsgenie).layer(DefaultBodyLimit::max(SLACK_BODY)),
        )
        .route(
            "/slack/interactions",
            post(slack_interactions::interactions).layer(DefaultBodyLimit::max(SLACK_BODY)),
        )
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .with_state(api)
}

/// The router behind its guard, as the listener serves it.
pub fn app(api: Api) -> Router {
    let guarded = axum::middleware::from_fn_with_state(api.clone(), auth::guard);
    // A router nested under the guard so that unmatched paths pass the guard too.
    Router::new().fallback_service(router(api)).layer(guarded)
}

/// Serves until `cancel`; logs the bound address (the port may be 0 in tests).
pub async fn serve(api: Api, listener: tokio::net::TcpListener, cancel: CancellationToken) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let limits = crate::http::listener::Limits::new(api.config.http.max_connections);
    tracing::info!(addr = %addr, max_connections = limits.max_connections, "HTTP listening");
    crate::http::listener::serve(listener, app(api), limits, cancel).await;
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}
