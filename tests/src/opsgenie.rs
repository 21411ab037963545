//! A fake Opsgenie: the Alert API calls the daemon makes (create, add responder, acknowledge,
//! close, by alias), with `Authorization: GenieKey` checked and the answers Opsgenie documents
//! (202 `Request will be processed` with a `requestId`; 422 on a bad request; 401 without the
//! key; 429 when rate limited), alerts keyed by alias; and the Webhook integration's outgoing
//! deliveries, with the custom `X-Webhook-Token` header.

// Test support: a poisoned lock or a bad status literal is a bug in the test itself.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::recorder::Recorder;
use crate::server::Server;

/// One call as Opsgenie received it.
#[derive(Debug, Clone)]
pub struct OpsgenieCall {
    /// `create`, `responders`, `acknowledge`, `close`.
    pub what: String,
    /// The alias (from the body for create, the path otherwise).
    pub alias: String,
    pub body: Value,
    pub status: u16,
}

/// An alert as Opsgenie keeps it.
#[derive(Debug, Clone, Default)]
pub struct Alert {
    pub status: String,
    pub acknowledged: bool,
    pub priority: String,
    pub responders: Vec<Value>,
    /// How many creates the alias deduplicated.
    pub count: u32,
}

#[derive(Debug)]
struct Shared {
    key: String,
    calls: Recorder<OpsgenieCall>,
    alerts: Mutex<HashMap<String, Alert>>,
}

#[derive(Debug)]
pub struct OpsgenieFake {
    server: Server,
    shared: Arc<Shared>,
}

impl OpsgenieFake {
    pub async fn start(api_key: &str) -> OpsgenieFake {
        let shared = Arc::new(Shared {
            key: api_key.to_string(),
            calls: Recorder::new(),
            alerts: Mutex::default(),
        });
        let router = Router::new()
            .route("/v2/alerts", post(create))
            .route("/v2/alerts/{alias}/{action}", post(alert_action))
            .with_state(Arc::clone(&shared));
        OpsgenieFake {
            server: Server::spawn(router).await,
            shared,
        }
    }

    /// `notifiers.opsgenie.api_url`.
    pub fn api_url(&self) -> String {
        self.server.base_url()
    }

    pub fn calls(&self) -> Vec<OpsgenieCall> {
        self.shared.calls.snapshot()
    }

    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[OpsgenieCall]) -> bool,
    ) -> Vec<OpsgenieCall> {
        self.shared.calls.wait_until(what, timeout, done).await
    }

    pub fn alert(&self, alias: &str) -> Option<Alert> {
        self.shared.alerts.lock().unwrap().get(alias).cloned()
    }

    /// Someone acts on the alert in Opsgenie (`Acknowledge`, `Close`): it changes, and the
    /// Webhook integration's delivery is returned as its body.
    pub fn act(&self, alias: &str, action: &str, username: &str) -> String {
        if let Some(a) = self.shared.alerts.lock().unwrap().get_mut(alias) {
            match action {
                "Acknowledge" => a.acknowledged = true,
                "Close" => a.status = "closed".into(),
                _ => {}
            }
        }
        json!({
            "action": action,
            "alert": {
                "alertId": format!("{}-id", alias.len()),
                "message": "A pipeline failed",
                "alias": alias,
                "tinyId": "42",
                "entity": "",
                "tags": [],
                "createdAt": 1_769_508_000_000u64,
                "updatedAt": 1_769_508_060_000u64,
                "username": username,
                "userId": "daed1180-0ce8-438b-8f8e-57e1a5920a2d",
                "description": "",
                "team": "",
                "responders": [],
                "teams": [],
                "actions": [],
                "priority": "P2",
                "source": "web"
            },
            "source": {"name": "", "type": "web"},
            "integrationName": "Webhook",
            "integrationId": "8b8f4d0f-0a6f-4a4b-9a6c-3e4f5a6b7c8d",
            "integrationType": "Webhook"
        })
        .to_string()
    }
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("GenieKey {}", shared.key))
}

fn answer(status: u16) -> Response {
    let body = match status {
        202 => {
            json!({"result": "Request will be processed", "took": 0.302, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"})
        }
        401 => json!({"message": "Could not authenticate", "took": 0.0, "requestId": "r"}),
        404 => {
            json!({"message": "Alert with given alias does not exist", "took": 0.0, "requestId": "r"})
        }
        _ => json!({"message": "Request body is not processable", "took": 0.0, "requestId": "r"}),
    };
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let alias = body["alias"].as_str().unwrap_or_default().to_string();
    let message = body["message"].as_str().unwrap_or_default();
    let status = if !authorized(&shared, &headers) {
        401
    } else if message.is_empty() || message.chars().count() > 130 || alias.chars().count() > 512 {
        422
    } else {
        let mut alerts = shared.alerts.lock().unwrap();
        let alert = alerts.entry(alias.clone()).or_default();
        if alert.status == "open" {
            alert.count += 1; // de-duplicated: nobody is notified again
        } else {
            *alert = Alert {
                status: "open".into(),
                acknowledged: false,
                priority: body["priority"].as_str().unwrap_or("P3").into(),
                responders: body["responders"].as_array().cloned().unwrap_or_default(),
                count: 1,
            };
        }
        202
    };
    shared.calls.push(OpsgenieCall {
        what: "create".into(),
        alias,
        body,
        status,
    });
    answer(status)
}

async fn alert_action(
    State(shared): State<Arc<Shared>>,
    Path((alias, action)): Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let by_alias = query.as_deref() == Some("identifierType=alias");
    let status = if !authorized(&shared, &headers) {
        401
    } else if !by_alias || !matches!(action.as_str(), "responders" | "acknowledge" | "close") {
        422
    } else {
        let mut alerts = shared.alerts.lock().unwrap();
        match alerts.get_mut(&alias) {
            None => 404,
            Some(a) => {
                match action.as_str() {
                    "responders" => a.responders.push(body["responder"].clone()),
                    "acknowledge" => a.acknowledged = true,
                    _ => a.status = "closed".into(),
                }
                202
            }
        }
    };
    shared.calls.push(OpsgenieCall {
        what: action,
        alias,
        body,
        status,
    });
    answer(status)
}
