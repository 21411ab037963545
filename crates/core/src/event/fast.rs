//! Fast path for the common case: a well-formed EventBridge event of a handled type, parsed
//! straight into typed structs that borrow from the input and skip what the rules do not use
//! (e.g. CodeBuild's phase list), instead of building a full JSON tree.
//!
//! It returns `None` whenever anything is unusual (another carrier, a missing or oddly typed
//! field, an unknown state); the general parser then handles the message and produces the precise
//! error. A property test checks that whenever this path answers, it answers exactly what the
//! general parser does.

use super::lenient::parse_time_str;
use super::*;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

type Text<'a> = Cow<'a, str>;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<Text<'a>>,
    #[serde(borrow)]
    time: Option<Text<'a>>,
    #[serde(borrow)]
    region: Option<Text<'a>>,
    #[serde(borrow)]
    account: Option<Text<'a>>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
    /// Present on SNS envelopes: not for this path.
    #[serde(rename = "Type")]
    sns_type: Option<serde::de::IgnoredAny>,
    /// CodeStar variant: not for this path.
    #[serde(rename = "detailType")]
    codestar: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct PipelineDetail<'a> {
    #[serde(borrow)]
    pipeline: Text<'a>,
    #[serde(rename = "execution-id", borrow)]
    execution_id: Text<'a>,
    #[serde(borrow)]
    state: Text<'a>,
    #[serde(rename = "start-time", borrow)]
    start_time: Option<Text<'a>>,
    #[serde(rename = "execution-trigger", borrow, deserialize_with = "object")]
    trigger: Option<Trigger<'a>>,
    #[serde(rename = "stop-execution-comments", borrow)]
    stop_comments: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Trigger<'a> {
    #[serde(rename = "trigger-type", borrow)]
    trigger_type: Option<Text<'a>>,
    #[serde(rename = "trigger-detail", borrow)]
    trigger_detail: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct StageDetail<'a> {
    #[serde(borrow)]
    pipeline: Text<'a>,
    #[serde(rename = "execution-id", borrow)]
    execution_id: Text<'a>,
    #[serde(borrow)]
    stage: Text<'a>,
    #[serde(borrow)]
    state: Text<'a>,
    #[serde(rename = "start-time", borrow)]
    start_time: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ActionDetail<'a> {
    #[serde(borrow)]
    pipeline: Text<'a>,
    #[serde(rename = "execution-id", borrow)]
    execution_id: Text<'a>,
    #[serde(borrow)]
    stage: Text<'a>,
    #[serde(borrow)]
    action: Text<'a>,
    #[serde(rename = "action-execution-id", borrow)]
    action_execution_id: Option<Text<'a>>,
    #[serde(borrow)]
    state: Text<'a>,
    #[serde(rename = "type", borrow, deserialize_with = "object")]
    action_type: Option<ActionType<'a>>,
    #[serde(rename = "start-time", borrow)]
    start_time: Option<Text<'a>>,
    #[serde(rename = "execution-result", borrow, deserialize_with = "object")]
    result: Option<Result_<'a>>,
}

#[derive(Deserialize)]
struct ActionType<'a> {
    #[serde(borrow)]
    category: Option<Text<'a>>,
    #[serde(borrow)]
    provider: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Result_<'a> {
    #[serde(rename = "external-execution-url", borrow)]
    url: Option<Text<'a>>,
    #[serde(rename = "external-execution-summary", borrow)]
    summary: Option<Text<'a>>,
    #[serde(rename = "external-execution-id", borrow)]
    external_id: Option<Text<'a>>,
    #[serde(rename = "error-code", borrow)]
    error_code: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct AlarmDetail<'a> {
    #[serde(rename = "alarmName", borrow)]
    alarm_name: Text<'a>,
    #[serde(borrow, deserialize_with = "required_object")]
    state: AlarmStateDetail<'a>,
    #[serde(rename = "previousState", borrow, deserialize_with = "object")]
    previous: Option<PreviousState<'a>>,
}

#[derive(Deserialize)]
struct AlarmStateDetail<'a> {
    #[serde(borrow)]
    value: Text<'a>,
    #[serde(borrow)]
    reason: Option<Text<'a>>,
    #[serde(rename = "reasonData", borrow)]
    reason_data: Option<Text<'a>>,
    #[serde(borrow)]
    timestamp: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct PreviousState<'a> {
    #[serde(borrow)]
    value: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct BuildDetail<'a> {
    #[serde(rename = "build-status", borrow)]
    status: Option<Text<'a>>,
    #[serde(rename = "completed-phase", borrow)]
    completed_phase: Option<Text<'a>>,
    #[serde(rename = "completed-phase-status", borrow)]
    completed_phase_status: Option<Text<'a>>,
    #[serde(rename = "completed-phase-duration-seconds")]
    completed_phase_duration: Option<f64>,
    #[serde(rename = "project-name", borrow)]
    project: Text<'a>,
    #[serde(rename = "build-id", borrow)]
    build_id: Text<'a>,
    #[serde(rename = "additional-information", borrow, deserialize_with = "object")]
    info: Option<BuildInfo<'a>>,
}

#[derive(Deserialize)]
struct BuildInfo<'a> {
    #[serde(borrow, deserialize_with = "object")]
    logs: Option<Logs<'a>>,
    #[serde(rename = "build-start-time", borrow)]
    build_start_time: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Logs<'a> {
    #[serde(rename = "group-name", borrow)]
    group_name: Option<Text<'a>>,
    #[serde(rename = "stream-name", borrow)]
    stream_name: Option<Text<'a>>,
    #[serde(rename = "deep-link", borrow)]
    deep_link: Option<Text<'a>>,
}

/// An optional nested object. Serde's derived structs also accept a JSON array (fields by
/// position), which the general parser rejects; only objects may take this path.
fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<&'de RawValue>::deserialize(deserializer)? {
        None => Ok(None),
        Some(raw) => from_object(raw.get()).map(Some),
    }
}

/// A required nested object (see [`object`]).
fn required_object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    from_object(<&'de RawValue>::deserialize(deserializer)?.get())
}

fn from_object<'de, T: Deserialize<'de>, E: serde::de::Error>(text: &'de str) -> Result<T, E> {
    if !is_object(text) {
        return Err(E::custom("not an object"));
    }
    serde_json::from_str(text).map_err(E::custom)
}

fn is_object(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Parses `body` if it is a plain, well-formed EventBridge event of a handled type.
pub(crate) fn parse(body: &str) -> Option<Event> {
    if !is_object(body) {
        return None;
    }
    let envelope: Envelope<'_> = serde_json::from_str(body).ok()?;
    if envelope.sns_type.is_some() || envelope.codestar.is_some() {
        return None;
    }
    let detail = envelope.detail?.get();
    if !is_object(detail) {
        return None;
    }
    let kind = match envelope.detail_type?.as_ref() {
        "CodePipeline Pipeline Execution State Change" => pipeline(detail)?,
        "CodePipeline Stage Execution State Change" => stage(detail)?,
        "CodePipeline Action Execution State Change" => action(detail)?,
        "CloudWatch Alarm State Change" => alarm(detail)?,
        "CodeBuild Build State Change" => build_state(detail)?,
        "CodeBuild Build Phase Change" => build_phase(detail)?,
        _ => return None,
    };
    let id = required(envelope.id)?;
    Some(Event {
        id,
        time: parse_time_str(&envelope.time?)?,
        region: envelope.region.map(Cow::into_owned),
        account: envelope.account.map(Cow::into_owned),
        carrier: Carrier::EventBridge,
        kind,
    })
}

/// A required string: present and not blank (the general parser reports blanks).
fn required(text: Option<Text<'_>>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty()).map(Cow::into_owned)
}

fn owned(text: Option<Text<'_>>) -> Option<String> {
    text.map(Cow::into_owned)
}

/// An optional timestamp that must parse when present.
fn time(text: Option<Text<'_>>) -> Option<Option<chrono::DateTime<chrono::Utc>>> {
    match text {
        None => Some(None),
        Some(t) => parse_time_str(&t).map(Some),
    }
}

fn pipeline(detail: &str) -> Option<EventKind> {
    let d: PipelineDetail<'_> = serde_json::from_str(detail).ok()?;
    let (trigger_type, trigger_detail) = match d.trigger {
        Some(t) => (owned(t.trigger_type), owned(t.trigger_detail)),
        None => (None, None),
    };
    Some(EventKind::PipelineExecution(PipelineExecutionChange {
        state: PipelineState::from_wire(&d.state)?,
        pipeline: required(Some(d.pipeline))?,
        execution_id: required(Some(d.execution_id))?,
        start_time: time(d.start_time)?,
        trigger_type,
        trigger_detail,
        stop_comments: owned(d.stop_comments),
        failed_stage: None,
        failed_actions: Vec::new(),
    }))
}

fn stage(detail: &str) -> Option<EventKind> {
    let d: StageDetail<'_> = serde_json::from_str(detail).ok()?;
    Some(EventKind::StageExecution(StageExecutionChange {
        state: StageState::from_wire(&d.state)?,
        pipeline: required(Some(d.pipeline))?,
        execution_id: required(Some(d.execution_id))?,
        stage: required(Some(d.stage))?,
        start_time: time(d.start_time)?,
    }))
}

fn action(detail: &str) -> Option<EventKind> {
    let d: ActionDetail<'_> = serde_json::from_str(detail).ok()?;
    let (category, provider) = match d.action_type {
        Some(t) => (owned(t.category), owned(t.provider)),
        None => (None, None),
    };
    Some(EventKind::ActionExecution(ActionExecutionChange {
        state: ActionState::from_wire(&d.state)?,
        pipeline: required(Some(d.pipeline))?,
        execution_id: required(Some(d.execution_id))?,
        stage: required(Some(d.stage))?,
        action: required(Some(d.action))?,
        action_execution_id: owned(d.action_execution_id),
        category,
        provider,
        start_time: time(d.start_time)?,
        result: d.result.map(|r| ExecutionResult {
            external_execution_url: owned(r.url),
            external_execution_summary: owned(r.summary),
            external_execution_id: owned(r.external_id),
            error_code: owned(r.error_code),
        }),
    }))
}

fn alarm(detail: &str) -> Option<EventKind> {
    let d: AlarmDetail<'_> = serde_json::from_str(detail).ok()?;
    let previous_state = match d.previous {
        Some(PreviousState { value: Some(v) }) => Some(AlarmState::from_wire(&v)?),
        _ => None,
    };
    Some(EventKind::AlarmStateChange(AlarmStateChange {
        alarm_name: required(Some(d.alarm_name))?,
        state: AlarmState::from_wire(&d.state.value)?,
        previous_state,
        reason: owned(d.state.reason),
        reason_data: d
            .state
            .reason_data
            .and_then(|r| serde_json::from_str(&r).ok()),
        state_timestamp: time(d.state.timestamp)?,
    }))
}

fn logs(info: &Option<BuildInfo<'_>>) -> Option<BuildLogs> {
    let logs = info.as_ref()?.logs.as_ref()?;
    Some(BuildLogs {
        group_name: logs.group_name.as_deref().map(String::from),
        stream_name: logs.stream_name.as_deref().map(String::from),
        deep_link: logs.deep_link.as_deref().map(String::from),
    })
}

fn build_state(detail: &str) -> Option<EventKind> {
    let d: BuildDetail<'_> = serde_json::from_str(detail).ok()?;
    let raw = d.status?;
    let status = BuildStatus::from_wire(&raw)?;
    Some(EventKind::BuildStateChange(BuildStateChange {
        logs: logs(&d.info),
        build_start_time: d.info.and_then(|i| owned(i.build_start_time)),
        project: required(Some(d.project))?,
        build_id: required(Some(d.build_id))?,
        status,
    }))
}

fn build_phase(detail: &str) -> Option<EventKind> {
    let d: BuildDetail<'_> = serde_json::from_str(detail).ok()?;
    Some(EventKind::BuildPhaseChange(BuildPhaseChange {
        logs: logs(&d.info),
        completed_phase: required(d.completed_phase)?,
        completed_phase_status: owned(d.completed_phase_status),
        completed_phase_duration_secs: match d.completed_phase_duration {
            None => None,
            Some(v) if v.is_finite() => Some(v).filter(|v| *v >= 0.0).map(|v| v as u64),
            Some(_) => return None,
        },
        project: required(Some(d.project))?,
        build_id: required(Some(d.build_id))?,
    }))
}
