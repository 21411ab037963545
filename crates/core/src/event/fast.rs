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
use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::marker::PhantomData;

type Text<'a> = Cow<'a, str>;

/// A nested object, read in one pass. Serde's derived structs also accept a JSON array (fields
/// by position), which the general parser rejects; this wrapper accepts objects only.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapOnly<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for MapOnly<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(MapOnly(PhantomData)).map(Obj)
    }
}

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
    detail: Option<Obj<Detail<'a>>>,
    /// Present on SNS envelopes: not for this path.
    #[serde(rename = "Type")]
    sns_type: Option<IgnoredAny>,
    /// CodeStar variant: not for this path.
    #[serde(rename = "detailType")]
    codestar: Option<IgnoredAny>,
    /// CodeStar's extra attributes (the general parser reads and checks them).
    #[serde(rename = "additionalAttributes")]
    additional: Option<IgnoredAny>,
}

/// Every `detail` field the handled event types use, read in one pass whatever the type.
#[derive(Deserialize)]
struct Detail<'a> {
    // CodePipeline
    #[serde(borrow)]
    pipeline: Option<Text<'a>>,
    #[serde(rename = "execution-id", borrow)]
    execution_id: Option<Text<'a>>,
    #[serde(borrow)]
    stage: Option<Text<'a>>,
    #[serde(borrow)]
    action: Option<Text<'a>>,
    #[serde(rename = "action-execution-id", borrow)]
    action_execution_id: Option<Text<'a>>,
    /// A string for CodePipeline, an object for CloudWatch alarms.
    #[serde(borrow)]
    state: Option<&'a RawValue>,
    #[serde(rename = "start-time", borrow)]
    start_time: Option<Text<'a>>,
    #[serde(rename = "execution-trigger", borrow)]
    trigger: Option<Obj<Trigger<'a>>>,
    #[serde(rename = "stop-execution-comments", borrow)]
    stop_comments: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    action_type: Option<Obj<ActionType<'a>>>,
    #[serde(rename = "execution-result", borrow)]
    result: Option<Obj<ResultDetail<'a>>>,
    // CloudWatch
    #[serde(rename = "alarmName", borrow)]
    alarm_name: Option<Text<'a>>,
    #[serde(rename = "previousState", borrow)]
    previous: Option<Obj<PreviousState<'a>>>,
    // CodeBuild
    #[serde(rename = "build-status", borrow)]
    build_status: Option<Text<'a>>,
    #[serde(rename = "completed-phase", borrow)]
    completed_phase: Option<Text<'a>>,
    #[serde(rename = "completed-phase-status", borrow)]
    completed_phase_status: Option<Text<'a>>,
    #[serde(rename = "completed-phase-duration-seconds")]
    completed_phase_duration: Option<f64>,
    #[serde(rename = "project-name", borrow)]
    project: Option<Text<'a>>,
    #[serde(rename = "build-id", borrow)]
    build_id: Option<Text<'a>>,
    #[serde(rename = "additional-information", borrow)]
    info: Option<Obj<BuildInfo<'a>>>,
}

#[derive(Deserialize)]
struct Trigger<'a> {
    #[serde(rename = "trigger-type", borrow)]
    trigger_type: Option<Text<'a>>,
    #[serde(rename = "trigger-detail", borrow)]
    trigger_detail: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ActionType<'a> {
    #[serde(borrow)]
    category: Option<Text<'a>>,
    #[serde(borrow)]
    provider: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ResultDetail<'a> {
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
struct BuildInfo<'a> {
    #[serde(borrow)]
    logs: Option<Obj<Logs<'a>>>,
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

/// Parses `body` if it is a plain, well-formed EventBridge event of a handled type.
pub(crate) fn parse(body: &str) -> Option<Event> {
    let Obj(envelope): Obj<Envelope<'_>> = serde_json::from_str(body).ok()?;
    if envelope.sns_type.is_some() || envelope.codestar.is_some() || envelope.additional.is_some() {
        return None;
    }
    let Obj(d) = envelope.detail?;
    let kind = match envelope.detail_type?.as_ref() {
        "CodePipeline Pipeline Execution State Change" => pipeline(d)?,
        "CodePipeline Stage Execution State Change" => stage(d)?,
        "CodePipeline Action Execution State Change" => action(d)?,
        "CloudWatch Alarm State Change" => alarm(d)?,
        "CodeBuild Build State Change" => build_state(d)?,
        "CodeBuild Build Phase Change" => build_phase(d)?,
        _ => return None,
    };
    let event = Event {
        id: required(envelope.id)?,
        time: parse_time_str(&envelope.time?)?,
        region: owned(envelope.region),
        account: owned(envelope.account),
        carrier: Carrier::EventBridge,
        kind,
    };
    strict_json(body).then_some(event)
}

/// What serde_json's tree parser rejects but its skipping of ignored members lets through: lone
/// UTF-16 surrogate escapes, numbers beyond `f64`, nesting 128 deep. Checked in one pass over the
/// bytes, only once the fast path has an answer, so that a message is rejected (`not_json`) the
/// same way whichever path reads it.
fn strict_json(body: &str) -> bool {
    let b = body.as_bytes();
    let hex4 = |at: usize| -> Option<u32> {
        let digits = b.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let (mut i, mut depth) = (0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                loop {
                    // Skip to the next quote or escape (most of an event's bytes are in strings).
                    let Some(at) = memchr::memchr2(b'"', b'\\', &b[i..]) else {
                        return false;
                    };
                    i += at;
                    match b.get(i) {
                        None => return false,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if b.get(i + 1) == Some(&b'u') => {
                            let Some(unit) = hex4(i + 2) else {
                                return false;
                            };
                            i += 6;
                            if (0xDC00..0xE000).contains(&unit) {
                                return false;
                            }
                            if (0xD800..0xDC00).contains(&unit) {
                                let low = (b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u'))
                                    .then(|| hex4(i + 2))
                                    .flatten();
                                match low {
                                    Some(low) if (0xDC00..0xE000).contains(&low) => i += 6,
                                    _ => return false,
                                }
                            }
                        }
                        Some(b'\\') => i += 2,
                        Some(_) => i += 1,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth >= 128 {
                    return false;
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let number = &body[start..i];
                // Integers up to 19 digits fit u64/i64; anything else is read as f64.
                if (number.len() > 19 || number.contains(['.', 'e', 'E']))
                    && !number.parse::<f64>().is_ok_and(f64::is_finite)
                {
                    return false;
                }
            }
            _ => i += 1,
        }
    }
    true
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

/// The CodePipeline `state` string.
fn state_text<'a>(raw: Option<&'a RawValue>) -> Option<Text<'a>> {
    serde_json::from_str(raw?.get()).ok()
}

fn pipeline(d: Detail<'_>) -> Option<EventKind> {
    let (trigger_type, trigger_detail) = match d.trigger {
        Some(Obj(t)) => (owned(t.trigger_type), owned(t.trigger_detail)),
        None => (None, None),
    };
    Some(EventKind::PipelineExecution(PipelineExecutionChange {
        state: PipelineState::from_wire(&state_text(d.state)?)?,
        pipeline: required(d.pipeline)?,
        execution_id: required(d.execution_id)?,
        start_time: time(d.start_time)?,
        trigger_type,
        trigger_detail,
        stop_comments: owned(d.stop_comments),
        failed_stage: None,
        failed_actions: Vec::new(),
    }))
}

fn stage(d: Detail<'_>) -> Option<EventKind> {
    Some(EventKind::StageExecution(StageExecutionChange {
        state: StageState::from_wire(&state_text(d.state)?)?,
        pipeline: required(d.pipeline)?,
        execution_id: required(d.execution_id)?,
        stage: required(d.stage)?,
        start_time: time(d.start_time)?,
    }))
}

fn action(d: Detail<'_>) -> Option<EventKind> {
    let (category, provider) = match d.action_type {
        Some(Obj(t)) => (owned(t.category), owned(t.provider)),
        None => (None, None),
    };
    Some(EventKind::ActionExecution(ActionExecutionChange {
        state: ActionState::from_wire(&state_text(d.state)?)?,
        pipeline: required(d.pipeline)?,
        execution_id: required(d.execution_id)?,
        stage: required(d.stage)?,
        action: required(d.action)?,
        action_execution_id: owned(d.action_execution_id),
        category,
        provider,
        start_time: time(d.start_time)?,
        result: d.result.map(|Obj(r)| ExecutionResult {
            external_execution_url: owned(r.url),
            external_execution_summary: owned(r.summary),
            external_execution_id: owned(r.external_id),
            error_code: owned(r.error_code),
        }),
    }))
}

fn alarm(d: Detail<'_>) -> Option<EventKind> {
    let Obj(state): Obj<AlarmStateDetail<'_>> = serde_json::from_str(d.state?.get()).ok()?;
    let previous_state = match d.previous {
        Some(Obj(PreviousState { value: Some(v) })) => Some(AlarmState::from_wire(&v)?),
        _ => None,
    };
    Some(EventKind::AlarmStateChange(AlarmStateChange {
        alarm_name: required(d.alarm_name)?,
        state: AlarmState::from_wire(&state.value)?,
        previous_state,
        reason: owned(state.reason),
        reason_data: state
            .reason_data
            .and_then(|r| serde_json::from_str(&r).ok()),
        state_timestamp: time(state.timestamp)?,
    }))
}

/// CodeBuild's log location and start time from `additional-information`.
fn build_info(info: Option<Obj<BuildInfo<'_>>>) -> (Option<BuildLogs>, Option<String>) {
    let Some(Obj(info)) = info else {
        return (None, None);
    };
    let logs = info.logs.map(|Obj(l)| BuildLogs {
        group_name: owned(l.group_name),
        stream_name: owned(l.stream_name),
        deep_link: owned(l.deep_link),
    });
    (logs, owned(info.build_start_time))
}

fn build_state(d: Detail<'_>) -> Option<EventKind> {
    let status = BuildStatus::from_wire(&d.build_status?)?;
    let (logs, build_start_time) = build_info(d.info);
    Some(EventKind::BuildStateChange(BuildStateChange {
        project: required(d.project)?,
        build_id: required(d.build_id)?,
        status,
        logs,
        build_start_time,
    }))
}

fn build_phase(d: Detail<'_>) -> Option<EventKind> {
    let (logs, _) = build_info(d.info);
    Some(EventKind::BuildPhaseChange(BuildPhaseChange {
        completed_phase: required(d.completed_phase)?,
        completed_phase_status: owned(d.completed_phase_status),
        completed_phase_duration_secs: match d.completed_phase_duration {
            None => None,
            Some(v) if v.is_finite() => Some(v).filter(|v| *v >= 0.0).map(|v| v as u64),
            Some(_) => return None,
        },
        project: required(d.project)?,
        build_id: required(d.build_id)?,
        logs,
    }))
}
