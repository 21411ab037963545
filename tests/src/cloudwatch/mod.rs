//! A faithful fake of CloudWatch alarms, because aws-sdk-cloudwatch speaks only Smithy RPC v2
//! CBOR and moto cannot parse it.
//!
//! Wire protocol as aws-sdk-cloudwatch 1.140.0 sends it (`src/operation/describe_alarms.rs`):
//! `POST /service/GraniteServiceVersion20100801/operation/<Op>`, `Content-Type:
//! application/cbor`, `smithy-protocol: rpc-v2-cbor`, `x-amzn-query-mode: true`, a CBOR map
//! body. Answers are CBOR with the same `Content-Type` and `smithy-protocol` headers; errors
//! carry `__type` and `message` in the body plus `x-amzn-query-error` (see [`ops::CwError`]).

mod cbor;
mod ops;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};

pub use ops::AlarmModel;

use crate::faults::{InjectedError, Refusal};
use crate::recorder::Recorder;
use crate::server::Server;
use ops::{CwError, FakeState};

/// The Smithy service shape name in every operation path.
const SERVICE: &str = "GraniteServiceVersion20100801";
/// Namespace the service puts before error shape names in `__type`.
const ERROR_NAMESPACE: &str = "com.amazonaws.cloudwatch#";
const CBOR: &str = "application/cbor";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct CloudWatchCall {
    /// Operation name from the path, e.g. `DescribeAlarms`.
    pub operation: String,
    /// The CBOR body translated to JSON (timestamps as epoch seconds); `Null` if unreadable.
    pub request: serde_json::Value,
    pub at: DateTime<Utc>,
    /// HTTP status answered.
    pub status: u16,
    /// Error code answered (the query code, e.g. `ResourceNotFound`), if any.
    pub error: Option<String>,
}

/// A running CloudWatch fake; stops when dropped.
#[derive(Debug)]
pub struct CloudWatchFake {
    /// Held so the server runs until the fake drops.
    _server: Server,
    endpoint: String,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    calls: Recorder<CloudWatchCall>,
    state: Mutex<FakeState>,
}

impl CloudWatchFake {
    pub async fn start() -> CloudWatchFake {
        let shared = Arc::new(Shared {
            calls: Recorder::new(),
            state: Mutex::new(FakeState::default()),
        });
        let router = Router::new()
            .route("/service/{service}/operation/{operation}", post(dispatch))
            .with_state(Arc::clone(&shared));
        let server = Server::spawn(router).await;
        CloudWatchFake {
            endpoint: server.base_url(),
            _server: server,
            shared,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A real SDK client pointed at this fake.
    pub async fn client(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&crate::sdk_config(&self.endpoint).await)
    }

    /// Adds the alarm or replaces the one with the same name.
    pub fn put_alarm(&self, alarm: AlarmModel) {
        self.lock().alarms.insert(alarm.name.clone(), alarm);
    }

    /// Moves an alarm to `value` (`OK`, `ALARM`, `INSUFFICIENT_DATA`) now; panics if the alarm
    /// does not exist, since that is a mistake in the test.
    pub fn set_state(&self, name: &str, value: &str, reason: &str) {
        self.set_state_at(name, value, reason, Utc::now());
    }

    pub fn set_state_at(&self, name: &str, value: &str, reason: &str, at: DateTime<Utc>) {
        let mut state = self.lock();
        let alarm = state
            .alarms
            .get_mut(name)
            .unwrap_or_else(|| panic!("CloudWatchFake: no alarm named {name}"));
        alarm.state_value = value.to_owned();
        alarm.state_reason = reason.to_owned();
        alarm.state_updated = at;
    }

    pub fn alarm(&self, name: &str) -> Option<AlarmModel> {
        self.lock().alarms.get(name).cloned()
    }

    pub fn calls(&self) -> Vec<CloudWatchCall> {
        self.shared.calls.snapshot()
    }

    pub fn calls_to(&self, operation: &str) -> Vec<CloudWatchCall> {
        self.shared.calls.calls_to(operation)
    }

    pub fn call_count(&self, operation: &str) -> usize {
        self.calls_to(operation).len()
    }

    /// Waits until `operation` was called at least `n` times; panics after `timeout`.
    pub async fn wait_for_calls(
        &self,
        operation: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<CloudWatchCall> {
        self.shared
            .calls
            .wait_for_calls("CloudWatch", operation, n, timeout)
            .await
    }

    /// Limits every operation to `limit` requests per second; more get `Throttling`.
    pub fn set_tps_limit(&self, limit: Option<u32>) {
        self.lock().faults.set_tps_limit(limit);
    }

    /// The next `n` calls to `operation` get `error` (its code is used as query code and shape).
    pub fn fail_next(&self, operation: &str, n: usize, error: InjectedError) {
        self.lock().faults.inject(operation, n, error);
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.shared.lock()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    Path((service, operation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Option<ciborium::Value> = if body.is_empty() {
        Some(ciborium::Value::Map(Vec::new()))
    } else {
        ciborium::from_reader(body.as_ref()).ok()
    };
    let result = answer(&shared, &service, &operation, &headers, request.as_ref());
    shared.calls.push(CloudWatchCall {
        operation,
        request: request
            .as_ref()
            .map_or(serde_json::Value::Null, cbor::to_json),
        at: Utc::now(),
        status: result.as_ref().map_or_else(|e| e.status, |_| 200),
        error: result.as_ref().err().map(|e| e.code.clone()),
    });
    respond(result)
}

fn answer(
    shared: &Shared,
    service: &str,
    operation: &str,
    headers: &HeaderMap,
    request: Option<&ciborium::Value>,
) -> Result<ciborium::Value, CwError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    if service != SERVICE {
        return Err(CwError::new(
            404,
            "UnknownOperationException",
            "UnknownOperationException",
            format!("Unknown service {service}"),
        ));
    }
    if !header("authorization").starts_with("AWS4-HMAC-SHA256 ") {
        return Err(CwError::new(
            403,
            "MissingAuthenticationToken",
            "MissingAuthenticationToken",
            "Missing Authentication Token",
        ));
    }
    // RPC v2 CBOR requests must say so; anything else is another protocol aimed at us.
    if header("smithy-protocol") != "rpc-v2-cbor" || !header("content-type").starts_with(CBOR) {
        return Err(CwError::new(
            400,
            "SerializationException",
            "SerializationException",
            "Expected smithy-protocol: rpc-v2-cbor and Content-Type: application/cbor",
        ));
    }
    let Some(input) = request.and_then(ciborium::Value::as_map) else {
        return Err(CwError::new(
            400,
            "SerializationException",
            "SerializationException",
            "Request body is not a CBOR map",
        ));
    };
    let mut state = shared.lock();
    match state.faults.check(operation) {
        Some(Refusal::Injected(error)) => Err(CwError::new(
            error.status,
            &error.code,
            &error.code,
            error.message,
        )),
        Some(Refusal::Throttled) => Err(CwError::new(
            400,
            "Throttling",
            "Throttling",
            "Rate exceeded",
        )),
        None => ops::run(&mut state, operation, cbor::Input(input), Utc::now()),
    }
}

fn respond(result: Result<ciborium::Value, CwError>) -> Response {
    let (status, body, query_error) = match result {
        Ok(body) => (StatusCode::OK, body, None),
        Err(error) => {
            // 5xx are the service's fault, everything else the caller's.
            let fault = if error.status >= 500 {
                "Receiver"
            } else {
                "Sender"
            };
            let body = cbor::map(vec![
                (
                    "__type",
                    Some(cbor::text(format!("{ERROR_NAMESPACE}{}", error.shape))),
                ),
                ("message", Some(cbor::text(error.message))),
            ]);
            let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, body, Some(format!("{};{fault}", error.code)))
        }
    };
    let mut response = (status, cbor::encode(&body)).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(CBOR));
    headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    headers.insert(
        "x-amzn-requestid",
        HeaderValue::from_static("00000000-fake-4000-8000-cloudwatch00"),
    );
    if let Some(value) = query_error.and_then(|q| HeaderValue::from_str(&q).ok()) {
        headers.insert("x-amzn-query-error", value);
    }
    response
}

impl crate::recorder::Operation for CloudWatchCall {
    fn operation(&self) -> &str {
        &self.operation
    }
}
