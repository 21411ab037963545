//! Recognises the carrier of a message (EventBridge, SNS envelope, CodeStar, pipeline
//! notification) and dispatches to the per-service parsers.

use super::lenient::{parse_time_str, type_name, Obj, ROOT};
use super::{cloudwatch, codebuild, codepipeline, notification, Carrier, Event, EventKind};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

/// Largest message accepted (SQS's own maximum is 1 MiB); larger bodies are rejected unparsed.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// What a message turned out to be.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
// One value per message, matched and dropped at once: boxing `Event` would only cost an allocation
// and make every `Parsed::Event(event)` pattern in the daemon deref.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// An event the rules understand.
    Event(Event),
    /// A well-formed message the daemon deliberately does nothing with (unknown `detail-type`,
    /// SNS subscription confirmation, ...). Safe to delete from the queue.
    Ignored {
        /// Why it is ignored, in words for the log.
        reason: String,
        /// The `detail-type` (or SNS `Type`) that was not recognised, for metrics.
        kind: String,
    },
}

/// Why a message could not be parsed. Each names the field at fault and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("message is empty; expected an EventBridge event or SNS envelope as JSON")]
    Empty,
    #[error(
        "message is {size} bytes, over the {limit}-byte limit; it is left to the dead-letter queue"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("{field}: not valid JSON ({detail}); expected an EventBridge event or SNS envelope")]
    NotJson { field: String, detail: String },
    #[error("{field}: required field is missing")]
    MissingField { field: String },
    #[error("{field}: must not be empty")]
    EmptyField { field: String },
    #[error("{field}: expected {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{field}: unknown value {value:?}; expected one of {expected}")]
    UnknownValue {
        field: String,
        value: String,
        expected: String,
    },
    #[error(
        "{field}: not a timestamp; expected RFC 3339 (e.g. 2026-01-27T10:02:00Z) or epoch seconds"
    )]
    BadTimestamp { field: String },
    #[error("message is not an EventBridge event (no `detail-type`), SNS envelope (`Type`), CodeStar notification (`detailType`) or pipeline notification (`event`)")]
    UnrecognisedShape,
    #[error("SNS envelopes nested more than {0} deep")]
    NestedTooDeep(usize),
}

impl ParseError {
    /// Every value [`ParseError::reason`] gives (metrics start each at 0).
    pub const REASONS: [&'static str; 10] = [
        "empty",
        "too_large",
        "not_json",
        "missing_field",
        "empty_field",
        "wrong_type",
        "unknown_value",
        "bad_timestamp",
        "unrecognised_shape",
        "nested_too_deep",
    ];

    /// A short, bounded label for metrics (`pipeline_responder_events_rejected_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLarge { .. } => "too_large",
            Self::NotJson { .. } => "not_json",
            Self::MissingField { .. } => "missing_field",
            Self::EmptyField { .. } => "empty_field",
            Self::WrongType { .. } => "wrong_type",
            Self::UnknownValue { .. } => "unknown_value",
            Self::BadTimestamp { .. } => "bad_timestamp",
            Self::UnrecognisedShape => "unrecognised_shape",
            Self::NestedTooDeep(_) => "nested_too_deep",
        }
    }
}

/// Parses one message body as received from SQS or the HTTP ingest endpoint.
pub fn parse_message(body: &str) -> Result<Parsed, ParseError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge {
            size: body.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    if body.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    if let Some(event) = super::fast::parse(body) {
        return Ok(Parsed::Event(event));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| ParseError::NotJson {
        field: ROOT.into(),
        detail: e.to_string(),
    })?;
    parse_value(&value)
}

/// The general parser alone, without the fast path (for tests that compare the two).
#[doc(hidden)]
pub fn parse_message_general(body: &str) -> Result<Parsed, ParseError> {
    let value: Value = serde_json::from_str(body).map_err(|e| ParseError::NotJson {
        field: ROOT.into(),
        detail: e.to_string(),
    })?;
    parse_value(&value)
}

/// Parses an already-decoded JSON message.
pub fn parse_value(value: &Value) -> Result<Parsed, ParseError> {
    parse_carrier(value, None, 0)
}

const MAX_ENVELOPE_DEPTH: usize = 2;

/// What the SNS envelope around a message told us, if there was one.
#[derive(Debug, Clone, Copy)]
struct SnsContext<'a> {
    message_id: &'a str,
    timestamp: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_carrier(
    value: &Value,
    sns: Option<SnsContext<'_>>,
    depth: usize,
) -> Result<Parsed, ParseError> {
    let sns_id = sns.map(|s| s.message_id);
    let obj = Obj::root(value)?;
    if let Some(Value::String(sns_type)) = obj.get("Type") {
        if obj.get("Message").is_some() || obj.get("TopicArn").is_some() {
            return parse_sns(obj, sns_type, depth);
        }
    }
    let carrier = if sns_id.is_some() {
        Carrier::SnsEnvelope
    } else {
        Carrier::EventBridge
    };
    if obj.get("detail-type").is_some() {
        return parse_eventbridge(obj, "detail-type", carrier, sns_id);
    }
    if obj.get("detailType").is_some() {
        return parse_eventbridge(obj, "detailType", Carrier::CodeStarNotification, sns_id);
    }
    if obj.get("event").is_some() {
        let time = match event_time(obj, &["timestamp", "time"]) {
            Err(ParseError::MissingField { .. }) if sns.and_then(|s| s.timestamp).is_some() => {
                sns.and_then(|s| s.timestamp).unwrap_or_default()
            }
            other => other?,
        };
        let parsed = notification::parse(obj)?;
        let id = sns_id
            .map(str::to_string)
            .unwrap_or_else(|| content_id(value));
        return Ok(Parsed::Event(Event {
            id,
            time,
            region: None,
            account: None,
            carrier: Carrier::PipelineNotification,
            kind: EventKind::PipelineNotification(parsed),
        }));
    }
    Err(ParseError::UnrecognisedShape)
}

fn parse_sns(obj: Obj<'_>, sns_type: &str, depth: usize) -> Result<Parsed, ParseError> {
    match sns_type {
        "Notification" => {}
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            return Ok(Parsed::Ignored {
                reason: format!(
                "SNS {sns_type}: confirm the subscription with its SubscribeURL; nothing to handle"
            ),
                kind: sns_type.to_string(),
            })
        }
        other => {
            return Err(ParseError::UnknownValue {
                field: "Type".into(),
                value: other.chars().take(64).collect(),
                expected: "Notification, SubscriptionConfirmation, UnsubscribeConfirmation".into(),
            })
        }
    }
    if depth >= MAX_ENVELOPE_DEPTH {
        return Err(ParseError::NestedTooDeep(MAX_ENVELOPE_DEPTH));
    }
    let message_id = obj.req_str("MessageId")?;
    let message = obj.req_str("Message")?;
    let inner: Value = serde_json::from_str(message).map_err(|e| ParseError::NotJson {
        field: "Message".into(),
        detail: e.to_string(),
    })?;
    let timestamp = obj.opt_time("Timestamp")?;
    parse_carrier(
        &inner,
        Some(SnsContext {
            message_id,
            timestamp,
        }),
        depth + 1,
    )
}

fn parse_eventbridge(
    obj: Obj<'_>,
    detail_type_key: &str,
    carrier: Carrier,
    sns_id: Option<&str>,
) -> Result<Parsed, ParseError> {
    let detail_type = obj.req_str(detail_type_key)?;
    let kind = match detail_type {
        "CodePipeline Pipeline Execution State Change" => {
            let detail = Obj::new(required(obj, "detail")?, "detail")?;
            let extra = obj.opt_obj("additionalAttributes", "additionalAttributes")?;
            EventKind::PipelineExecution(codepipeline::pipeline(detail, extra)?)
        }
        "CodePipeline Stage Execution State Change" => {
            let detail = Obj::new(required(obj, "detail")?, "detail")?;
            EventKind::StageExecution(codepipeline::stage(detail)?)
        }
        "CodePipeline Action Execution State Change" => {
            let detail = Obj::new(required(obj, "detail")?, "detail")?;
            EventKind::ActionExecution(codepipeline::action(detail)?)
        }
        "CloudWatch Alarm State Change" => {
            let detail = Obj::new(required(obj, "detail")?, "detail")?;
            EventKind::AlarmStateChange(cloudwatch::alarm(detail)?)
        }
        "CodeBuild Build State Change" => {
            let detail = Obj::new(required(obj, "detail")?, "detail")?;
            EventKind::BuildStateChange(codebuild::build_state(detail)?)
        }
        "CodeBuild Build Phase Change" => {
            let detail = Obj::new(required(obj, "detail")?, "detail")?;
            EventKind::BuildPhaseChange(codebuild::build_phase(detail)?)
        }
        other => {
            // Bounded: the value is logged and used as a metrics label.
            let kind: String = other.chars().take(64).collect();
            return Ok(Parsed::Ignored {
                reason: format!("detail-type {kind:?} is not one the daemon handles"),
                kind,
            });
        }
    };
    let time = event_time(obj, &["time"])?;
    let id = match obj.opt_string("id")? {
        Some(id) if !id.trim().is_empty() => id,
        _ => match sns_id {
            Some(id) => id.to_string(),
            None => content_id(&Value::Object(obj.map.clone())),
        },
    };
    Ok(Parsed::Event(Event {
        id,
        time,
        region: obj.opt_string("region")?,
        account: obj.opt_string("account")?,
        carrier,
        kind,
    }))
}

fn required<'a>(obj: Obj<'a>, key: &str) -> Result<&'a Value, ParseError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(ParseError::MissingField {
            field: key.to_string(),
        }),
        Some(v) => Ok(v),
    }
}

fn event_time(obj: Obj<'_>, keys: &[&str]) -> Result<chrono::DateTime<chrono::Utc>, ParseError> {
    for key in keys {
        match obj.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => {
                return parse_time_str(s).ok_or_else(|| ParseError::BadTimestamp {
                    field: (*key).to_string(),
                })
            }
            Some(other @ Value::Number(_)) => {
                return super::lenient::parse_time(other).ok_or_else(|| ParseError::BadTimestamp {
                    field: (*key).to_string(),
                })
            }
            Some(other) => {
                return Err(ParseError::WrongType {
                    field: (*key).to_string(),
                    expected: "a timestamp string",
                    found: type_name(other),
                })
            }
        }
    }
    Err(ParseError::MissingField {
        field: keys[0].to_string(),
    })
}

/// A stable id for carriers that have none: FNV-1a over the canonical JSON text.
fn content_id(value: &Value) -> String {
    let text = value.to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("content-{hash:016x}")
}
