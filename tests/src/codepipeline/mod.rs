//! A faithful fake of the CodePipeline API, because moto does not implement the execution
//! APIs the daemon needs (GetPipelineState, ListActionExecutions, StopPipelineExecution,
//! PutApprovalResult) and runs every execution to `Succeeded` at once.
//!
//! Wire protocol as aws-sdk-codepipeline sends it (awsJson 1.1, see
//! shared/fixtures/api/PROTOCOL.md): `POST /` with `X-Amz-Target: CodePipeline_20150709.<Op>`,
//! a JSON body with lowerCamelCase members, epoch-seconds timestamps as JSON numbers; errors
//! are HTTP 400 with `X-Amzn-ErrorType` and `{"__type", "message"}`.

mod model;
mod ops;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub use model::{
    ActionExecutionModel, ActionModel, ActionStateModel, ErrorDetails, ExecutionModel,
    PipelineModel, RevisionModel, StageModel,
};

use crate::faults::{InjectedError, Refusal};
use crate::recorder::Recorder;
use crate::server::Server;
use ops::{ApiError, FakeState};

/// `X-Amz-Target` is this prefix plus the operation name.
const TARGET_PREFIX: &str = "CodePipeline_20150709.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct CodePipelineCall {
    /// Operation name from `X-Amz-Target`, e.g. `GetPipelineState`.
    pub operation: String,
    /// The JSON body as sent (`Null` if it was not JSON).
    pub request: Value,
    pub at: DateTime<Utc>,
    /// HTTP status answered.
    pub status: u16,
    /// Error code answered, if any.
    pub error: Option<String>,
}

/// A running CodePipeline fake; stops when dropped.
#[derive(Debug)]
pub struct CodePipelineFake {
    /// Held so the server runs until the fake drops.
    _server: Server,
    endpoint: String,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    calls: Recorder<CodePipelineCall>,
    state: Mutex<FakeState>,
}

impl CodePipelineFake {
    pub async fn start() -> CodePipelineFake {
        let shared = Arc::new(Shared {
            calls: Recorder::new(),
            state: Mutex::new(FakeState::default()),
        });
        let router = Router::new()
            .route("/", post(dispatch))
            .with_state(Arc::clone(&shared));
        let server = Server::spawn(router).await;
        CodePipelineFake {
            endpoint: server.base_url(),
            _server: server,
            shared,
        }
    }

    /// The endpoint URL to configure the SDK (or the daemon) with.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A real SDK client pointed at this fake.
    pub async fn client(&self) -> aws_sdk_codepipeline::Client {
        aws_sdk_codepipeline::Client::new(&crate::sdk_config(&self.endpoint).await)
    }

    /// Adds the pipeline or replaces the one with the same name.
    pub fn set_pipeline(&self, pipeline: PipelineModel) {
        self.lock()
            .pipelines
            .insert(pipeline.name.clone(), pipeline);
    }

    /// Changes a pipeline in place (e.g. an action finishing); panics if it does not exist,
    /// since that is a mistake in the test.
    pub fn update_pipeline(&self, name: &str, change: impl FnOnce(&mut PipelineModel)) {
        let mut state = self.lock();
        let pipeline = state
            .pipelines
            .get_mut(name)
            .unwrap_or_else(|| panic!("CodePipelineFake: no pipeline named {name}"));
        change(pipeline);
    }

    pub fn remove_pipeline(&self, name: &str) {
        self.lock().pipelines.remove(name);
    }

    /// The pipeline as it is now, including changes made through the API.
    pub fn pipeline(&self, name: &str) -> Option<PipelineModel> {
        self.lock().pipelines.get(name).cloned()
    }

    /// Every call, in arrival order, refused ones included.
    pub fn calls(&self) -> Vec<CodePipelineCall> {
        self.shared.calls.snapshot()
    }

    pub fn calls_to(&self, operation: &str) -> Vec<CodePipelineCall> {
        self.shared.calls.calls_to(operation)
    }

    /// How many times `operation` was called; for API-economy assertions.
    pub fn call_count(&self, operation: &str) -> usize {
        self.calls_to(operation).len()
    }

    /// Waits until `operation` was called at least `n` times; panics after `timeout`.
    pub async fn wait_for_calls(
        &self,
        operation: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<CodePipelineCall> {
        self.shared
            .calls
            .wait_for_calls("CodePipeline", operation, n, timeout)
            .await
    }

    /// Limits every operation to `limit` requests per second (each its own budget); more get
    /// `ThrottlingException`. `None` (the default) removes the limit.
    pub fn set_tps_limit(&self, limit: Option<u32>) {
        self.lock().faults.set_tps_limit(limit);
    }

    /// The next `n` calls to `operation` get `error` instead of an answer.
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

async fn dispatch(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let operation = header("x-amz-target")
        .strip_prefix(TARGET_PREFIX)
        .unwrap_or_default()
        .to_owned();
    // The SDK sends `{}` for an empty input; tolerate an empty body too.
    let request: Option<Value> = if body.is_empty() {
        Some(json!({}))
    } else {
        serde_json::from_slice(&body).ok()
    };
    let result = answer(
        &shared,
        &operation,
        header("authorization"),
        request.as_ref(),
    );
    shared.calls.push(CodePipelineCall {
        operation,
        request: request.unwrap_or(Value::Null),
        at: Utc::now(),
        status: result.as_ref().map_or_else(|e| e.status, |_| 200),
        error: result.as_ref().err().map(|e| e.code.clone()),
    });
    respond(result)
}

fn answer(
    shared: &Shared,
    operation: &str,
    authorization: &str,
    request: Option<&Value>,
) -> Result<Value, ApiError> {
    // Unsigned requests mean the daemon lost its credentials; AWS refuses them first.
    if !authorization.starts_with("AWS4-HMAC-SHA256 ") {
        return Err(ApiError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    }
    let Some(request) = request.filter(|r| r.is_object()) else {
        return Err(ApiError::new(
            "SerializationException",
            "Request body is not a JSON object",
        ));
    };
    let mut state = shared.lock();
    match state.faults.check(operation) {
        Some(Refusal::Injected(error)) => Err(ApiError {
            status: error.status,
            code: error.code,
            message: error.message,
        }),
        Some(Refusal::Throttled) => Err(ApiError::new("ThrottlingException", "Rate exceeded")),
        None => ops::run(&mut state, operation, request, Utc::now()),
    }
}

fn respond(result: Result<Value, ApiError>) -> Response {
    let (status, body, error_type) = match result {
        Ok(body) => (StatusCode::OK, body, None),
        Err(error) => (
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
            json!({"__type": error.code, "message": error.message}),
            Some(error.code),
        ),
    };
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(
        "x-amzn-requestid",
        HeaderValue::from_static("00000000-fake-4000-8000-codepipeline"),
    );
    if let Some(code) = error_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}

impl crate::recorder::Operation for CodePipelineCall {
    fn operation(&self) -> &str {
        &self.operation
    }
}
