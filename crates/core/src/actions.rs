//! The runbook's hands: what an operator may do to an incident (approve or reject a production
//! approval, retry the failed stage, stop and restart a stuck execution, start a new one), which
//! of these a post offers, and the guards that need no AWS call. Pure: the daemon adds the
//! guards that do (the approval token is current, the restart quota) and makes the call.

use crate::config::{Config, Environment};
use crate::incident::IncidentType;
use crate::record::Incident;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One of the actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// `PutApprovalResult` Approved (runbook Task 2).
    Approve,
    /// `PutApprovalResult` Rejected with a reason (Task 3).
    Reject,
    /// `RetryStageExecution` of the failed stage, failed actions only (Incident 1, Task 1).
    Retry,
    /// `StopPipelineExecution` then `StartPipelineExecution` (Incident 3 step 5).
    Restart,
    /// `StartPipelineExecution` ("fix and redeploy").
    Start,
}

impl ActionKind {
    pub const ALL: [ActionKind; 5] = [
        Self::Approve,
        Self::Reject,
        Self::Retry,
        Self::Restart,
        Self::Start,
    ];

    /// The name in the API, the CLI, metrics and Slack's `action_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Retry => "retry",
            Self::Restart => "restart",
            Self::Start => "start",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The button's text.
    pub fn label(self) -> &'static str {
        match self {
            Self::Approve => "Approve",
            Self::Reject => "Reject",
            Self::Retry => "Retry failed stage",
            Self::Restart => "Stop and restart",
            Self::Start => "Start new execution",
        }
    }

    /// Approve and reject answer the same approval request.
    pub fn is_approval(self) -> bool {
        matches!(self, Self::Approve | Self::Reject)
    }

    /// Past tense, for the timeline ("approved", "restarted").
    pub fn done(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Retry => "retried the failed stage",
            Self::Restart => "stopped and restarted the execution",
            Self::Start => "started a new execution",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// The AWS call was made and succeeded.
    Done,
    /// An approval counted, waiting for another approver.
    Vote,
    /// A guard said no; nothing was called.
    Refused,
    /// The AWS call was made and failed.
    Failed,
}

impl ActionOutcome {
    /// The `outcome` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Vote => "vote",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// One action as the incident keeps it: who, when, what, and how it ended (the AWS request id,
/// the error, or the guard's reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub at: DateTime<Utc>,
    pub action: ActionKind,
    pub by: String,
    pub outcome: ActionOutcome,
    /// The reason given (reject), the request id, the error or the refusal.
    pub detail: String,
}

impl ActionRecord {
    /// The timeline's line.
    pub fn line(&self) -> String {
        let what = self.action.as_str();
        let by = &self.by;
        let detail = if self.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", self.detail)
        };
        match self.outcome {
            ActionOutcome::Done => format!("{} by {by}{detail}", self.action.done()),
            ActionOutcome::Vote => format!("approval by {by} counted{detail}"),
            ActionOutcome::Refused => format!("{what} by {by} refused{detail}"),
            ActionOutcome::Failed => format!("{what} by {by} failed{detail}"),
        }
    }

    /// Whether this resolves its incident (an approval answered).
    pub fn resolves(&self) -> bool {
        self.outcome == ActionOutcome::Done && self.action.is_approval()
    }
}

/// The actions a post of `incident` offers (none when actions are off or it is resolved).
pub fn offered(config: &Config, incident: &Incident) -> Vec<ActionKind> {
    if !config.remediation.enabled || config.daemon.dry_run || !incident.status.is_active() {
        return Vec::new();
    }
    match incident.incident_type {
        IncidentType::ApprovalPending if incident.action.is_some() => {
            vec![ActionKind::Approve, ActionKind::Reject]
        }
        IncidentType::DeploymentDurationExceeded
            if config.remediation.restart_stuck_executions && incident.execution_id.is_some() =>
        {
            vec![ActionKind::Restart]
        }
        t if t.is_failure_family() => {
            let mut out = Vec::new();
            if incident.stage.is_some() && incident.execution_id.is_some() && transient(incident) {
                out.push(ActionKind::Retry);
            }
            out.push(ActionKind::Start);
            out
        }
        _ => Vec::new(),
    }
}

/// The failure looks transient: the build log said so, or the error names throttling or a
/// timeout.
fn transient(incident: &Incident) -> bool {
    if incident.retryable {
        return true;
    }
    let Some(error) = &incident.error else {
        return false;
    };
    let text = format!(
        "{} {}",
        error.code.as_deref().unwrap_or_default(),
        error.summary.as_deref().unwrap_or_default()
    )
    .to_ascii_lowercase();
    [
        "throttl",
        "rate exceeded",
        "timed out",
        "timeout",
        "too many requests",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// Whether `by` (with the user groups it belongs to) is on `list`.
pub fn allowed(list: &[String], by: &str, groups: &[String]) -> bool {
    list.iter()
        .any(|entry| entry == by || groups.iter().any(|g| g == entry))
}

/// The list of people who may take `action` in `env`.
pub fn who_may(env: &Environment, action: ActionKind) -> &[String] {
    if action.is_approval() {
        &env.guards.approvers
    } else {
        &env.guards.operators
    }
}

/// The guards that need no AWS call, in the order an operator would want to hear them: actions
/// off, dry-run, the incident is not one this action applies to, already done, not allowed,
/// already approved by this person. `Ok` means: go on to the AWS-side checks.
pub fn check(
    config: &Config,
    incident: &Incident,
    action: ActionKind,
    by: &str,
    member: bool,
) -> Result<(), String> {
    if !config.remediation.enabled {
        return Err("actions are off here ([remediation] enabled = false)".into());
    }
    if config.daemon.dry_run {
        return Err("dry-run: nothing is done".into());
    }
    if !incident.status.is_active() {
        return Err(format!(
            "the incident is resolved ({})",
            incident.resolution.as_deref().unwrap_or("resolved")
        ));
    }
    let applies = match action {
        ActionKind::Approve | ActionKind::Reject => {
            incident.incident_type == IncidentType::ApprovalPending
        }
        ActionKind::Restart => {
            incident.incident_type == IncidentType::DeploymentDurationExceeded
                && incident.execution_id.is_some()
        }
        ActionKind::Retry => {
            incident.incident_type.is_failure_family()
                && incident.stage.is_some()
                && incident.execution_id.is_some()
        }
        ActionKind::Start => incident.incident_type.is_failure_family(),
    };
    if !applies {
        return Err(format!(
            "{} does not apply to a {} incident",
            action.as_str(),
            incident.incident_type
        ));
    }
    if action == ActionKind::Restart && !config.remediation.restart_stuck_executions {
        return Err(
            "stop-and-restart is off ([remediation] restart_stuck_executions = false)".into(),
        );
    }
    if let Some(done) = done(incident, action) {
        return Err(format!("already done: {}", done.line()));
    }
    if !member {
        let role = if action.is_approval() {
            "approvers"
        } else {
            "operators"
        };
        return Err(format!(
            "{by} is not one of the {} environment's {role}",
            incident.environment
        ));
    }
    if action == ActionKind::Approve && approvals(incident).iter().any(|a| a == by) {
        return Err(format!(
            "{by} already approved; another approver is needed (two-person rule)"
        ));
    }
    Ok(())
}

/// The action that already settles `action` on this incident, if any: an answered approval
/// (either way), or a retry, restart or start already made: one of each per incident, so a
/// double click never acts twice (after a retry that failed again, start a new execution).
pub fn done(incident: &Incident, action: ActionKind) -> Option<&ActionRecord> {
    incident.actions.iter().find(|r| {
        r.outcome == ActionOutcome::Done
            && match action {
                ActionKind::Approve | ActionKind::Reject => r.action.is_approval(),
                ActionKind::Restart | ActionKind::Start | ActionKind::Retry => r.action == action,
            }
    })
}

/// The people whose approval counted so far, in order, each once.
pub fn approvals(incident: &Incident) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &incident.actions {
        if r.action == ActionKind::Approve
            && matches!(r.outcome, ActionOutcome::Vote | ActionOutcome::Done)
            && !out.contains(&r.by)
        {
            out.push(r.by.clone());
        }
    }
    out
}

/// The claim that makes one click act once across double clicks, Slack's retries, replicas and
/// restarts: the same request on the same state gets the same key. Every recorded outcome of
/// the action (done, refused, failed, a vote) moves the key on, so a later click is decided
/// afresh. An approval is keyed by its token and by the approver (two approvers may click at
/// once); [`answer_key`] then makes the answer itself once.
pub fn claim_key(
    incident: &Incident,
    action: ActionKind,
    by: &str,
    approval_token: Option<&str>,
) -> String {
    let n = recorded(incident, action);
    match approval_token {
        Some(token) if action.is_approval() => {
            format!("action/{}/approval/{token}/{n}/{by}", incident.pipeline)
        }
        _ => format!("action/{}/{}/{n}", incident.key, action.as_str()),
    }
}

/// The claim on answering approval `token` (approved or rejected): once, unless an answer
/// failed (then the next attempt has a new key).
pub fn answer_key(incident: &Incident, approval_token: &str) -> String {
    let failed = incident
        .actions
        .iter()
        .filter(|r| r.action.is_approval() && r.outcome == ActionOutcome::Failed)
        .count();
    format!(
        "action/{}/approval/{approval_token}/answer/{failed}",
        incident.pipeline
    )
}

/// How many outcomes of `action` (approvals count together) the incident records.
fn recorded(incident: &Incident, action: ActionKind) -> usize {
    incident
        .actions
        .iter()
        .filter(|r| {
            if action.is_approval() {
                r.action.is_approval()
            } else {
                r.action == action
            }
        })
        .count()
}

/// What a confirmation dialog says the action will do.
pub fn describe(incident: &Incident, action: ActionKind) -> String {
    let execution = incident
        .execution_id
        .as_deref()
        .map(|e| format!(" execution {}", e.get(..8).unwrap_or(e)))
        .unwrap_or_default();
    let stage = incident.stage.as_deref().unwrap_or("?");
    let pipeline = &incident.pipeline;
    // The commit the execution runs, as the `execution_details` diagnostic found it.
    let commit = incident
        .diagnosis
        .iter()
        .find(|d| d.name == "execution_details" && d.ok)
        .map(|d| {
            format!(
                " Commit {}.",
                d.summary.chars().take(120).collect::<String>()
            )
        })
        .unwrap_or_default();
    let what = match action {
        ActionKind::Approve => format!(
            "Approve {stage}/{} of {pipeline}{execution} in {}.",
            incident.action.as_deref().unwrap_or("?"),
            incident.environment
        ),
        ActionKind::Reject => format!(
            "Reject {stage}/{} of {pipeline}{execution}: the execution stops.",
            incident.action.as_deref().unwrap_or("?")
        ),
        ActionKind::Retry => {
            format!("Retry the failed actions of stage {stage} of {pipeline}{execution}.")
        }
        ActionKind::Restart => format!(
            "Stop {pipeline}{execution} (in-progress actions finish) and start a new execution of its latest source revision."
        ),
        ActionKind::Start => format!(
            "Start a new execution of {pipeline} from its latest source revision."
        ),
    };
    if action == ActionKind::Start {
        what
    } else {
        format!("{what}{commit}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_read_as_the_timeline_says_them() {
        let at = Utc::now();
        let r = ActionRecord {
            at,
            action: ActionKind::Reject,
            by: "U1".into(),
            outcome: ActionOutcome::Done,
            detail: "staging is red".into(),
        };
        assert_eq!(r.line(), "rejected by U1: staging is red");
        assert!(r.resolves());
        let vote = ActionRecord {
            action: ActionKind::Approve,
            outcome: ActionOutcome::Vote,
            detail: "1 of 2".into(),
            ..r.clone()
        };
        assert_eq!(vote.line(), "approval by U1 counted: 1 of 2");
        assert!(!vote.resolves());
        for a in ActionKind::ALL {
            assert_eq!(ActionKind::parse(a.as_str()), Some(a));
        }
        assert_eq!(ActionKind::parse("delete"), None);
    }

    #[test]
    fn membership_is_by_id_or_by_group() {
        let list = vec!["U1".to_string(), "S9".to_string()];
        assert!(allowed(&list, "U1", &[]));
        assert!(allowed(&list, "U2", &["S9".to_string()]));
        assert!(!allowed(&list, "U2", &["S8".to_string()]));
        assert!(!allowed(&[], "U1", &[]), "empty means nobody");
    }
}
