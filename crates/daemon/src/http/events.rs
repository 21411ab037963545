//! `/api/v1/events`: an EventBridge API destination.

use super::auth::unauthorized;
use super::{error, Api};
use crate::pipeline::ingest::{HandleError, Handled};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;
/// EventBridge API destination: the same handling as an SQS message.
pub(super) async fn events(State(api): State<Api>, headers: HeaderMap, body: String) -> Response {
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
