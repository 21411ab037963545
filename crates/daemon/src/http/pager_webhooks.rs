//! Webhooks from pagers (PagerDuty V3, Opsgenie): an acknowledgement or resolution made there
//! acknowledges or resolves ours, which stops our escalation. Each pager's module verifies and
//! reads its delivery ([`crate::notify::Inbound`]); what happens next is the same for all.
//!
//! Replays: a delivery is verified by its signature, acted on once per process (its id), and
//! refused when it happened more than an hour ago; acknowledging or resolving twice changes
//! nothing, so a replay through another replica is harmless too.

use super::incident_actions::{self, Outcome};
use super::Api;
use crate::notify::{Inbound, Refused};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use pipeline_responder_core::decision::NotificationKind;
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Deliveries older than this are not acted on.
const MAX_AGE: chrono::Duration = chrono::Duration::hours(1);

/// `POST /pagerduty/webhook`.
pub async fn pagerduty(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = api
        .config
        .notifiers
        .pagerduty
        .as_ref()
        .and_then(|p| p.webhook_secret.as_ref())
    else {
        return refuse(
            StatusCode::NOT_FOUND,
            "set notifiers.pagerduty.webhook_secret to take PagerDuty webhooks",
        );
    };
    let signature = headers
        .get("x-pagerduty-signature")
        .and_then(|v| v.to_str().ok());
    let read = crate::notify::pagerduty::inbound(secret.expose(), &body, signature);
    handle(&api, "pagerduty", read).await
}

/// `POST /opsgenie/webhook`.
pub async fn opsgenie(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = api
        .config
        .notifiers
        .opsgenie
        .as_ref()
        .and_then(|o| o.webhook_token.as_ref())
    else {
        return refuse(
            StatusCode::NOT_FOUND,
            "set notifiers.opsgenie.webhook_token to take Opsgenie webhooks",
        );
    };
    let header = headers.get("x-webhook-token").and_then(|v| v.to_str().ok());
    let read = crate::notify::opsgenie::inbound(token.expose(), header, &body);
    handle(&api, "opsgenie", read).await
}

async fn handle(api: &Api, pager: &str, read: Result<Option<Inbound>, Refused>) -> Response {
    let inbound = match read {
        Err(Refused::Signature) => {
            tracing::warn!(pager, "Webhook refused: bad signature");
            return refuse(StatusCode::UNAUTHORIZED, "bad signature");
        }
        Err(Refused::Malformed(why)) => return refuse(StatusCode::BAD_REQUEST, &why),
        Ok(None) => {
            return Json(json!({"ignored": "not an acknowledgement or resolution"})).into_response()
        }
        Ok(Some(inbound)) => inbound,
    };
    if inbound
        .occurred_at
        .is_some_and(|at| Utc::now() - at > MAX_AGE)
    {
        tracing::warn!(pager, incident_key = %inbound.key, "Webhook ignored: older than an hour (a replay?)");
        return Json(json!({"ignored": "older than an hour"})).into_response();
    }
    if !first_delivery(pager, &inbound.event_id) {
        return Json(json!({"ignored": "already handled"})).into_response();
    }
    let result = match inbound.kind {
        NotificationKind::Resolved => {
            incident_actions::resolve(api, &inbound.key, &inbound.by).await
        }
        _ => incident_actions::acknowledge(api, &inbound.key, &inbound.by).await,
    };
    match result {
        Ok(Outcome::Done) => {
            Json(json!({"done": inbound.kind.as_str(), "incident": inbound.key})).into_response()
        }
        Ok(Outcome::AlreadyDone) => Json(json!({"ignored": "already done"})).into_response(),
        // Another integration's incident on the same service: not ours, nothing to retry.
        Ok(Outcome::NotFound) => {
            Json(json!({"ignored": "not an incident of ours"})).into_response()
        }
        Err(e) => {
            forget(pager, &inbound.event_id);
            // 5xx: the pager redelivers later.
            refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, Json(json!({"error": why}))).into_response()
}

/// Delivery ids seen by this process, bounded.
type Seen = Mutex<(HashSet<String>, VecDeque<String>)>;
static SEEN: std::sync::LazyLock<Seen> = std::sync::LazyLock::new(Default::default);
const SEEN_LIMIT: usize = 10_000;

fn first_delivery(pager: &str, id: &str) -> bool {
    if id.is_empty() {
        return true;
    }
    let id = format!("{pager}/{id}");
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if !seen.0.insert(id.clone()) {
        return false;
    }
    seen.1.push_back(id);
    if seen.1.len() > SEEN_LIMIT {
        if let Some(old) = seen.1.pop_front() {
            seen.0.remove(&old);
        }
    }
    true
}

fn forget(pager: &str, id: &str) {
    let id = format!("{pager}/{id}");
    SEEN.lock().unwrap_or_else(|p| p.into_inner()).0.remove(&id);
}
