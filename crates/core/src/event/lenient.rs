//! Field accessors that are lenient where AWS is inconsistent (numbers printed as strings, `+0000`
//! offsets) and strict elsewhere: a required field that is missing or of the wrong type is a
//! [`ParseError`] naming its full path.

use super::ParseError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// How errors name the message itself (when it is not an object, or not JSON at all).
pub(crate) const ROOT: &str = "(message)";

/// A JSON object together with the path it was found at, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) path: &'a str,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(value: &'a Value, path: &'a str) -> Result<Self, ParseError> {
        match value {
            Value::Object(map) => Ok(Self { map, path }),
            other => Err(ParseError::WrongType {
                field: path.to_string(),
                expected: "an object",
                found: type_name(other),
            }),
        }
    }

    /// The whole message: a non-object is reported as `(message)`, but its fields are named
    /// without a prefix (`MessageId`, `detail-type`), like the nested paths (`detail.pipeline`).
    pub(crate) fn root(value: &'a Value) -> Result<Self, ParseError> {
        Ok(Self {
            map: Self::new(value, ROOT)?.map,
            path: "",
        })
    }

    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    /// A required, non-empty string.
    pub(crate) fn req_str(&self, key: &str) -> Result<&'a str, ParseError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Err(ParseError::MissingField {
                field: self.field_path(key),
            }),
            Some(Value::String(s)) if s.trim().is_empty() => Err(ParseError::EmptyField {
                field: self.field_path(key),
            }),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(ParseError::WrongType {
                field: self.field_path(key),
                expected: "a string",
                found: type_name(other),
            }),
        }
    }

    /// An optional string; numbers and booleans are accepted and printed (AWS is not consistent).
    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>, ParseError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(ParseError::WrongType {
                field: self.field_path(key),
                expected: "a string",
                found: type_name(other),
            }),
        }
    }

    /// An optional number that may be sent as a JSON number or a numeric string.
    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>, ParseError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => {
                let trimmed = s.trim().trim_end_matches('%');
                trimmed
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Some)
                    .ok_or_else(|| ParseError::WrongType {
                        field: self.field_path(key),
                        expected: "a number",
                        found: "a non-numeric string",
                    })
            }
            Some(other) => Err(ParseError::WrongType {
                field: self.field_path(key),
                expected: "a number",
                found: type_name(other),
            }),
        }
    }

    /// An optional timestamp: RFC 3339, AWS's `+0000` offset form, or epoch seconds/millis.
    pub(crate) fn opt_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ParseError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => parse_time(value)
                .map(Some)
                .ok_or_else(|| ParseError::BadTimestamp {
                    field: self.field_path(key),
                }),
        }
    }

    /// An optional nested object.
    pub(crate) fn opt_obj(&self, key: &str, path: &'a str) -> Result<Option<Obj<'a>>, ParseError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => Obj::new(value, path).map(Some),
        }
    }

    /// An optional array (absent is empty).
    pub(crate) fn opt_array(&self, key: &str) -> Result<&'a [Value], ParseError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(ParseError::WrongType {
                field: self.field_path(key),
                expected: "an array",
                found: type_name(other),
            }),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }
}

/// Parses every timestamp spelling AWS uses in these events.
pub(crate) fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => parse_time_str(s),
        Value::Number(n) => {
            let secs = n.as_f64()?;
            if !secs.is_finite() || secs < 0.0 {
                return None;
            }
            // Epoch milliseconds are larger than any plausible epoch seconds.
            let millis = if secs > 1e11 { secs } else { secs * 1000.0 };
            if millis > 8.2e15 {
                return None;
            }
            DateTime::from_timestamp_millis(millis as i64)
        }
        _ => None,
    }
}

pub(crate) fn parse_time_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // CloudWatch: 2019-10-02T17:04:40.989+0000
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
