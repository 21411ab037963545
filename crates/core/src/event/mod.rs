//! The one `Event` type every source produces, and the parsers that build it from the wire.
//!
//! Inputs arrive as EventBridge JSON (SQS target or API destination), wrapped in an SNS envelope,
//! as SNS raw delivery, as the CodeStar Notifications "processed" variant, or as the watched
//! pipeline's own JSON notifications (`rollback_initiated`, ...). [`parse_message`] accepts all of
//! them and returns either a typed [`Event`], a typed "ignored" outcome, or a [`ParseError`] that
//! names the field at fault.

mod cloudwatch;
mod codebuild;
mod codepipeline;
mod fast;
mod lenient;
mod notification;
mod parse;

pub use parse::{
    parse_message, parse_message_general, parse_value, ParseError, Parsed, MAX_MESSAGE_BYTES,
};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One thing that happened in the watched world, with the metadata of its delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Delivery-independent id used for de-duplication (EventBridge `id`, SNS `MessageId`, or a
    /// content hash when the carrier has none).
    pub id: String,
    /// When the change happened according to AWS (EventBridge `time`).
    pub time: DateTime<Utc>,
    /// AWS region from the envelope, if given.
    pub region: Option<String>,
    /// AWS account from the envelope, if given.
    pub account: Option<String>,
    /// How the event was wrapped when it reached us.
    pub carrier: Carrier,
    /// What happened.
    pub kind: EventKind,
}

/// The wrapping an event arrived in; kept for metrics and for explaining decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    /// Raw EventBridge event JSON (SQS target, API destination, SNS raw delivery).
    EventBridge,
    /// EventBridge event inside an SNS `Notification` envelope.
    SnsEnvelope,
    /// CodeStar Notifications "processed" event (`detailType`, `additionalAttributes`).
    CodeStarNotification,
    /// JSON message published by the watched pipeline itself (rollback Lambda, deploy stages).
    PipelineNotification,
    /// Synthesised by the daemon's watcher from polling AWS APIs.
    Poll,
}

/// The typed content of an [`Event`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    PipelineExecution(PipelineExecutionChange),
    StageExecution(StageExecutionChange),
    ActionExecution(ActionExecutionChange),
    AlarmStateChange(AlarmStateChange),
    BuildStateChange(BuildStateChange),
    BuildPhaseChange(BuildPhaseChange),
    PipelineNotification(PipelineNotification),
    /// The watcher saw an execution still running; the rules decide whether it is too long.
    ExecutionInProgress(ExecutionInProgress),
}

/// `CodePipeline Pipeline Execution State Change`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineExecutionChange {
    pub pipeline: String,
    pub execution_id: String,
    pub state: PipelineState,
    /// When the execution started (V2 events); used to order executions.
    pub start_time: Option<DateTime<Utc>>,
    /// `execution-trigger.trigger-type`, e.g. `StartPipelineExecution`, `Webhook`.
    pub trigger_type: Option<String>,
    /// `execution-trigger.trigger-detail` (the user or commit that started it).
    pub trigger_detail: Option<String>,
    /// `stop-execution-comments` on STOPPING/STOPPED.
    pub stop_comments: Option<String>,
    /// CodeStar `additionalAttributes.failedStage`, when delivered that way.
    pub failed_stage: Option<String>,
    /// CodeStar `additionalAttributes.failedActions`, when delivered that way.
    pub failed_actions: Vec<FailedAction>,
}

/// One failed action as named by the CodeStar "processed" variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedAction {
    pub action: String,
    pub additional_information: Option<String>,
}

/// `CodePipeline Stage Execution State Change`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageExecutionChange {
    pub pipeline: String,
    pub execution_id: String,
    pub stage: String,
    pub state: StageState,
    pub start_time: Option<DateTime<Utc>>,
}

/// `CodePipeline Action Execution State Change`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionExecutionChange {
    pub pipeline: String,
    pub execution_id: String,
    pub stage: String,
    pub action: String,
    pub action_execution_id: Option<String>,
    pub state: ActionState,
    /// `type.category`: `Source`, `Build`, `Test`, `Deploy`, `Approval`, `Invoke`.
    pub category: Option<String>,
    /// `type.provider`: `CodeBuild`, `CodeDeploy`, `Manual`, ...
    pub provider: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    /// `execution-result`, present on SUCCEEDED and FAILED.
    pub result: Option<ExecutionResult>,
}

/// `execution-result` of an action event: the error and where to look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionResult {
    pub external_execution_url: Option<String>,
    pub external_execution_summary: Option<String>,
    pub external_execution_id: Option<String>,
    pub error_code: Option<String>,
}

/// `CloudWatch Alarm State Change`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmStateChange {
    pub alarm_name: String,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    pub reason: Option<String>,
    /// `state.reasonData`, a JSON document AWS sends inside a string; `None` if absent or not JSON.
    pub reason_data: Option<serde_json::Value>,
    /// `state.timestamp` (AWS uses a `+0000` offset); identifies this transition.
    pub state_timestamp: Option<DateTime<Utc>>,
}

/// `CodeBuild Build State Change`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildStateChange {
    pub project: String,
    pub build_id: String,
    pub status: BuildStatus,
    pub logs: Option<BuildLogs>,
    /// `additional-information.build-start-time` as AWS prints it ("Sep 1, 2017 4:12:29 PM").
    pub build_start_time: Option<String>,
}

/// `CodeBuild Build Phase Change`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildPhaseChange {
    pub project: String,
    pub build_id: String,
    pub completed_phase: String,
    pub completed_phase_status: Option<String>,
    pub completed_phase_duration_secs: Option<u64>,
    pub logs: Option<BuildLogs>,
}

/// Where a CodeBuild build writes its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildLogs {
    pub group_name: Option<String>,
    pub stream_name: Option<String>,
    pub deep_link: Option<String>,
}

/// A JSON message the watched pipeline publishes on its own SNS topics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineNotification {
    pub event: NotificationEvent,
    pub environment: String,
    pub current_version: Option<String>,
    pub target_version: Option<String>,
    pub reason: Option<String>,
    /// Rollback level: `stage` or `full`.
    pub level: Option<String>,
    /// `coverage` of `deployment_succeeded`, in percent.
    pub coverage: Option<f64>,
}

/// The `event` field of a [`PipelineNotification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationEvent {
    RollbackInitiated,
    RollbackCompleted,
    RollbackFailed,
    DeploymentStarted,
    DeploymentSucceeded,
    DeploymentFailed,
}

/// An execution the watcher saw running (the rules compare its age with the threshold).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionInProgress {
    pub pipeline: String,
    pub execution_id: String,
    pub start_time: DateTime<Utc>,
    /// The stage currently running, if known.
    pub stage: Option<String>,
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// All values AWS documents, in wire spelling.
            pub const ALL: &'static [&'static str] = &[$($wire),+];

            /// Parses the wire spelling (case-insensitive, so API `Failed` and event `FAILED` both work).
            /// The API's `Cancelled` is the events' `CANCELED`.
            pub fn from_wire(s: &str) -> Option<Self> {
                $(if s.eq_ignore_ascii_case($wire) { return Some(Self::$variant); })+
                if s.eq_ignore_ascii_case("CANCELLED") {
                    return Self::from_wire("CANCELED");
                }
                None
            }

            /// The spelling EventBridge uses.
            pub fn as_wire(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_wire())
            }
        }
    };
}

wire_enum!(
    /// Pipeline execution states in EventBridge events.
    PipelineState {
        Canceled = "CANCELED", Failed = "FAILED", Resumed = "RESUMED", Started = "STARTED",
        Stopped = "STOPPED", Stopping = "STOPPING", Succeeded = "SUCCEEDED", Superseded = "SUPERSEDED",
    }
);
wire_enum!(
    /// Stage execution states in EventBridge events.
    StageState {
        Canceled = "CANCELED", Failed = "FAILED", Resumed = "RESUMED", Started = "STARTED",
        Stopped = "STOPPED", Stopping = "STOPPING", Succeeded = "SUCCEEDED",
    }
);
wire_enum!(
    /// Action execution states in EventBridge events.
    ActionState {
        Abandoned = "ABANDONED", Canceled = "CANCELED", Failed = "FAILED", Started = "STARTED",
        Succeeded = "SUCCEEDED",
    }
);
wire_enum!(
    /// CloudWatch alarm states.
    AlarmState { Ok = "OK", Alarm = "ALARM", InsufficientData = "INSUFFICIENT_DATA" }
);
wire_enum!(
    /// CodeBuild `build-status` values.
    BuildStatus { InProgress = "IN_PROGRESS", Succeeded = "SUCCEEDED", Failed = "FAILED", Stopped = "STOPPED", FaultOrTimedOut = "TIMED_OUT" }
);

impl PipelineState {
    /// A state after which the execution does nothing more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Canceled | Self::Failed | Self::Stopped | Self::Succeeded | Self::Superseded
        )
    }
}

impl Event {
    /// The pipeline this event is about, if any.
    pub fn pipeline(&self) -> Option<&str> {
        match &self.kind {
            EventKind::PipelineExecution(e) => Some(&e.pipeline),
            EventKind::StageExecution(e) => Some(&e.pipeline),
            EventKind::ActionExecution(e) => Some(&e.pipeline),
            EventKind::ExecutionInProgress(e) => Some(&e.pipeline),
            _ => None,
        }
    }

    /// Short machine name of the event kind, for metrics labels and logs.
    /// Every value [`Event::kind_name`] gives (metrics start each at 0).
    pub const KIND_NAMES: [&'static str; 8] = [
        "pipeline_execution",
        "stage_execution",
        "action_execution",
        "alarm_state_change",
        "build_state_change",
        "build_phase_change",
        "pipeline_notification",
        "execution_in_progress",
    ];

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            EventKind::PipelineExecution(_) => "pipeline_execution",
            EventKind::StageExecution(_) => "stage_execution",
            EventKind::ActionExecution(_) => "action_execution",
            EventKind::AlarmStateChange(_) => "alarm_state_change",
            EventKind::BuildStateChange(_) => "build_state_change",
            EventKind::BuildPhaseChange(_) => "build_phase_change",
            EventKind::PipelineNotification(_) => "pipeline_notification",
            EventKind::ExecutionInProgress(_) => "execution_in_progress",
        }
    }

    /// A second de-duplication key that survives re-delivery under a new id (EventBridge
    /// delivers at least once; the same transition may also arrive via SNS and via EventBridge).
    pub fn transition_key(&self) -> String {
        match &self.kind {
            EventKind::PipelineExecution(e) => {
                // The time tells a retried execution's second FAILED from a redelivery.
                format!(
                    "pipeline/{}/{}/{}/{}",
                    e.pipeline,
                    e.execution_id,
                    e.state,
                    self.time.timestamp_millis()
                )
            }
            EventKind::StageExecution(e) => format!(
                "stage/{}/{}/{}/{}/{}",
                e.pipeline,
                e.execution_id,
                e.stage,
                e.state,
                self.time.timestamp_millis()
            ),
            EventKind::ActionExecution(e) => format!(
                "action/{}/{}/{}/{}/{}/{}",
                e.pipeline,
                e.execution_id,
                e.stage,
                e.action,
                e.action_execution_id.as_deref().unwrap_or("-"),
                e.state
            ),
            EventKind::AlarmStateChange(e) => format!(
                "alarm/{}/{}/{}",
                e.alarm_name,
                e.state,
                e.state_timestamp.unwrap_or(self.time).timestamp_millis()
            ),
            EventKind::BuildStateChange(e) => format!("build/{}/{}", e.build_id, e.status),
            EventKind::BuildPhaseChange(e) => {
                format!("build-phase/{}/{}", e.build_id, e.completed_phase)
            }
            EventKind::PipelineNotification(e) => format!(
                "notification/{}/{}/{}/{}",
                e.environment,
                serde_json::to_value(&e.event)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                e.current_version.as_deref().unwrap_or("-"),
                self.time.timestamp_millis()
            ),
            EventKind::ExecutionInProgress(e) => {
                format!("in-progress/{}/{}", e.pipeline, e.execution_id)
            }
        }
    }
}
