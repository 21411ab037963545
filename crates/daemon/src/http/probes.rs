//! `/readyz` and `/metrics`.

use super::Api;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
/// How long a readiness probe waits for the store (ECS health checks time out at 5 s by default).
const READY_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Ready when the configuration is loaded (it is, or the process would not serve), the store
/// answers within two seconds and its writes work (the last write, or a probe write at most
/// every 5 s), and the SQS source (if configured) last received successfully.
pub(super) async fn ready(State(api): State<Api>) -> Response {
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

pub(super) async fn metrics(State(api): State<Api>) -> Response {
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
