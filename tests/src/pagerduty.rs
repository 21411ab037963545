//! A fake PagerDuty: the Events API v2 (`POST /v2/enqueue`) with the validation and answers
//! PagerDuty documents (202 `success`; 400 `invalid event` with `errors`; 429 when events
//! arrive too fast), incidents keyed by (routing key, dedup key) that trigger, acknowledge and
//! resolve like PagerDuty's; and the other way, V3 webhook deliveries signed as PagerDuty signs
//! them (`X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>`).

// Test support: a poisoned lock or a bad status literal is a bug in the test itself.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::recorder::Recorder;
use crate::server::Server;

/// One event as PagerDuty received it, with the status it answered.
#[derive(Debug, Clone)]
pub struct PagerDutyEvent {
    pub body: Value,
    pub status: u16,
}

impl PagerDutyEvent {
    pub fn action(&self) -> &str {
        self.body["event_action"].as_str().unwrap_or_default()
    }
    pub fn routing_key(&self) -> &str {
        self.body["routing_key"].as_str().unwrap_or_default()
    }
    pub fn dedup_key(&self) -> &str {
        self.body["dedup_key"].as_str().unwrap_or_default()
    }
    pub fn accepted(&self) -> bool {
        self.status == 202
    }
}

#[derive(Debug)]
struct Shared {
    keys: HashSet<String>,
    events: Recorder<PagerDutyEvent>,
    state: Mutex<PdState>,
}

#[derive(Debug, Default)]
struct PdState {
    /// (routing key, dedup key) → triggered / acknowledged / resolved.
    incidents: HashMap<(String, String), String>,
    faults: VecDeque<(u16, Option<u64>)>,
}

#[derive(Debug)]
pub struct PagerDutyFake {
    server: Server,
    shared: Arc<Shared>,
}

impl PagerDutyFake {
    /// A fake whose services have these integration (routing) keys.
    pub async fn start(routing_keys: &[&str]) -> PagerDutyFake {
        let shared = Arc::new(Shared {
            keys: routing_keys.iter().map(|k| k.to_string()).collect(),
            events: Recorder::new(),
            state: Mutex::default(),
        });
        let router = Router::new()
            .route("/v2/enqueue", post(enqueue))
            .with_state(Arc::clone(&shared));
        PagerDutyFake {
            server: Server::spawn(router).await,
            shared,
        }
    }

    /// `notifiers.pagerduty.events_url`.
    pub fn events_url(&self) -> String {
        format!("{}/v2/enqueue", self.server.base_url())
    }

    /// The next `n` events are answered `status` (429 with Retry-After when given).
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let mut state = self.shared.state.lock().unwrap();
        state
            .faults
            .extend(std::iter::repeat_n((status, retry_after), n));
    }

    pub fn events(&self) -> Vec<PagerDutyEvent> {
        self.shared.events.snapshot()
    }

    /// Waits until `done` holds for the events received.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[PagerDutyEvent]) -> bool,
    ) -> Vec<PagerDutyEvent> {
        self.shared.events.wait_until(what, timeout, done).await
    }

    /// The status of the incident of `dedup_key` on the service of `routing_key`.
    pub fn status(&self, routing_key: &str, dedup_key: &str) -> Option<String> {
        let state = self.shared.state.lock().unwrap();
        state
            .incidents
            .get(&(routing_key.to_string(), dedup_key.to_string()))
            .cloned()
    }

    /// Someone acknowledges (or resolves) the incident in PagerDuty: its status changes and the
    /// V3 webhook delivery PagerDuty would send is returned as (body, signature header).
    pub fn act(
        &self,
        routing_key: &str,
        dedup_key: &str,
        event_type: &str,
        agent: &str,
        secret: &str,
    ) -> (String, String) {
        let status = match event_type {
            "incident.acknowledged" => "acknowledged",
            "incident.resolved" => "resolved",
            other => other,
        };
        self.shared.state.lock().unwrap().incidents.insert(
            (routing_key.to_string(), dedup_key.to_string()),
            status.to_string(),
        );
        let body = json!({
            "event": {
                "id": format!("01{:X}", rand_id(dedup_key, event_type)),
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": chrono::Utc::now().to_rfc3339(),
                "agent": {
                    "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                    "id": "PLH1HKV",
                    "self": "https://api.pagerduty.com/users/PLH1HKV",
                    "summary": agent,
                    "type": "user_reference"
                },
                "client": null,
                "data": {
                    "id": "PGR0VU2",
                    "type": "incident",
                    "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                    "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                    "number": 2,
                    "status": status,
                    "incident_key": dedup_key,
                    "created_at": "2026-01-27T10:00:00Z",
                    "title": "A pipeline failed",
                    "urgency": "high",
                    "resolve_reason": null
                }
            }
        })
        .to_string();
        let signature = sign(secret, body.as_bytes());
        (body, signature)
    }
}

fn rand_id(a: &str, b: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (a, b).hash(&mut h);
    h.finish()
}

/// `v1=<hex HMAC-SHA256(secret, body)>`, PagerDuty's V3 signature.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn invalid(errors: Vec<String>) -> (u16, Value) {
    (
        400,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

async fn enqueue(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let (status, answer) = decide(&shared, parsed.as_ref());
    shared.events.push(PagerDutyEvent {
        body: parsed.unwrap_or(Value::Null),
        status,
    });
    let mut response = (StatusCode::from_u16(status).unwrap(), Json(answer)).into_response();
    if status == 429 {
        response
            .headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    }
    response
}

fn decide(shared: &Shared, body: Option<&Value>) -> (u16, Value) {
    let mut state = shared.state.lock().unwrap();
    if let Some((status, _)) = state.faults.pop_front() {
        return (
            status,
            json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."}),
        );
    }
    let Some(body) = body else {
        return invalid(vec!["Event object is not valid JSON".into()]);
    };
    let mut errors = Vec::new();
    let key = body["routing_key"].as_str().unwrap_or_default();
    if key.len() != 32 || !shared.keys.contains(key) {
        errors.push("'routing_key' is invalid".to_string());
    }
    let action = body["event_action"].as_str().unwrap_or_default();
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        errors.push("'event_action' is invalid".to_string());
    }
    let dedup = body["dedup_key"].as_str().unwrap_or_default();
    if dedup.len() > 255 {
        errors.push("'dedup_key' is too long".to_string());
    }
    if action == "trigger" {
        let p = &body["payload"];
        let summary = p["summary"].as_str().unwrap_or_default();
        if summary.is_empty() || summary.chars().count() > 1024 {
            errors.push("'payload.summary' is missing or longer than 1024".to_string());
        }
        if p["source"].as_str().unwrap_or_default().is_empty() {
            errors.push("'payload.source' is missing".to_string());
        }
        if !matches!(
            p["severity"].as_str(),
            Some("critical" | "error" | "warning" | "info")
        ) {
            errors.push("'payload.severity' is invalid".to_string());
        }
    } else if dedup.is_empty() {
        errors.push("'dedup_key' is required to acknowledge or resolve".to_string());
    }
    if !errors.is_empty() {
        return invalid(errors);
    }
    let id = (key.to_string(), dedup.to_string());
    let current = state.incidents.get(&id).cloned();
    let next = match (action, current.as_deref()) {
        ("trigger", None | Some("resolved")) => Some("triggered"),
        ("acknowledge", Some("triggered")) => Some("acknowledged"),
        ("resolve", Some("triggered" | "acknowledged")) => Some("resolved"),
        _ => None, // PagerDuty takes the event and changes nothing.
    };
    if let Some(next) = next {
        state.incidents.insert(id, next.to_string());
    }
    (
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": dedup}),
    )
}
