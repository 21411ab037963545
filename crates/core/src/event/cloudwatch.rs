//! `aws.cloudwatch` alarm state changes.

use super::lenient::Obj;
use super::{AlarmState, AlarmStateChange, ParseError};
use serde_json::Value;

pub(crate) fn alarm(detail: Obj<'_>) -> Result<AlarmStateChange, ParseError> {
    let state =
        detail
            .opt_obj("state", "detail.state")?
            .ok_or_else(|| ParseError::MissingField {
                field: "detail.state".into(),
            })?;
    let previous = detail.opt_obj("previousState", "detail.previousState")?;
    let previous_state = match previous {
        Some(p) => match p.opt_string("value")? {
            Some(v) => Some(alarm_state(&v, "detail.previousState.value")?),
            None => None,
        },
        None => None,
    };
    // reasonData is a JSON document inside a string; keep it if it parses, drop it if not
    // (it is informational and AWS does not promise its shape).
    let reason_data = match state.get("reasonData") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok(),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        _ => None,
    };
    Ok(AlarmStateChange {
        alarm_name: detail.req_str("alarmName")?.to_string(),
        state: alarm_state(state.req_str("value")?, "detail.state.value")?,
        previous_state,
        reason: state.opt_string("reason")?,
        reason_data,
        state_timestamp: state.opt_time("timestamp")?,
    })
}

fn alarm_state(raw: &str, field: &str) -> Result<AlarmState, ParseError> {
    AlarmState::from_wire(raw).ok_or_else(|| ParseError::UnknownValue {
        field: field.into(),
        value: raw.chars().take(64).collect(),
        expected: AlarmState::ALL.join(", "),
    })
}
