//! The one HTTP listener: `/healthz`, `/readyz`, and the bearer-token API
//! (`/api/v1/incidents`, ack, resolve, and `/api/v1/events` for EventBridge API destinations).

pub mod incident_actions;
pub mod listener;
pub mod pager_webhooks;
pub mod slack_interactions;

use crate::pipeline::ingest::{HandleError, Handled, Ingest};
use crate::store::Store;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use pipeline_responder_core::config::Config;
use serde::Deserialize;
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
    pub health: Arc<crate::app::health::Health>,
    pub scrapes: Arc<crate::metrics::Scrapes>,
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
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/incidents", get(list))
        .route("/api/v1/incidents/{id}", get(show))
        .route("/api/v1/incidents/{id}/report", get(report))
        .route("/api/v1/incidents/{id}/ack", post(ack).layer(small()))
        .route(
            "/api/v1/incidents/{id}/resolve",
            post(resolve).layer(small()),
        )
        .route(
            "/api/v1/events",
            post(events).layer(DefaultBodyLimit::max(EVENT_BODY)),
        )
        .route(
            "/api/v1/silences",
            get(list_silences).post(add_silence).layer(small()),
        )
        .route("/api/v1/silences/{id}", axum::routing::delete(end_silence))
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
            post(crate::http::slack_interactions::interactions)
                .layer(DefaultBodyLimit::max(SLACK_BODY)),
        )
        .layer(DefaultBodyLimit::max(SMALL_BODY))
        .with_state(api)
}

/// Paths that answer without the bearer token: probes, the scrape, and the webhooks of Slack
/// and the pagers (which sign their requests).
fn public(path: &str) -> bool {
    matches!(
        path,
        "/healthz"
            | "/readyz"
            | "/metrics"
            | "/slack/interactions"
            | "/pagerduty/webhook"
            | "/opsgenie/webhook"
    )
}

/// In front of routing: the token is checked before any body is read and before a bad path is
/// answered (an unauthenticated caller learns nothing but 401); every request has a deadline.
async fn guard(
    State(api): State<Api>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !public(request.uri().path()) {
        if let Some(refused) = unauthorized(&api, request.headers()) {
            return refused;
        }
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            "the request was not completed in time",
        ),
    }
}

/// The router behind its guard, as the listener serves it.
pub fn app(api: Api) -> Router {
    let guarded = axum::middleware::from_fn_with_state(api.clone(), guard);
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

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 401 answer, unless the request carries the API token.
fn unauthorized(api: &Api, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &api.config.http.api_token else {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "the API is disabled: set http.api_token",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if same(presented.as_bytes(), token.expose().as_bytes()) {
        None
    } else {
        Some(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

/// How long a readiness probe waits for the store (ECS health checks time out at 5 s by default).
const READY_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Ready when the configuration is loaded (it is, or the process would not serve), the store
/// answers within two seconds and its writes work (the last write, or a probe write at most
/// every 5 s), and the SQS source (if configured) last received successfully.
async fn ready(State(api): State<Api>) -> Response {
    let mut reasons = Vec::new();
    match tokio::time::timeout(READY_STORE_TIMEOUT, api.store.pending_deadlines()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => reasons.push(e.to_string()),
        Err(_) => reasons.push(format!(
            "store: no answer within {} s",
            READY_STORE_TIMEOUT.as_secs()
        )),
    }
    match tokio::time::timeout(READY_STORE_TIMEOUT, api.store.write_problem()).await {
        Ok(None) => {}
        Ok(Some(problem)) => reasons.push(format!("store writes failing: {problem}")),
        Err(_) => reasons.push(format!(
            "store: a write took longer than {} s",
            READY_STORE_TIMEOUT.as_secs()
        )),
    }
    if let Some(problem) = api.health.sqs_problem() {
        reasons.push(problem);
    }
    if reasons.is_empty() {
        Json(json!({"status": "ready", "store": api.store.kind()})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": reasons.join("; "), "reasons": reasons})),
        )
            .into_response()
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    let environments: Vec<String> = api
        .config
        .environments
        .iter()
        .map(|e| e.name.clone())
        .collect();
    let body = crate::metrics::render(&api.scrapes, &api.store, &environments).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Incidents per page of `GET /api/v1/incidents` unless `limit` says otherwise, and the most.
const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

async fn list(State(api): State<Api>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let active_only = match q.status.as_deref() {
        None | Some("all") => false,
        Some("open") => true,
        Some(_) => return error(StatusCode::BAD_REQUEST, "status: use open or all"),
    };
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => PAGE_DEFAULT,
        Some(Ok(n)) if (1..=PAGE_MAX).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("limit: use a whole number from 1 to {PAGE_MAX}"),
            )
        }
    };
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => match crate::store::Cursor::decode(c) {
            Some(c) => Some(c),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "cursor: not one this API returned; pass the next_cursor of the previous page, or none for the first page",
                )
            }
        },
    };
    // One more than asked tells whether there is a next page.
    match api
        .store
        .incidents_page(active_only, limit + 1, after)
        .await
    {
        Ok(mut incidents) => {
            let next = (incidents.len() > limit).then(|| {
                incidents.truncate(limit);
                incidents
                    .last()
                    .map(|i| crate::store::Cursor::after(i).encode())
            });
            Json(json!({"incidents": incidents, "next_cursor": next.flatten()})).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn show(State(api): State<Api>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    match api.store.incident(&id).await {
        Ok(Some((incident, timeline))) => {
            Json(json!({"incident": incident, "timeline": timeline})).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no such incident"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// The runbook's "Document incident" step: the incident and its timeline as Markdown.
async fn report(State(api): State<Api>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    match api.store.incident(&id).await {
        Ok(Some((incident, timeline))) => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            pipeline_responder_core::report::incident_report(&incident, &timeline, Utc::now()),
        )
            .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such incident"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
struct Actor {
    by: Option<String>,
}

fn actor(body: &str) -> String {
    serde_json::from_str::<Actor>(body)
        .ok()
        .and_then(|a| a.by)
        .filter(|b| !b.trim().is_empty())
        .map(|b| b.chars().take(80).collect())
        .unwrap_or_else(|| "the API".to_string())
}

async fn ack(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    use incident_actions::Outcome;
    match incident_actions::acknowledge(&api, &id, &actor(&body)).await {
        Ok(Outcome::Done) => Json(json!({"acknowledged": id})).into_response(),
        Ok(Outcome::AlreadyDone) => error(StatusCode::CONFLICT, "no open incident with this id"),
        Ok(Outcome::NotFound) => error(StatusCode::CONFLICT, "no open incident with this id"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn resolve(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    use incident_actions::Outcome;
    match incident_actions::resolve(&api, &id, &actor(&body)).await {
        Ok(Outcome::Done) => Json(json!({"resolved": id})).into_response(),
        Ok(Outcome::AlreadyDone) => error(StatusCode::CONFLICT, "the incident is already resolved"),
        Ok(Outcome::NotFound) => error(StatusCode::NOT_FOUND, "no such incident"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// EventBridge API destination: the same handling as an SQS message.
async fn events(State(api): State<Api>, headers: HeaderMap, body: String) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    match api.ingest.handle("http", &body, Utc::now()).await {
        Ok(Handled::Stored { applied, .. }) => (
            StatusCode::ACCEPTED,
            Json(json!({"outcome": "stored", "opened": applied.opened})),
        )
            .into_response(),
        Ok(Handled::Duplicate) => {
            (StatusCode::OK, Json(json!({"outcome": "duplicate"}))).into_response()
        }
        Ok(Handled::Ignored { kind, reason }) => (
            StatusCode::OK,
            Json(json!({"outcome": "ignored", "kind": kind, "reason": reason})),
        )
            .into_response(),
        Err(HandleError::Rejected(e)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"outcome": "rejected", "reason": e.reason(), "error": e.to_string()})),
        )
            .into_response(),
        Err(HandleError::Store(e)) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// A silence request: match by any of environment, pipeline, incident type, for a duration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    environment: Option<String>,
    pipeline: Option<String>,
    incident_type: Option<String>,
    duration_secs: u64,
    comment: Option<String>,
    by: Option<String>,
}

async fn add_silence(State(api): State<Api>, headers: HeaderMap, body: String) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let request: SilenceRequest = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("silence: {e}; send {{\"environment\", \"pipeline\", \"incident_type\" (any), \"duration_secs\", \"comment\", \"by\"}}")),
    };
    if request.environment.is_none()
        && request.pipeline.is_none()
        && request.incident_type.is_none()
    {
        return error(
            StatusCode::BAD_REQUEST,
            "silence: give at least one of environment, pipeline, incident_type",
        );
    }
    if !(1..=7 * 86_400).contains(&request.duration_secs) {
        return error(
            StatusCode::BAD_REQUEST,
            "duration_secs: use 1 to 604800 (7 days)",
        );
    }
    if let Some(t) = &request.incident_type {
        if pipeline_responder_core::incident::IncidentType::parse(t).is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                "incident_type: not an incident type",
            );
        }
    }
    let now = Utc::now();
    let silence = crate::store::Silence {
        id: 0,
        environment: request.environment,
        pipeline: request.pipeline,
        incident_type: request.incident_type,
        starts_at: now,
        ends_at: now + chrono::Duration::seconds(request.duration_secs as i64),
        created_by: request
            .by
            .unwrap_or_else(|| "the API".into())
            .chars()
            .take(80)
            .collect(),
        comment: request.comment,
    };
    match api.store.add_silence(silence).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({"id": id}))).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn list_silences(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    match api.store.silences(Utc::now()).await {
        Ok(s) => Json(json!({"silences": s})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn end_silence(State(api): State<Api>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    match api.store.end_silence(id, Utc::now()).await {
        Ok(true) => Json(json!({"ended": id})).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no active silence with this id"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_comparison_needs_every_byte() {
        assert!(super::same(b"secret-token", b"secret-token"));
        assert!(!super::same(b"secret-token", b"secret-tokeX"));
        assert!(!super::same(b"secret", b"secret-token"));
        assert!(!super::same(b"", b"x"));
    }
}
