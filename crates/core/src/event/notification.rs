//! JSON messages the watched pipeline publishes on its SNS topics (`rollback_initiated`, ...).

use super::lenient::Obj;
use super::{NotificationEvent, ParseError, PipelineNotification};

const KNOWN: &str = "rollback_initiated, rollback_completed, rollback_failed, deployment_started, deployment_succeeded, deployment_failed";

pub(crate) fn parse(obj: Obj<'_>) -> Result<PipelineNotification, ParseError> {
    let raw = obj.req_str("event")?;
    let event = match raw {
        "rollback_initiated" => NotificationEvent::RollbackInitiated,
        "rollback_completed" | "rollback_succeeded" => NotificationEvent::RollbackCompleted,
        "rollback_failed" => NotificationEvent::RollbackFailed,
        "deployment_started" => NotificationEvent::DeploymentStarted,
        "deployment_succeeded" => NotificationEvent::DeploymentSucceeded,
        "deployment_failed" => NotificationEvent::DeploymentFailed,
        other => {
            return Err(ParseError::UnknownValue {
                field: "event".into(),
                value: other.chars().take(64).collect(),
                expected: KNOWN.into(),
            })
        }
    };
    Ok(PipelineNotification {
        event,
        environment: obj.req_str("environment")?.to_string(),
        current_version: obj.opt_string("currentVersion")?,
        target_version: obj.opt_string("targetVersion")?,
        reason: obj.opt_string("reason")?,
        level: obj.opt_string("level")?,
        // Informational only and its shape varies between publishers: a number or nothing.
        coverage: obj.opt_f64("coverage").ok().flatten(),
    })
}
