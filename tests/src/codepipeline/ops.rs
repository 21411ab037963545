//! The CodePipeline operations the daemon calls, over the test's model.
//!
//! Validation and error codes follow the service model's modeled errors per operation
//! (`operation/*.rs` in aws-sdk-codepipeline), so the daemon sees the SDK's typed variants.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::model::{self, ActionStateModel, ExecutionModel, PipelineModel};
use crate::faults::Faults;

/// Largest and default page size of both list operations (`maxResults` range 1..=100).
const MAX_RESULTS: usize = 100;

/// Everything the fake knows; one lock guards it so each call sees a consistent state.
#[derive(Debug, Default)]
pub(crate) struct FakeState {
    pub(crate) pipelines: BTreeMap<String, PipelineModel>,
    pub(crate) faults: Faults,
    /// Approval tokens already answered, to tell "already completed" from "invalid".
    used_tokens: HashSet<String>,
    /// `clientRequestToken` → execution started with it, for idempotent retries.
    started: HashMap<String, String>,
    /// Makes started execution ids unique.
    sequence: u64,
}

/// An error answer: HTTP status, the error code (`__type`) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl ApiError {
    /// CodePipeline answers client errors, throttling included, with HTTP 400.
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

pub(crate) fn run(
    state: &mut FakeState,
    operation: &str,
    request: &Value,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    match operation {
        "GetPipelineState" => {
            let pipeline = state.pipeline(required(request, "name")?)?;
            Ok(model::pipeline_state_json(pipeline))
        }
        "GetPipelineExecution" => {
            let pipeline = state.pipeline(required(request, "pipelineName")?)?;
            let id = required(request, "pipelineExecutionId")?;
            let execution = find_execution(pipeline, id)?;
            Ok(json!({"pipelineExecution": model::execution_json(pipeline, execution)}))
        }
        "ListPipelineExecutions" => list_pipeline_executions(state, request),
        "ListActionExecutions" => list_action_executions(state, request),
        "StopPipelineExecution" => stop_pipeline_execution(state, request, now),
        "StartPipelineExecution" => start_pipeline_execution(state, request, now),
        "PutApprovalResult" => put_approval_result(state, request, now),
        "RetryStageExecution" => retry_stage_execution(state, request, now),
        _ => Err(ApiError::new(
            "UnknownOperationException",
            format!("Unknown operation {operation}"),
        )),
    }
}

impl FakeState {
    fn pipeline(&self, name: &str) -> Result<&PipelineModel, ApiError> {
        self.pipelines.get(name).ok_or_else(|| not_found(name))
    }

    fn pipeline_mut(&mut self, name: &str) -> Result<&mut PipelineModel, ApiError> {
        self.pipelines.get_mut(name).ok_or_else(|| not_found(name))
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        "PipelineNotFoundException",
        format!(
            "Account '{}' does not have a pipeline with name '{name}'",
            crate::TEST_ACCOUNT_ID
        ),
    )
}

fn find_execution<'a>(
    pipeline: &'a PipelineModel,
    id: &str,
) -> Result<&'a ExecutionModel, ApiError> {
    pipeline
        .executions
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| execution_not_found(pipeline, id))
}

fn execution_not_found(pipeline: &PipelineModel, id: &str) -> ApiError {
    ApiError::new(
        "PipelineExecutionNotFoundException",
        format!(
            "Account '{}' does not have an execution with id '{id}' for pipeline '{}'",
            crate::TEST_ACCOUNT_ID,
            pipeline.name
        ),
    )
}

/// A required string member, with the service's validation message when it is missing.
fn required<'a>(request: &'a Value, member: &str) -> Result<&'a str, ApiError> {
    match request.get(member).and_then(Value::as_str) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(ApiError::new(
            "ValidationException",
            format!(
                "1 validation error detected: Value null at '{member}' failed to satisfy \
                 constraint: Member must not be null"
            ),
        )),
    }
}

/// The slice of `len` items one page covers and the token for the next page. `scope` ties a
/// token to the query that issued it, so a token reused elsewhere is refused like AWS does.
fn page(
    request: &Value,
    len: usize,
    scope: &str,
) -> Result<(usize, usize, Option<String>), ApiError> {
    let max = match request.get("maxResults").map(Value::as_u64) {
        None => MAX_RESULTS,
        Some(Some(n)) if (1..=MAX_RESULTS as u64).contains(&n) => n as usize,
        Some(_) => {
            return Err(ApiError::new(
                "ValidationException",
                "1 validation error detected: Value at 'maxResults' failed to satisfy \
                 constraint: Member must have value between 1 and 100",
            ))
        }
    };
    let start = match request.get("nextToken").and_then(Value::as_str) {
        None => 0,
        Some(token) => token
            .strip_prefix(scope)
            .and_then(|rest| rest.strip_prefix('#'))
            .and_then(|offset| offset.parse::<usize>().ok())
            .filter(|&offset| offset <= len)
            .ok_or_else(|| {
                ApiError::new(
                    "InvalidNextTokenException",
                    "The next token was not recognized",
                )
            })?,
    };
    let end = (start + max).min(len);
    let next = (end < len).then(|| format!("{scope}#{end}"));
    Ok((start, end, next))
}

fn with_next_token(mut body: Value, next: Option<String>) -> Value {
    if let Some(token) = next {
        body["nextToken"] = token.into();
    }
    body
}

fn list_pipeline_executions(state: &FakeState, request: &Value) -> Result<Value, ApiError> {
    let pipeline = state.pipeline(required(request, "pipelineName")?)?;
    let executions = pipeline.executions_newest_first();
    let (start, end, next) = page(
        request,
        executions.len(),
        &format!("executions/{}", pipeline.name),
    )?;
    let summaries: Vec<Value> = executions[start..end]
        .iter()
        .map(|e| model::execution_summary_json(e))
        .collect();
    Ok(with_next_token(
        json!({"pipelineExecutionSummaries": summaries}),
        next,
    ))
}

fn list_action_executions(state: &FakeState, request: &Value) -> Result<Value, ApiError> {
    let pipeline = state.pipeline(required(request, "pipelineName")?)?;
    let wanted = request
        .pointer("/filter/pipelineExecutionId")
        .and_then(Value::as_str);
    if let Some(id) = wanted {
        let known = pipeline.executions.iter().any(|e| e.id == id)
            || pipeline
                .action_executions
                .iter()
                .any(|r| r.pipeline_execution_id == id);
        if !known {
            return Err(execution_not_found(pipeline, id));
        }
    }
    let mut runs: Vec<_> = pipeline
        .action_executions
        .iter()
        .filter(|r| wanted.is_none_or(|id| r.pipeline_execution_id == id))
        .collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.start_time));
    let scope = format!("actions/{}/{}", pipeline.name, wanted.unwrap_or("*"));
    let (start, end, next) = page(request, runs.len(), &scope)?;
    let details: Vec<Value> = runs[start..end]
        .iter()
        .map(|r| model::action_execution_json(pipeline, r))
        .collect();
    Ok(with_next_token(
        json!({"actionExecutionDetails": details}),
        next,
    ))
}

fn stop_pipeline_execution(
    state: &mut FakeState,
    request: &Value,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let id = required(request, "pipelineExecutionId")?.to_owned();
    let pipeline = state.pipeline_mut(required(request, "pipelineName")?)?;
    let not_stoppable = || {
        ApiError::new(
            "PipelineExecutionNotStoppableException",
            format!("Execution '{id}' is not in progress and cannot be stopped"),
        )
    };
    let execution = pipeline.execution_mut(&id).ok_or_else(not_stoppable)?;
    match execution.status.as_str() {
        "InProgress" => {}
        "Stopping" => {
            return Err(ApiError::new(
                "DuplicatedStopRequestException",
                format!("Execution '{id}' is already being stopped"),
            ))
        }
        _ => return Err(not_stoppable()),
    }
    // A real stop moves on to Stopped once in-flight actions finish (or are abandoned); the
    // test decides when that happens.
    execution.status = "Stopping".to_owned();
    execution.status_summary = request
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    execution.last_update_time = now;
    Ok(json!({"pipelineExecutionId": id}))
}

fn start_pipeline_execution(
    state: &mut FakeState,
    request: &Value,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let name = required(request, "name")?.to_owned();
    state.pipeline(&name)?;
    let client_token = request.get("clientRequestToken").and_then(Value::as_str);
    if let Some(id) = client_token.and_then(|token| state.started.get(token)) {
        return Ok(json!({"pipelineExecutionId": id}));
    }
    state.sequence += 1;
    let id = format!("00000000-0000-4000-8000-{:012x}", state.sequence);
    if let Some(token) = client_token {
        state.started.insert(token.to_owned(), id.clone());
    }
    let pipeline = state.pipeline_mut(&name)?;
    pipeline
        .executions
        .push(ExecutionModel::new(&id, "InProgress", now));
    Ok(json!({"pipelineExecutionId": id}))
}

fn put_approval_result(
    state: &mut FakeState,
    request: &Value,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let (stage_name, action_name) = (
        required(request, "stageName")?,
        required(request, "actionName")?,
    );
    let token = required(request, "token")?;
    let status = request.pointer("/result/status").and_then(Value::as_str);
    let summary = request.pointer("/result/summary").and_then(Value::as_str);
    let (Some(status @ ("Approved" | "Rejected")), Some(summary)) = (status, summary) else {
        return Err(ApiError::new(
            "ValidationException",
            "result must have a summary and a status of Approved or Rejected",
        ));
    };
    let pipeline = state.pipeline_mut(required(request, "pipelineName")?)?;
    let stage = pipeline
        .stages
        .iter_mut()
        .find(|s| s.name == stage_name)
        .ok_or_else(|| {
            ApiError::new(
                "StageNotFoundException",
                format!("Stage '{stage_name}' not found"),
            )
        })?;
    let action = stage
        .actions
        .iter_mut()
        .find(|a| a.name == action_name)
        .ok_or_else(|| {
            ApiError::new(
                "ActionNotFoundException",
                format!("Action '{action_name}' not found"),
            )
        })?;
    let pending = action
        .latest
        .as_mut()
        .filter(|l| l.status == "InProgress" && l.token.as_deref() == Some(token));
    let Some(latest) = pending else {
        return Err(if state.used_tokens.contains(token) {
            ApiError::new(
                "ApprovalAlreadyCompletedException",
                "This approval request has already been completed",
            )
        } else {
            ApiError::new(
                "InvalidApprovalTokenException",
                "The token for the approval request is not valid",
            )
        });
    };
    *latest = ActionStateModel {
        status: if status == "Approved" {
            "Succeeded"
        } else {
            "Failed"
        }
        .to_owned(),
        summary: Some(summary.to_owned()),
        last_status_change: now,
        token: None,
        ..latest.clone()
    };
    state.used_tokens.insert(token.to_owned());
    Ok(json!({"approvedAt": model::epoch(now)}))
}

/// `RetryStageExecution` with `retryMode` `FAILED_ACTIONS` (or `ALL_ACTIONS`): only the stage's
/// latest run, only when it failed; its failed actions run again.
fn retry_stage_execution(
    state: &mut FakeState,
    request: &Value,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let stage_name = required(request, "stageName")?.to_owned();
    let id = required(request, "pipelineExecutionId")?.to_owned();
    let mode = required(request, "retryMode")?;
    if !matches!(mode, "FAILED_ACTIONS" | "ALL_ACTIONS") {
        return Err(ApiError::new(
            "ValidationException",
            format!("retryMode '{mode}' must be FAILED_ACTIONS or ALL_ACTIONS"),
        ));
    }
    let all = mode == "ALL_ACTIONS";
    let pipeline = state.pipeline_mut(required(request, "pipelineName")?)?;
    let stage = pipeline
        .stages
        .iter_mut()
        .find(|s| s.name == stage_name)
        .ok_or_else(|| {
            ApiError::new(
                "StageNotFoundException",
                format!("Stage '{stage_name}' not found"),
            )
        })?;
    match &stage.latest_execution {
        Some((latest, _)) if *latest != id => {
            return Err(ApiError::new(
                "NotLatestPipelineExecutionException",
                format!("Execution '{id}' is not the latest execution of stage '{stage_name}'"),
            ))
        }
        Some((_, status)) if status == "Failed" => {}
        _ => {
            return Err(ApiError::new(
                "StageNotRetryableException",
                format!(
                    "Stage '{stage_name}' of execution '{id}' has not failed and cannot be retried"
                ),
            ))
        }
    }
    stage.latest_execution = Some((id.clone(), "InProgress".to_owned()));
    for action in &mut stage.actions {
        if let Some(latest) = action
            .latest
            .as_mut()
            .filter(|l| all || l.status == "Failed")
        {
            latest.status = "InProgress".to_owned();
            latest.error = None;
            latest.last_status_change = now;
        }
    }
    if let Some(execution) = pipeline.execution_mut(&id) {
        execution.status = "InProgress".to_owned();
        execution.last_update_time = now;
    }
    Ok(json!({"pipelineExecutionId": id}))
}
