//! Reading and writing the CBOR that Smithy RPC v2 carries, on top of `ciborium::Value`.
//!
//! What the SDK expects was read from its generated code: aws-sdk-cloudwatch 1.140.0
//! `src/protocol_serde/shape_metric_alarm.rs` (members by name, any map length) and
//! aws-smithy-cbor 0.64.1 `src/decode.rs` (`Decoder::timestamp`: tag 1 around an integer or a
//! float of epoch seconds, truncated to milliseconds; strings definite or indefinite).

use chrono::{DateTime, Utc};
use ciborium::Value;

/// Tag 1: epoch-based date/time (RFC 8949 §3.4.2), Smithy's timestamp encoding.
const EPOCH_TAG: u64 = 1;

/// A timestamp as the service sends it: tag 1 around fractional epoch seconds.
pub(crate) fn timestamp(at: DateTime<Utc>) -> Value {
    let seconds = at.timestamp_millis() as f64 / 1000.0;
    Value::Tag(EPOCH_TAG, Box::new(Value::Float(seconds)))
}

pub(crate) fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

pub(crate) fn int(value: i64) -> Value {
    Value::Integer(value.into())
}

pub(crate) fn texts(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::Text).collect())
}

/// A CBOR map with text keys, built from `(key, value)` pairs; `None` values are left out, as
/// the service omits absent members.
pub(crate) fn map(entries: Vec<(&str, Option<Value>)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (text(key), v)))
            .collect(),
    )
}

/// Read access to a decoded request structure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Input<'a>(pub(crate) &'a [(Value, Value)]);

impl<'a> Input<'a> {
    pub(crate) fn get(&self, member: &str) -> Option<&'a Value> {
        self.0
            .iter()
            .find(|(key, _)| key.as_text() == Some(member))
            .map(|(_, value)| value)
    }

    pub(crate) fn str(&self, member: &str) -> Option<&'a str> {
        self.get(member).and_then(Value::as_text)
    }

    pub(crate) fn int(&self, member: &str) -> Option<i64> {
        self.get(member)
            .and_then(Value::as_integer)
            .and_then(|i| i64::try_from(i).ok())
    }

    pub(crate) fn float(&self, member: &str) -> Option<f64> {
        match self.get(member)? {
            Value::Float(f) => Some(*f),
            Value::Integer(i) => i64::try_from(*i).ok().map(|i| i as f64),
            _ => None,
        }
    }

    pub(crate) fn bool(&self, member: &str) -> Option<bool> {
        self.get(member).and_then(Value::as_bool)
    }

    pub(crate) fn strings(&self, member: &str) -> Option<Vec<String>> {
        let items = self.get(member)?.as_array()?;
        Some(
            items
                .iter()
                .filter_map(Value::as_text)
                .map(str::to_owned)
                .collect(),
        )
    }

    /// A list of structures, e.g. `Dimensions`.
    pub(crate) fn structs(&self, member: &str) -> Vec<Input<'a>> {
        self.get(member)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_map)
                    .map(|m| Input(m.as_slice()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The same data as JSON, so tests assert on CloudWatch requests like on the others.
/// Tags are unwrapped (a timestamp becomes its epoch seconds); bytes become an array.
pub(crate) fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Integer(i) => i64::try_from(*i).map_or(Json::Null, Json::from),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::String(s.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Bytes(bytes) => Json::from(bytes.clone()),
        Value::Tag(_, inner) => to_json(inner),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_text().map_or_else(|| format!("{k:?}"), str::to_owned),
                        to_json(v),
                    )
                })
                .collect(),
        ),
        _ => Json::Null,
    }
}

pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("writing CBOR into a Vec cannot fail");
    bytes
}
