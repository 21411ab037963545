//! `/api/v1/silences`: add, list and end silences.

use super::auth::unauthorized;
use super::{error, Api};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
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

pub(super) async fn add(State(api): State<Api>, headers: HeaderMap, body: String) -> Response {
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

pub(super) async fn list(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    match api.store.silences(Utc::now()).await {
        Ok(s) => Json(json!({"silences": s})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

pub(super) async fn end(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    match api.store.end_silence(id, Utc::now()).await {
        Ok(true) => Json(json!({"ended": id})).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no active silence with this id"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
