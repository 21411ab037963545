//! The CloudWatch alarm operations the daemon and its tests call, over the test's model.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ciborium::Value;

use super::cbor::{self, Input};
use crate::faults::Faults;

/// DescribeAlarms page size: default 50, at most 100.
const DEFAULT_MAX_RECORDS: usize = 50;
const MAX_MAX_RECORDS: i64 = 100;
const STATE_VALUES: [&str; 3] = ["OK", "ALARM", "INSUFFICIENT_DATA"];

/// A metric alarm as DescribeAlarms reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmModel {
    pub name: String,
    pub description: Option<String>,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub period: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: Option<String>,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state_value: String,
    pub state_reason: String,
    /// JSON text, as CloudWatch keeps it.
    pub state_reason_data: Option<String>,
    pub state_updated: DateTime<Utc>,
    pub configuration_updated: DateTime<Utc>,
}

impl AlarmModel {
    /// A new alarm on `namespace`/`metric_name` in `INSUFFICIENT_DATA`, like PutMetricAlarm
    /// creates one, with the runbook's shape (Sum over 5 minutes, >= 1).
    pub fn new(name: &str, namespace: &str, metric_name: &str, at: DateTime<Utc>) -> Self {
        AlarmModel {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            metric_name: metric_name.to_owned(),
            statistic: "Sum".to_owned(),
            period: 300,
            evaluation_periods: 1,
            threshold: 1.0,
            comparison_operator: "GreaterThanOrEqualToThreshold".to_owned(),
            actions_enabled: true,
            state_value: "INSUFFICIENT_DATA".to_owned(),
            state_reason: "Unchecked: Initial alarm creation".to_owned(),
            state_updated: at,
            configuration_updated: at,
            ..Default::default()
        }
    }

    pub fn in_state(mut self, value: &str, reason: &str) -> Self {
        self.state_value = value.to_owned();
        self.state_reason = reason.to_owned();
        self
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{}",
            crate::TEST_REGION,
            crate::TEST_ACCOUNT_ID,
            self.name
        )
    }

    fn to_cbor(&self) -> Value {
        let dimensions = self
            .dimensions
            .iter()
            .map(|(name, value)| {
                cbor::map(vec![
                    ("Name", Some(cbor::text(name))),
                    ("Value", Some(cbor::text(value))),
                ])
            })
            .collect();
        cbor::map(vec![
            ("AlarmName", Some(cbor::text(&self.name))),
            ("AlarmArn", Some(cbor::text(self.arn()))),
            (
                "AlarmDescription",
                self.description.as_deref().map(cbor::text),
            ),
            (
                "AlarmConfigurationUpdatedTimestamp",
                Some(cbor::timestamp(self.configuration_updated)),
            ),
            ("ActionsEnabled", Some(Value::Bool(self.actions_enabled))),
            ("OKActions", Some(cbor::texts(&self.ok_actions))),
            ("AlarmActions", Some(cbor::texts(&self.alarm_actions))),
            ("InsufficientDataActions", Some(Value::Array(Vec::new()))),
            ("StateValue", Some(cbor::text(&self.state_value))),
            ("StateReason", Some(cbor::text(&self.state_reason))),
            (
                "StateReasonData",
                self.state_reason_data.as_deref().map(cbor::text),
            ),
            (
                "StateUpdatedTimestamp",
                Some(cbor::timestamp(self.state_updated)),
            ),
            (
                "StateTransitionedTimestamp",
                Some(cbor::timestamp(self.state_updated)),
            ),
            ("MetricName", Some(cbor::text(&self.metric_name))),
            ("Namespace", Some(cbor::text(&self.namespace))),
            ("Statistic", Some(cbor::text(&self.statistic))),
            ("Dimensions", Some(Value::Array(dimensions))),
            ("Period", Some(cbor::int(self.period.into()))),
            (
                "EvaluationPeriods",
                Some(cbor::int(self.evaluation_periods.into())),
            ),
            ("Threshold", Some(Value::Float(self.threshold))),
            (
                "ComparisonOperator",
                Some(cbor::text(&self.comparison_operator)),
            ),
            (
                "TreatMissingData",
                self.treat_missing_data.as_deref().map(cbor::text),
            ),
        ])
    }
}

/// Everything the fake knows, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct FakeState {
    /// By name, which is also the order DescribeAlarms answers in.
    pub(crate) alarms: BTreeMap<String, AlarmModel>,
    pub(crate) faults: Faults,
}

/// An error answer. CloudWatch is `@awsQueryCompatible`: besides `__type` in the body, the
/// `x-amzn-query-error: <code>;<Sender|Receiver>` header carries the old query error code,
/// which is what the SDK matches on (aws-sdk-cloudwatch `src/protocol_serde.rs`
/// `parse_http_error_metadata`, `src/aws_query_compatible_errors.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CwError {
    pub(crate) status: u16,
    /// The query error code, e.g. `ResourceNotFound`.
    pub(crate) code: String,
    /// The Smithy shape name for `__type`, e.g. `ResourceNotFound`, `InvalidFormatFault`.
    pub(crate) shape: String,
    pub(crate) message: String,
}

impl CwError {
    pub(crate) fn new(status: u16, code: &str, shape: &str, message: impl Into<String>) -> Self {
        CwError {
            status,
            code: code.to_owned(),
            shape: shape.to_owned(),
            message: message.into(),
        }
    }

    fn missing(member: &str) -> Self {
        CwError::new(
            400,
            "MissingParameter",
            "MissingRequiredParameterException",
            format!("The parameter {member} is required."),
        )
    }

    fn invalid(message: impl Into<String>) -> Self {
        CwError::new(
            400,
            "InvalidParameterValue",
            "InvalidParameterValueException",
            message,
        )
    }
}

pub(crate) fn run(
    state: &mut FakeState,
    operation: &str,
    input: Input<'_>,
    now: DateTime<Utc>,
) -> Result<Value, CwError> {
    match operation {
        "DescribeAlarms" => describe_alarms(state, input),
        "SetAlarmState" => set_alarm_state(state, input, now),
        "PutMetricAlarm" => put_metric_alarm(state, input, now),
        _ => Err(CwError::new(
            404,
            "UnknownOperationException",
            "UnknownOperationException",
            format!("Unknown operation {operation}"),
        )),
    }
}

fn describe_alarms(state: &FakeState, input: Input<'_>) -> Result<Value, CwError> {
    let names = input.strings("AlarmNames");
    let prefix = input.str("AlarmNamePrefix");
    if names.is_some() && prefix.is_some() {
        return Err(CwError::new(
            400,
            "InvalidParameterCombination",
            "InvalidParameterCombinationException",
            "AlarmNames and AlarmNamePrefix cannot be specified together.",
        ));
    }
    let wanted_state = input.str("StateValue");
    if wanted_state.is_some_and(|s| !STATE_VALUES.contains(&s)) {
        return Err(CwError::invalid(
            "StateValue must be one of OK, ALARM, INSUFFICIENT_DATA",
        ));
    }
    let max = match input.int("MaxRecords") {
        None => DEFAULT_MAX_RECORDS,
        Some(n) if (1..=MAX_MAX_RECORDS).contains(&n) => n as usize,
        Some(_) => return Err(CwError::invalid("MaxRecords must be between 1 and 100")),
    };
    let types = input.strings("AlarmTypes");
    // Without AlarmTypes only metric alarms are described; composite alarms are never modeled.
    let metric = types
        .as_ref()
        .is_none_or(|t| t.iter().any(|t| t == "MetricAlarm"));
    let composite = types
        .as_ref()
        .is_some_and(|t| t.iter().any(|t| t == "CompositeAlarm"));
    let action_prefix = input.str("ActionPrefix");
    let matching: Vec<&AlarmModel> = state
        .alarms
        .values()
        .filter(|_| {
            metric
                && input.get("ChildrenOfAlarmName").is_none()
                && input.get("ParentsOfAlarmName").is_none()
        })
        .filter(|a| names.as_ref().is_none_or(|n| n.contains(&a.name)))
        .filter(|a| prefix.is_none_or(|p| a.name.starts_with(p)))
        .filter(|a| wanted_state.is_none_or(|s| a.state_value == s))
        .filter(|a| {
            action_prefix.is_none_or(|p| {
                a.alarm_actions
                    .iter()
                    .chain(&a.ok_actions)
                    .any(|x| x.starts_with(p))
            })
        })
        .collect();
    // The token names the query it belongs to, so one reused with other filters is refused.
    let scope = format!("{names:?}|{prefix:?}|{wanted_state:?}|{types:?}|{action_prefix:?}");
    let start = match input.str("NextToken") {
        None => 0,
        Some(token) => token
            .split_once('#')
            .filter(|(offset, rest)| {
                *rest == scope && offset.parse::<usize>().is_ok_and(|o| o <= matching.len())
            })
            .and_then(|(offset, _)| offset.parse().ok())
            .ok_or_else(|| {
                CwError::new(
                    400,
                    "InvalidNextToken",
                    "InvalidNextToken",
                    "The service couldn't process the token.",
                )
            })?,
    };
    let end = (start + max).min(matching.len());
    let alarms = matching[start..end].iter().map(|a| a.to_cbor()).collect();
    let next = (end < matching.len()).then(|| cbor::text(format!("{end}#{scope}")));
    Ok(cbor::map(vec![
        ("MetricAlarms", metric.then_some(Value::Array(alarms))),
        (
            "CompositeAlarms",
            composite.then_some(Value::Array(Vec::new())),
        ),
        ("NextToken", next),
    ]))
}

fn set_alarm_state(
    state: &mut FakeState,
    input: Input<'_>,
    now: DateTime<Utc>,
) -> Result<Value, CwError> {
    let name = input
        .str("AlarmName")
        .ok_or_else(|| CwError::missing("AlarmName"))?;
    let value = input
        .str("StateValue")
        .ok_or_else(|| CwError::missing("StateValue"))?;
    let reason = input
        .str("StateReason")
        .ok_or_else(|| CwError::missing("StateReason"))?;
    if !STATE_VALUES.contains(&value) {
        return Err(CwError::invalid(
            "StateValue must be one of OK, ALARM, INSUFFICIENT_DATA",
        ));
    }
    let data = input.str("StateReasonData");
    if data.is_some_and(|d| serde_json::from_str::<serde_json::Value>(d).is_err()) {
        return Err(CwError::new(
            400,
            "InvalidFormat",
            "InvalidFormatFault",
            "StateReasonData is not valid JSON",
        ));
    }
    let alarm = state.alarms.get_mut(name).ok_or_else(|| {
        CwError::new(
            404,
            "ResourceNotFound",
            "ResourceNotFound",
            format!("Alarm {name} not found"),
        )
    })?;
    alarm.state_value = value.to_owned();
    alarm.state_reason = reason.to_owned();
    alarm.state_reason_data = data.map(str::to_owned);
    alarm.state_updated = now;
    Ok(cbor::map(Vec::new()))
}

fn put_metric_alarm(
    state: &mut FakeState,
    input: Input<'_>,
    now: DateTime<Utc>,
) -> Result<Value, CwError> {
    let name = input
        .str("AlarmName")
        .ok_or_else(|| CwError::missing("AlarmName"))?;
    let evaluation_periods = input
        .int("EvaluationPeriods")
        .ok_or_else(|| CwError::missing("EvaluationPeriods"))?;
    let operator = input
        .str("ComparisonOperator")
        .ok_or_else(|| CwError::missing("ComparisonOperator"))?;
    // An update keeps the alarm's state; a new alarm starts in INSUFFICIENT_DATA.
    let previous = state.alarms.get(name).cloned();
    let mut alarm = AlarmModel::new(
        name,
        input.str("Namespace").unwrap_or_default(),
        input.str("MetricName").unwrap_or_default(),
        now,
    );
    if let Some(previous) = previous {
        alarm.state_value = previous.state_value;
        alarm.state_reason = previous.state_reason;
        alarm.state_reason_data = previous.state_reason_data;
        alarm.state_updated = previous.state_updated;
    }
    alarm.description = input.str("AlarmDescription").map(str::to_owned);
    alarm.dimensions = input
        .structs("Dimensions")
        .iter()
        .filter_map(|d| Some((d.str("Name")?.to_owned(), d.str("Value")?.to_owned())))
        .collect();
    alarm.statistic = input.str("Statistic").unwrap_or("Sum").to_owned();
    alarm.period = input
        .int("Period")
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or(60);
    alarm.evaluation_periods = i32::try_from(evaluation_periods)
        .map_err(|_| CwError::invalid("EvaluationPeriods out of range"))?;
    alarm.threshold = input.float("Threshold").unwrap_or_default();
    alarm.comparison_operator = operator.to_owned();
    alarm.treat_missing_data = input.str("TreatMissingData").map(str::to_owned);
    alarm.actions_enabled = input.bool("ActionsEnabled").unwrap_or(true);
    alarm.alarm_actions = input.strings("AlarmActions").unwrap_or_default();
    alarm.ok_actions = input.strings("OKActions").unwrap_or_default();
    state.alarms.insert(name.to_owned(), alarm);
    Ok(cbor::map(Vec::new()))
}
