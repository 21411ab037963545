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
    if !api.deliveries.first(pager, &inbound.event_id) {
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
            api.deliveries.forget(pager, &inbound.event_id);
            // 5xx: the pager redelivers later.
            refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, Json(json!({"error": why}))).into_response()
}

/// Delivery ids this process has acted on, bounded (the oldest are forgotten first): a pager's
/// redelivery of one it handled is answered "already handled". Kept in the API's state.
#[derive(Debug, Default)]
pub struct Deliveries {
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
}

const SEEN_LIMIT: usize = 10_000;

impl Deliveries {
    /// Whether `id` of `pager` is new (and now noted). A delivery without an id is always new.
    fn first(&self, pager: &str, id: &str) -> bool {
        if id.is_empty() {
            return true;
        }
        let id = format!("{pager}/{id}");
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Forgets `id` of `pager` (acting on it failed; its redelivery must be acted on).
    fn forget(&self, pager: &str, id: &str) {
        let id = format!("{pager}/{id}");
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.0.remove(&id);
        seen.1.retain(|s| *s != id);
    }
}

#[cfg(test)]
mod tests {
    use super::{Deliveries, SEEN_LIMIT};

    #[test]
    fn a_delivery_is_acted_on_once_until_forgotten_and_the_oldest_go_first() {
        let d = Deliveries::default();
        assert!(d.first("pagerduty", "a"));
        assert!(
            !d.first("pagerduty", "a"),
            "a redelivery is already handled"
        );
        assert!(d.first("opsgenie", "a"), "ids are per pager");
        assert!(d.first("pagerduty", "") && d.first("pagerduty", ""));
        d.forget("pagerduty", "a");
        assert!(d.first("pagerduty", "a"), "a failed one is acted on again");
        for i in 0..SEEN_LIMIT {
            assert!(d.first("pagerduty", &format!("n{i}")));
        }
        assert!(
            d.first("opsgenie", "a"),
            "the oldest was forgotten past the bound"
        );
        assert!(!d.first("pagerduty", &format!("n{}", SEEN_LIMIT - 1)));
    }
}
