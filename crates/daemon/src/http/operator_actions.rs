//! `POST /api/v1/incidents/{id}/actions/{action}`: approve, reject, retry, restart, start, as
//! the CLI sends them, through the same guards as the Slack buttons. Body
//! `{"by": "<who>", "reason": "<why>"}`; `by` must be on the environment's approvers or
//! operators. An `Idempotency-Key` header makes a retried request act once.

use super::auth::unauthorized;
use super::{error, Api};
use crate::actions::{Answer, Request};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pipeline_responder_core::actions::{ActionKind, ActionOutcome};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    by: Option<String>,
    reason: Option<String>,
}

pub(super) async fn act(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: String,
) -> Response {
    if let Some(r) = unauthorized(&api, &headers) {
        return r;
    }
    let Some(action) = ActionKind::parse(&action) else {
        let names: Vec<&str> = ActionKind::ALL.iter().map(|a| a.as_str()).collect();
        return error(
            StatusCode::BAD_REQUEST,
            &format!("action: use one of {}", names.join(", ")),
        );
    };
    let body: Body = if body.trim().is_empty() {
        Body::default()
    } else {
        match serde_json::from_str(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("body: {e}; send {{\"by\": \"<who>\", \"reason\": \"<why>\"}}"),
                )
            }
        }
    };
    let Some(by) = body
        .by
        .map(|b| b.trim().chars().take(80).collect::<String>())
        .filter(|b| !b.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "by: name who acts (it must be on the environment's approvers or operators)",
        );
    };
    let interaction = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("api/{k}"));
    let request = Request {
        key: id,
        action,
        by,
        reason: body.reason.map(|r| r.chars().take(500).collect()),
        interaction,
        slack_user: false,
    };
    match api.actions.perform(request).await {
        Ok(Answer::Recorded(outcome, message)) => {
            let status = match outcome {
                ActionOutcome::Done => StatusCode::OK,
                ActionOutcome::Vote => StatusCode::ACCEPTED,
                ActionOutcome::Refused => StatusCode::FORBIDDEN,
                ActionOutcome::Failed => StatusCode::BAD_GATEWAY,
            };
            (
                status,
                Json(json!({"outcome": outcome.as_str(), "message": message})),
            )
                .into_response()
        }
        Ok(Answer::Duplicate) => (
            StatusCode::CONFLICT,
            Json(json!({"outcome": "duplicate", "message": "this request was already handled; nothing was done again"})),
        )
            .into_response(),
        Ok(Answer::NotFound) => error(StatusCode::NOT_FOUND, "no such incident"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
