//! CodePipeline and CodeBuild events: runbook Incident 1 (pipeline execution failure), Incident 3
//! (duration, from the watcher), Task 2 (approval pending), and their resolutions.

use super::plan::{self, secs, Facts};
use super::{notifications, Ctx, Outcome};
use crate::config::Environment;
use crate::decision::{Action, ErrorInfo, IncidentUpdate, NotificationKind};
use crate::event::{
    ActionExecutionChange, ActionState, BuildStateChange, BuildStatus, Event, ExecutionInProgress,
    PipelineExecutionChange, PipelineState, StageExecutionChange, StageState,
};
use crate::incident::{IncidentType, IncidentView};
use chrono::{DateTime, Utc};

fn watched<'a>(ctx: Ctx<'a>, pipeline: &str) -> Result<&'a Environment, Outcome<'a>> {
    ctx.config.environment_for_pipeline(pipeline).ok_or_else(|| {
        Outcome::ignore(format!(
            "pipeline {pipeline:?} is not watched (no environment has it); add it to [[environments]] to handle it"
        ))
    })
}

pub(crate) fn failure_key(pipeline: &str, execution_id: &str) -> String {
    format!("pipeline_execution_failure/{pipeline}/{execution_id}")
}

/// Pipeline execution state change.
pub(crate) fn execution<'a>(
    ctx: Ctx<'a>,
    event: &Event,
    e: &PipelineExecutionChange,
) -> Outcome<'a> {
    let env = match watched(ctx, &e.pipeline) {
        Ok(env) => env,
        Err(o) => return o,
    };
    match e.state {
        PipelineState::Failed => {
            if let Some(rejected) = rejected_approval(ctx, &e.pipeline, &e.execution_id) {
                return Outcome::ignore_in(
                    env,
                    format!("execution failed because approval {rejected} was rejected (runbook Task 3): a decision, not an incident"),
                );
            }
            let action = e.failed_actions.first();
            let facts = Facts {
                execution_id: Some(e.execution_id.clone()),
                execution_start: e.start_time,
                stage: e.failed_stage.clone(),
                action: action.map(|a| a.action.clone()),
                error: action
                    .and_then(|a| a.additional_information.clone())
                    .map(|summary| ErrorInfo {
                        code: None,
                        summary: Some(summary),
                        external_url: None,
                    }),
                ..Facts::default()
            };
            let key = failure_key(&env.pipeline, &e.execution_id);
            Outcome::act(env, open_or_join_failure(ctx, env, facts)).with_note(format!(
                "already recorded in an open incident ({key}) or resolved"
            ))
        }
        PipelineState::Succeeded => {
            let mut actions =
                resolve_failures_passed(ctx, env, event, &e.execution_id, e.start_time, None, None);
            actions.extend(resolve_execution_incidents(
                ctx,
                env,
                &e.execution_id,
                "the execution succeeded",
            ));
            Outcome::act(env, actions).with_note(format!(
                "execution {} succeeded; nothing was open",
                e.execution_id
            ))
        }
        PipelineState::Superseded | PipelineState::Canceled | PipelineState::Stopped => {
            let reason = format!("the execution was {}", e.state.as_wire().to_lowercase());
            Outcome::act(
                env,
                resolve_execution_incidents(ctx, env, &e.execution_id, &reason),
            )
            .with_note(format!(
                "execution {} {}: stopped or replaced on purpose, not an incident",
                e.execution_id,
                e.state.as_wire().to_lowercase()
            ))
        }
        PipelineState::Started | PipelineState::Resumed | PipelineState::Stopping => {
            Outcome::ignore_in(
                env,
                format!("execution {} {}: no incident", e.execution_id, e.state),
            )
        }
    }
}

// Only pipeline-level events carry the execution's own start time; stage and action events
// carry the stage's or action's, which must not be mistaken for it (see the action fixtures).

/// Stage execution state change.
pub(crate) fn stage<'a>(ctx: Ctx<'a>, event: &Event, e: &StageExecutionChange) -> Outcome<'a> {
    let env = match watched(ctx, &e.pipeline) {
        Ok(env) => env,
        Err(o) => return o,
    };
    match e.state {
        StageState::Failed => {
            let facts = Facts {
                execution_id: Some(e.execution_id.clone()),
                execution_start: None,
                stage: Some(e.stage.clone()),
                ..Facts::default()
            };
            let key = failure_key(&env.pipeline, &e.execution_id);
            Outcome::act(env, open_or_join_failure(ctx, env, facts)).with_note(format!(
                "already recorded in an open incident ({key}) or resolved"
            ))
        }
        StageState::Succeeded => Outcome::act(
            env,
            resolve_failures_passed(ctx, env, event, &e.execution_id, None, Some(&e.stage), None),
        )
        .with_note(format!(
            "stage {} succeeded; no open failure at that stage",
            e.stage
        )),
        _ => Outcome::ignore_in(env, format!("stage {} {}: no incident", e.stage, e.state)),
    }
}

/// Action execution state change.
pub(crate) fn action<'a>(ctx: Ctx<'a>, event: &Event, e: &ActionExecutionChange) -> Outcome<'a> {
    let env = match watched(ctx, &e.pipeline) {
        Ok(env) => env,
        Err(o) => return o,
    };
    if is_approval(ctx, e) {
        return approval(ctx, env, e);
    }
    match e.state {
        ActionState::Failed => {
            let error = e.result.as_ref().map(|r| ErrorInfo {
                code: r.error_code.clone(),
                summary: r.external_execution_summary.clone(),
                external_url: r.external_execution_url.clone(),
            });
            let facts = Facts {
                execution_id: Some(e.execution_id.clone()),
                execution_start: None,
                stage: Some(e.stage.clone()),
                action: Some(e.action.clone()),
                error_signature: error.as_ref().and_then(|err| outage_signature(ctx, err)),
                error,
                ..Facts::default()
            };
            let key = failure_key(&env.pipeline, &e.execution_id);
            Outcome::act(env, open_or_join_failure(ctx, env, facts)).with_note(format!(
                "already recorded in an open incident ({key}) or resolved"
            ))
        }
        ActionState::Succeeded => Outcome::act(
            env,
            resolve_failures_passed(
                ctx,
                env,
                event,
                &e.execution_id,
                None,
                Some(&e.stage),
                Some(&e.action),
            ),
        )
        .with_note(format!(
            "action {} succeeded; no open failure at that action",
            e.action
        )),
        _ => Outcome::ignore_in(env, format!("action {} {}: no incident", e.action, e.state)),
    }
}

fn is_approval(ctx: Ctx<'_>, e: &ActionExecutionChange) -> bool {
    e.category.as_deref() == Some("Approval")
        || e.provider.as_deref() == Some("Manual")
        || ctx
            .config
            .detection
            .approval_actions
            .iter()
            .any(|a| a == &e.action)
}

pub(crate) fn approval_key(e: &ActionExecutionChange) -> String {
    format!(
        "approval_pending/{}/{}/{}/{}",
        e.pipeline, e.execution_id, e.stage, e.action
    )
}

/// Runbook Task 2: an approval waits; it resolves when approved, rejected or abandoned.
fn approval<'a>(ctx: Ctx<'a>, env: &'a Environment, e: &ActionExecutionChange) -> Outcome<'a> {
    let key = approval_key(e);
    let existing = ctx.view.get(&key).filter(|i| i.status.is_active());
    match e.state {
        ActionState::Started => {
            if !ctx.config.policy(IncidentType::ApprovalPending).enabled {
                return Outcome::ignore_in(env, "approval_pending is disabled in policies");
            }
            if existing.is_some() || ctx.view.get(&key).is_some() {
                return Outcome::ignore_in(
                    env,
                    format!("approval {} already recorded as {key}", e.action),
                );
            }
            let facts = Facts {
                execution_id: Some(e.execution_id.clone()),
                execution_start: None,
                stage: Some(e.stage.clone()),
                action: Some(e.action.clone()),
                ..Facts::default()
            };
            Outcome::act(
                env,
                vec![Action::Open(plan::open(
                    ctx,
                    env,
                    IncidentType::ApprovalPending,
                    key,
                    facts,
                ))],
            )
        }
        state => {
            let reason = match state {
                ActionState::Succeeded => "approved".to_string(),
                ActionState::Failed => "rejected".to_string(),
                other => other.as_wire().to_lowercase(),
            };
            match existing {
                Some(incident) => Outcome::act(env, vec![resolve(ctx, env, incident, reason)]),
                None => Outcome::ignore_in(
                    env,
                    format!("approval {} {reason}; no open approval incident", e.action),
                ),
            }
        }
    }
}

/// The name of an approval action whose rejection made this execution fail, if any.
fn rejected_approval(ctx: Ctx<'_>, pipeline: &str, execution_id: &str) -> Option<String> {
    ctx.view
        .of_execution(pipeline, execution_id)
        .find(|i| {
            i.incident_type == IncidentType::ApprovalPending
                && i.resolution
                    .as_deref()
                    .is_some_and(|r| r.starts_with("rejected"))
        })
        .map(|i| i.action.clone().unwrap_or_default())
}

/// Opens a `pipeline_execution_failure` for this execution, or adds the facts to the incident
/// that already covers it: the same execution, or an alarm-opened failure on the same pipeline
/// that has no execution yet (so event, alarm and poll meet in one incident).
pub(crate) fn open_or_join_failure(ctx: Ctx<'_>, env: &Environment, facts: Facts) -> Vec<Action> {
    let execution_id = facts.execution_id.clone().unwrap_or_default();
    let key = failure_key(&env.pipeline, &execution_id);
    let failure = |i: &&IncidentView| i.status.is_active() && i.incident_type.is_failure_family();
    let same_execution = ctx
        .view
        .get(&key)
        .filter(failure)
        .into_iter()
        .chain(ctx.view.of_execution(&env.pipeline, &execution_id))
        .filter(failure)
        .min_by_key(|i| (i.opened_at, i.key.as_str()));
    let alarm_opened = || {
        ctx.view
            .active_without_execution(&env.pipeline)
            .find(|i| i.incident_type.is_failure_family())
    };
    if let Some(existing) = same_execution.or_else(alarm_opened) {
        let update = IncidentUpdate {
            execution_id: existing
                .execution_id
                .is_none()
                .then(|| execution_id.clone()),
            execution_start: if existing.execution_start.is_none() {
                facts.execution_start
            } else {
                None
            },
            stage: facts.stage.filter(|_| existing.failed_stage.is_none()),
            action: facts.action.filter(|_| existing.action.is_none()),
            error_signature: facts
                .error_signature
                .filter(|_| existing.error_signature.is_none()),
            notify: facts.error.is_some(),
            error: facts.error,
            ..IncidentUpdate::default()
        };
        if update == (IncidentUpdate::default()) {
            return Vec::new();
        }
        let reason = format!(
            "same failure of {} (execution {execution_id})",
            env.pipeline
        );
        return vec![notifications::update(ctx, env, existing, update, reason)];
    }
    if ctx.view.get(&key).is_some() {
        // Already opened and resolved: a late or repeated signal must not reopen it.
        return Vec::new();
    }
    if !ctx
        .config
        .policy(IncidentType::PipelineExecutionFailure)
        .enabled
    {
        return Vec::new();
    }
    vec![Action::Open(plan::open(
        ctx,
        env,
        IncidentType::PipelineExecutionFailure,
        key,
        facts,
    ))]
}

/// Resolves failure-family incidents of this pipeline that a later execution has now got past:
/// the whole pipeline (`stage = None`), or the very stage/action that failed.
fn resolve_failures_passed(
    ctx: Ctx<'_>,
    env: &Environment,
    event: &Event,
    execution_id: &str,
    execution_start: Option<DateTime<Utc>>,
    stage: Option<&str>,
    action: Option<&str>,
) -> Vec<Action> {
    ctx.active_on(&env.pipeline)
        .filter(|i| i.incident_type.is_failure_family())
        .filter(|i| i.execution_id.as_deref() != Some(execution_id))
        .filter(|i| is_later(i, execution_start, event.time))
        .filter(|i| match stage {
            None => true,
            Some(stage) => {
                i.failed_stage.as_deref() == Some(stage)
                    && (action.is_none() || i.action.is_none() || i.action.as_deref() == action)
            }
        })
        .map(|i| {
            let reason = match stage {
                None => format!("a later execution ({execution_id}) succeeded"),
                Some(stage) => format!("a later execution ({execution_id}) got past {stage}"),
            };
            resolve(ctx, env, i, reason)
        })
        .collect()
}

/// Whether an execution (known by its start, or else by the event time) came after the
/// incident's own execution. An older execution finishing late says nothing about the fix.
fn is_later(
    incident: &IncidentView,
    start: Option<DateTime<Utc>>,
    event_time: DateTime<Utc>,
) -> bool {
    match (incident.execution_start, start) {
        (Some(failed), Some(this)) => this > failed,
        _ => event_time > incident.opened_at,
    }
}

/// Resolves duration and approval incidents of an execution that has finished.
fn resolve_execution_incidents(
    ctx: Ctx<'_>,
    env: &Environment,
    execution_id: &str,
    reason: &str,
) -> Vec<Action> {
    ctx.active_on(&env.pipeline)
        .filter(|i| {
            matches!(
                i.incident_type,
                IncidentType::DeploymentDurationExceeded | IncidentType::ApprovalPending
            ) && i.execution_id.as_deref() == Some(execution_id)
        })
        .map(|i| resolve(ctx, env, i, reason.to_string()))
        .collect()
}

pub(crate) fn resolve(
    ctx: Ctx<'_>,
    env: &Environment,
    incident: &IncidentView,
    reason: String,
) -> Action {
    Action::Resolve {
        key: incident.key.clone(),
        reason,
        notifications: notifications::closing(
            ctx,
            env,
            NotificationKind::Resolved,
            incident.highest_level_notified,
        ),
    }
}

/// Runbook Incident 3 from the watcher: an execution running past the duration threshold.
pub(crate) fn in_progress<'a>(ctx: Ctx<'a>, e: &ExecutionInProgress) -> Outcome<'a> {
    let env = match watched(ctx, &e.pipeline) {
        Ok(env) => env,
        Err(o) => return o,
    };
    let limit = ctx.config.thresholds.deployment_duration_secs;
    let running = (ctx.now - e.start_time).num_seconds().max(0);
    if running <= i64::try_from(limit).unwrap_or(i64::MAX) {
        return Outcome::ignore_in(
            env,
            format!(
                "execution {} running {} min, under the {} min threshold",
                e.execution_id,
                running / 60,
                limit / 60
            ),
        );
    }
    let facts = Facts {
        execution_id: Some(e.execution_id.clone()),
        execution_start: Some(e.start_time),
        stage: e.stage.clone(),
        ..Facts::default()
    };
    Outcome::act(env, open_or_join_duration(ctx, env, facts, None))
}

pub(crate) fn duration_key(pipeline: &str, execution_id: &str) -> String {
    format!("deployment_duration_exceeded/{pipeline}/{execution_id}")
}

/// Opens a duration incident, or joins the open one on this pipeline (alarm and watcher meet).
pub(crate) fn open_or_join_duration(
    ctx: Ctx<'_>,
    env: &Environment,
    facts: Facts,
    alarm_key: Option<String>,
) -> Vec<Action> {
    let existing = ctx.active_on(&env.pipeline).find(|i| {
        i.incident_type == IncidentType::DeploymentDurationExceeded
            && (facts.execution_id.is_none()
                || i.execution_id.is_none()
                || i.execution_id == facts.execution_id)
    });
    if let Some(existing) = existing {
        let update = IncidentUpdate {
            execution_id: facts
                .execution_id
                .filter(|_| existing.execution_id.is_none()),
            execution_start: facts
                .execution_start
                .filter(|_| existing.execution_start.is_none()),
            alarm: facts.alarm.filter(|a| !existing.alarms.contains(a)),
            ..IncidentUpdate::default()
        };
        if update == IncidentUpdate::default() {
            return Vec::new();
        }
        let reason = format!("same slow execution of {}", env.pipeline);
        return vec![notifications::update(ctx, env, existing, update, reason)];
    }
    let key = match (&facts.execution_id, alarm_key) {
        (Some(execution), _) => duration_key(&env.pipeline, execution),
        (None, Some(key)) => key,
        (None, None) => return Vec::new(),
    };
    if ctx.view.get(&key).is_some()
        || !ctx
            .config
            .policy(IncidentType::DeploymentDurationExceeded)
            .enabled
    {
        return Vec::new();
    }
    let mut actions = vec![Action::Open(plan::open(
        ctx,
        env,
        IncidentType::DeploymentDurationExceeded,
        key.clone(),
        facts,
    ))];
    // "If consistently slow, escalate to DevOps team": the same pipeline slow N times in the window.
    let thresholds = &ctx.config.thresholds;
    let since = ctx.now - secs(thresholds.slow_recurrence_window_secs);
    let earlier = ctx
        .view
        .on_pipeline_since(&env.pipeline, since)
        .filter(|i| i.incident_type == IncidentType::DeploymentDurationExceeded)
        .count();
    if earlier + 1 >= thresholds.slow_recurrence_count {
        let reason = format!(
            "{} was slow {} times in {} days (runbook: consistently slow → DevOps)",
            env.pipeline,
            earlier + 1,
            thresholds.slow_recurrence_window_secs / 86_400
        );
        actions.extend(notifications::escalate(
            ctx,
            env,
            &key,
            thresholds.slow_recurrence_level,
            reason,
        ));
    }
    actions
}

/// CodeBuild build state: adds the build's log location to the open failure; a passing build
/// resolves coverage and security incidents ("next build passes").
pub(crate) fn build<'a>(ctx: Ctx<'a>, event: &Event, e: &BuildStateChange) -> Outcome<'a> {
    let Some(env) = ctx.config.environment_for_build_project(&e.project) else {
        return Outcome::ignore(format!(
            "build project {:?} is not any environment's build_project",
            e.project
        ));
    };
    match e.status {
        BuildStatus::Failed | BuildStatus::FaultOrTimedOut | BuildStatus::Stopped => {
            let stream = e.logs.as_ref().and_then(|l| l.stream_name.clone());
            let actions = ctx
                .active_on(&env.pipeline)
                .rev()
                .find(|i| {
                    i.incident_type.is_failure_family() && i.opened_at <= event.time + secs(300)
                })
                .filter(|_| stream.is_some())
                .map(|i| Action::Update {
                    key: i.key.clone(),
                    update: IncidentUpdate {
                        build_log_stream: stream.clone(),
                        ..IncidentUpdate::default()
                    },
                    reason: format!("build {} of {} {}", e.build_id, e.project, e.status),
                    notifications: Vec::new(),
                })
                .into_iter()
                .collect();
            Outcome::act(env, actions).with_note(format!(
                "build {} {}: the pipeline's own FAILED event opens the incident",
                e.project, e.status
            ))
        }
        BuildStatus::Succeeded => {
            let actions = ctx
                .active_on(&env.pipeline)
                .filter(|i| {
                    matches!(
                        i.incident_type,
                        IncidentType::TestCoverageBelowThreshold
                            | IncidentType::SecurityScanFailure
                    ) && i.opened_at < event.time
                })
                .map(|i| {
                    resolve(
                        ctx,
                        env,
                        i,
                        format!("the next build of {} passed", e.project),
                    )
                })
                .collect();
            Outcome::act(env, actions).with_note(format!("build of {} succeeded", e.project))
        }
        BuildStatus::InProgress => {
            Outcome::ignore_in(env, format!("build of {} started", e.project))
        }
    }
}

/// The AWS-side error family of an action error, if it matches an outage pattern.
pub(crate) fn outage_signature(ctx: Ctx<'_>, error: &ErrorInfo) -> Option<String> {
    let text = format!(
        "{} {}",
        error.code.as_deref().unwrap_or_default(),
        error.summary.as_deref().unwrap_or_default()
    )
    .to_lowercase();
    ctx.config
        .escalation
        .outage
        .error_patterns
        .iter()
        .find(|p| text.contains(&p.to_lowercase()))
        .cloned()
}

impl<'a> Outcome<'a> {
    /// Sets the reason shown when there turned out to be nothing to do.
    pub(crate) fn with_note(mut self, note: String) -> Self {
        if self.actions.is_empty() {
            self.note = Some(note);
        }
        self
    }
}
