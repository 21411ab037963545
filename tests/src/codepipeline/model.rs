//! The state a test gives the CodePipeline fake, and how each piece looks on the wire.
//!
//! Field names and shapes follow the service model (see aws-sdk-codepipeline's `types/*.rs`
//! schemas and the samples in shared/fixtures/api); statuses are the API's PascalCase strings
//! (`InProgress`, `Failed`, ...), kept as strings so a test can also send values the daemon
//! does not know yet.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// One pipeline: its structure with each action's latest state (GetPipelineState), its
/// executions (ListPipelineExecutions, GetPipelineExecution) and action runs
/// (ListActionExecutions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineModel {
    pub name: String,
    pub version: i32,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub stages: Vec<StageModel>,
    /// Any order; the fake answers newest `start_time` first, as CodePipeline does.
    pub executions: Vec<ExecutionModel>,
    /// Any order; answered newest `start_time` first.
    pub action_executions: Vec<ActionExecutionModel>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageModel {
    pub name: String,
    /// `false` when someone disabled the transition into this stage (runbook: "investigate").
    pub inbound_transition_enabled: bool,
    pub disabled_reason: Option<String>,
    /// The stage's latest run: pipeline execution id and `StageExecutionStatus`.
    pub latest_execution: Option<(String, String)>,
    pub actions: Vec<ActionModel>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionModel {
    pub name: String,
    pub entity_url: Option<String>,
    /// `currentRevision.revisionId` (source actions).
    pub current_revision: Option<String>,
    pub latest: Option<ActionStateModel>,
}

/// An action's `latestExecution` in GetPipelineState.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionStateModel {
    pub action_execution_id: Option<String>,
    /// `ActionExecutionStatus`: InProgress, Abandoned, Succeeded, Failed.
    pub status: String,
    pub summary: Option<String>,
    pub last_status_change: DateTime<Utc>,
    pub external_execution_id: Option<String>,
    pub external_execution_url: Option<String>,
    pub error: Option<ErrorDetails>,
    /// Approval token of a pending manual approval; PutApprovalResult must present it.
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetails {
    /// e.g. `JobFailed`.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionModel {
    pub id: String,
    /// `PipelineExecutionStatus`: InProgress, Stopped, Stopping, Succeeded, Superseded, Failed, Cancelled.
    pub status: String,
    pub status_summary: Option<String>,
    pub start_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
    pub revisions: Vec<RevisionModel>,
    /// e.g. `StartPipelineExecution`, `CloudWatchEvent`, `Webhook`.
    pub trigger_type: String,
    pub trigger_detail: String,
}

/// A source revision of an execution: `artifactRevisions` in GetPipelineExecution,
/// `sourceRevisions` in ListPipelineExecutions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RevisionModel {
    /// The source action that produced it (`sourceRevisions[].actionName`).
    pub action_name: String,
    /// The artifact name (`artifactRevisions[].name`).
    pub artifact_name: String,
    pub revision_id: String,
    /// e.g. the commit message.
    pub revision_summary: Option<String>,
    pub revision_url: Option<String>,
    pub created: DateTime<Utc>,
}

/// One action run, as ListActionExecutions returns it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionExecutionModel {
    pub pipeline_execution_id: String,
    pub action_execution_id: String,
    pub stage_name: String,
    pub action_name: String,
    pub status: String,
    pub start_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
    /// `actionTypeId`: Source, Build, Test, Deploy, Approval, Invoke.
    pub category: String,
    pub provider: String,
    /// `input.configuration`, e.g. `ProjectName` of a CodeBuild action.
    pub configuration: BTreeMap<String, String>,
    pub external_execution_id: Option<String>,
    pub external_execution_summary: Option<String>,
    pub external_execution_url: Option<String>,
    pub error: Option<ErrorDetails>,
}

impl PipelineModel {
    /// A pipeline with no stages yet, created and updated at `created`.
    pub fn new(name: &str, created: DateTime<Utc>) -> Self {
        PipelineModel {
            name: name.to_owned(),
            version: 1,
            created,
            updated: created,
            ..Default::default()
        }
    }

    pub fn with_stage(mut self, stage: StageModel) -> Self {
        self.stages.push(stage);
        self
    }

    pub fn with_execution(mut self, execution: ExecutionModel) -> Self {
        self.executions.push(execution);
        self
    }

    pub fn with_action_execution(mut self, run: ActionExecutionModel) -> Self {
        self.action_executions.push(run);
        self
    }

    pub fn execution_mut(&mut self, id: &str) -> Option<&mut ExecutionModel> {
        self.executions.iter_mut().find(|e| e.id == id)
    }

    pub fn action_mut(&mut self, stage: &str, action: &str) -> Option<&mut ActionModel> {
        self.stages
            .iter_mut()
            .find(|s| s.name == stage)?
            .actions
            .iter_mut()
            .find(|a| a.name == action)
    }

    /// Executions newest first, the order both list APIs use.
    pub(crate) fn executions_newest_first(&self) -> Vec<&ExecutionModel> {
        let mut executions: Vec<_> = self.executions.iter().collect();
        executions.sort_by_key(|e| std::cmp::Reverse(e.start_time));
        executions
    }
}

impl StageModel {
    pub fn new(name: &str) -> Self {
        StageModel {
            name: name.to_owned(),
            inbound_transition_enabled: true,
            disabled_reason: None,
            latest_execution: None,
            actions: Vec::new(),
        }
    }

    pub fn with_action(mut self, action: ActionModel) -> Self {
        self.actions.push(action);
        self
    }

    /// Sets the stage's latest run.
    pub fn ran(mut self, pipeline_execution_id: &str, status: &str) -> Self {
        self.latest_execution = Some((pipeline_execution_id.to_owned(), status.to_owned()));
        self
    }
}

impl ActionModel {
    /// An action whose latest execution has `status` since `at`.
    pub fn new(name: &str, status: &str, at: DateTime<Utc>) -> Self {
        ActionModel {
            name: name.to_owned(),
            latest: Some(ActionStateModel {
                status: status.to_owned(),
                last_status_change: at,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// An action that never ran (no `latestExecution`).
    pub fn idle(name: &str) -> Self {
        ActionModel {
            name: name.to_owned(),
            ..Default::default()
        }
    }
}

impl ExecutionModel {
    pub fn new(id: &str, status: &str, start_time: DateTime<Utc>) -> Self {
        ExecutionModel {
            id: id.to_owned(),
            status: status.to_owned(),
            start_time,
            last_update_time: start_time,
            trigger_type: "StartPipelineExecution".to_owned(),
            ..Default::default()
        }
    }
}

/// awsJson encodes timestamps as epoch seconds, a JSON number with a fractional part.
pub(crate) fn epoch(at: DateTime<Utc>) -> Value {
    json!(at.timestamp_millis() as f64 / 1000.0)
}

/// Adds `key` only when there is a value, as AWS omits absent members.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value.into());
    }
}

fn error_json(error: &ErrorDetails) -> Value {
    json!({"code": error.code, "message": error.message})
}

pub(crate) fn pipeline_state_json(pipeline: &PipelineModel) -> Value {
    let stages: Vec<Value> = pipeline.stages.iter().map(stage_json).collect();
    json!({
        "pipelineName": pipeline.name,
        "pipelineVersion": pipeline.version,
        "stageStates": stages,
        "created": epoch(pipeline.created),
        "updated": epoch(pipeline.updated),
    })
}

fn stage_json(stage: &StageModel) -> Value {
    let mut transition = Map::new();
    transition.insert("enabled".into(), stage.inbound_transition_enabled.into());
    put(
        &mut transition,
        "disabledReason",
        stage.disabled_reason.clone(),
    );
    let actions: Vec<Value> = stage.actions.iter().map(action_state_json).collect();
    let mut map = Map::new();
    map.insert("stageName".into(), stage.name.clone().into());
    map.insert("inboundTransitionState".into(), transition.into());
    map.insert("actionStates".into(), actions.into());
    if let Some((id, status)) = &stage.latest_execution {
        map.insert(
            "latestExecution".into(),
            json!({"pipelineExecutionId": id, "status": status}),
        );
    }
    map.into()
}

fn action_state_json(action: &ActionModel) -> Value {
    let mut map = Map::new();
    map.insert("actionName".into(), action.name.clone().into());
    put(&mut map, "entityUrl", action.entity_url.clone());
    if let Some(revision) = &action.current_revision {
        map.insert("currentRevision".into(), json!({"revisionId": revision}));
    }
    if let Some(latest) = &action.latest {
        let mut run = Map::new();
        put(
            &mut run,
            "actionExecutionId",
            latest.action_execution_id.clone(),
        );
        run.insert("status".into(), latest.status.clone().into());
        put(&mut run, "summary", latest.summary.clone());
        run.insert("lastStatusChange".into(), epoch(latest.last_status_change));
        put(&mut run, "token", latest.token.clone());
        put(
            &mut run,
            "externalExecutionId",
            latest.external_execution_id.clone(),
        );
        put(
            &mut run,
            "externalExecutionUrl",
            latest.external_execution_url.clone(),
        );
        put(
            &mut run,
            "errorDetails",
            latest.error.as_ref().map(error_json),
        );
        map.insert("latestExecution".into(), run.into());
    }
    map.into()
}

fn trigger_json(execution: &ExecutionModel) -> Value {
    json!({"triggerType": execution.trigger_type, "triggerDetail": execution.trigger_detail})
}

pub(crate) fn execution_json(pipeline: &PipelineModel, execution: &ExecutionModel) -> Value {
    let revisions: Vec<Value> = execution
        .revisions
        .iter()
        .map(|revision| {
            let mut map = Map::new();
            map.insert("name".into(), revision.artifact_name.clone().into());
            map.insert("revisionId".into(), revision.revision_id.clone().into());
            put(
                &mut map,
                "revisionSummary",
                revision.revision_summary.clone(),
            );
            put(&mut map, "revisionUrl", revision.revision_url.clone());
            map.insert("created".into(), epoch(revision.created));
            map.into()
        })
        .collect();
    let mut map = Map::new();
    map.insert("pipelineName".into(), pipeline.name.clone().into());
    map.insert("pipelineVersion".into(), pipeline.version.into());
    map.insert("pipelineExecutionId".into(), execution.id.clone().into());
    map.insert("status".into(), execution.status.clone().into());
    put(&mut map, "statusSummary", execution.status_summary.clone());
    map.insert("artifactRevisions".into(), revisions.into());
    map.insert("trigger".into(), trigger_json(execution));
    map.insert("executionMode".into(), "SUPERSEDED".into());
    map.into()
}

pub(crate) fn execution_summary_json(execution: &ExecutionModel) -> Value {
    let revisions: Vec<Value> = execution
        .revisions
        .iter()
        .map(|revision| {
            let mut map = Map::new();
            map.insert("actionName".into(), revision.action_name.clone().into());
            map.insert("revisionId".into(), revision.revision_id.clone().into());
            put(
                &mut map,
                "revisionSummary",
                revision.revision_summary.clone(),
            );
            put(&mut map, "revisionUrl", revision.revision_url.clone());
            map.into()
        })
        .collect();
    let mut map = Map::new();
    map.insert("pipelineExecutionId".into(), execution.id.clone().into());
    map.insert("status".into(), execution.status.clone().into());
    put(&mut map, "statusSummary", execution.status_summary.clone());
    map.insert("startTime".into(), epoch(execution.start_time));
    map.insert("lastUpdateTime".into(), epoch(execution.last_update_time));
    map.insert("sourceRevisions".into(), revisions.into());
    map.insert("trigger".into(), trigger_json(execution));
    map.insert("executionMode".into(), "SUPERSEDED".into());
    map.into()
}

pub(crate) fn action_execution_json(pipeline: &PipelineModel, run: &ActionExecutionModel) -> Value {
    let mut result = Map::new();
    put(
        &mut result,
        "externalExecutionId",
        run.external_execution_id.clone(),
    );
    put(
        &mut result,
        "externalExecutionSummary",
        run.external_execution_summary.clone(),
    );
    put(
        &mut result,
        "externalExecutionUrl",
        run.external_execution_url.clone(),
    );
    put(
        &mut result,
        "errorDetails",
        run.error.as_ref().map(error_json),
    );
    json!({
        "pipelineExecutionId": run.pipeline_execution_id,
        "actionExecutionId": run.action_execution_id,
        "pipelineVersion": pipeline.version,
        "stageName": run.stage_name,
        "actionName": run.action_name,
        "startTime": epoch(run.start_time),
        "lastUpdateTime": epoch(run.last_update_time),
        "status": run.status,
        "input": {
            "actionTypeId": {
                "category": run.category,
                "owner": "AWS",
                "provider": run.provider,
                "version": "1",
            },
            "configuration": run.configuration,
            "resolvedConfiguration": run.configuration,
            "region": crate::TEST_REGION,
            "inputArtifacts": [],
        },
        "output": {
            "outputArtifacts": [],
            "executionResult": result,
            "outputVariables": {},
        },
    })
}
