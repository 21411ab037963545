//! `aws.codepipeline` detail objects.

use super::lenient::Obj;
use super::{
    ActionExecutionChange, ActionState, ExecutionResult, FailedAction, ParseError,
    PipelineExecutionChange, PipelineState, StageExecutionChange, StageState,
};

pub(crate) fn pipeline(
    detail: Obj<'_>,
    additional: Option<Obj<'_>>,
) -> Result<PipelineExecutionChange, ParseError> {
    let state = state(detail, PipelineState::from_wire, PipelineState::ALL)?;
    let trigger = detail.opt_obj("execution-trigger", "detail.execution-trigger")?;
    let (trigger_type, trigger_detail) = match trigger {
        Some(t) => (
            t.opt_string("trigger-type")?,
            t.opt_string("trigger-detail")?,
        ),
        None => (None, None),
    };
    let (failed_stage, failed_actions) = match additional {
        Some(extra) => (extra.opt_string("failedStage")?, failed_actions(extra)?),
        None => (None, Vec::new()),
    };
    Ok(PipelineExecutionChange {
        pipeline: detail.req_str("pipeline")?.to_string(),
        execution_id: detail.req_str("execution-id")?.to_string(),
        state,
        start_time: detail.opt_time("start-time")?,
        trigger_type,
        trigger_detail,
        stop_comments: detail.opt_string("stop-execution-comments")?,
        failed_stage,
        failed_actions,
    })
}

fn failed_actions(extra: Obj<'_>) -> Result<Vec<FailedAction>, ParseError> {
    let mut actions = Vec::new();
    for (index, item) in extra.opt_array("failedActions")?.iter().enumerate() {
        let path = format!("additionalAttributes.failedActions[{index}]");
        let entry = Obj::new(item, &path)?;
        actions.push(FailedAction {
            action: entry.req_str("action")?.to_string(),
            additional_information: entry.opt_string("additionalInformation")?,
        });
    }
    Ok(actions)
}

pub(crate) fn stage(detail: Obj<'_>) -> Result<StageExecutionChange, ParseError> {
    Ok(StageExecutionChange {
        pipeline: detail.req_str("pipeline")?.to_string(),
        execution_id: detail.req_str("execution-id")?.to_string(),
        stage: detail.req_str("stage")?.to_string(),
        state: state(detail, StageState::from_wire, StageState::ALL)?,
        start_time: detail.opt_time("start-time")?,
    })
}

pub(crate) fn action(detail: Obj<'_>) -> Result<ActionExecutionChange, ParseError> {
    let action_type = detail.opt_obj("type", "detail.type")?;
    let (category, provider) = match action_type {
        Some(t) => (t.opt_string("category")?, t.opt_string("provider")?),
        None => (None, None),
    };
    let result = match detail.opt_obj("execution-result", "detail.execution-result")? {
        Some(r) => Some(ExecutionResult {
            external_execution_url: r.opt_string("external-execution-url")?,
            external_execution_summary: r.opt_string("external-execution-summary")?,
            external_execution_id: r.opt_string("external-execution-id")?,
            error_code: r.opt_string("error-code")?,
        }),
        None => None,
    };
    Ok(ActionExecutionChange {
        pipeline: detail.req_str("pipeline")?.to_string(),
        execution_id: detail.req_str("execution-id")?.to_string(),
        stage: detail.req_str("stage")?.to_string(),
        action: detail.req_str("action")?.to_string(),
        action_execution_id: detail.opt_string("action-execution-id")?,
        state: state(detail, ActionState::from_wire, ActionState::ALL)?,
        category,
        provider,
        start_time: detail.opt_time("start-time")?,
        result,
    })
}

fn state<T>(
    detail: Obj<'_>,
    from_wire: fn(&str) -> Option<T>,
    all: &[&str],
) -> Result<T, ParseError> {
    let raw = detail.req_str("state")?;
    from_wire(raw).ok_or_else(|| ParseError::UnknownValue {
        field: "detail.state".into(),
        value: raw.chars().take(64).collect(),
        expected: all.join(", "),
    })
}
