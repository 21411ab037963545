//! `/api/v1/incidents`: list, show, report, acknowledge, resolve.

use super::auth::unauthorized;
use super::incident_actions;
use super::{error, Api};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Incidents per page of `GET /api/v1/incidents` unless `limit` says otherwise, and the most.
const PAGE_DEFAULT: usize = 100;
const PAGE_MAX: usize = 1000;

pub(super) async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
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

pub(super) async fn show(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
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
pub(super) async fn report(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
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

pub(super) fn actor(body: &str) -> String {
    serde_json::from_str::<Actor>(body)
        .ok()
        .and_then(|a| a.by)
        .filter(|b| !b.trim().is_empty())
        .map(|b| b.chars().take(80).collect())
        .unwrap_or_else(|| "the API".to_string())
}

pub(super) async fn ack(
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

pub(super) async fn resolve(
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
