//! CloudWatch alarms (Incidents 1, 3, 4 by alarm name; Incident 2 for application alarms) and the
//! pipeline's own notifications (Incident 2: "Rollback Initiated").

use super::findings::refine;
use super::pipeline::{open_or_join_duration, resolve};
use super::plan::{self, Facts};
use super::{notifications, Ctx, Outcome};
use crate::config::{Diagnostic, Environment};
use crate::decision::{Action, ErrorInfo, IncidentUpdate};
use crate::event::{AlarmState, AlarmStateChange, Event, NotificationEvent, PipelineNotification};
use crate::incident::{IncidentType, IncidentView};

pub(crate) fn state_change<'a>(ctx: Ctx<'a>, event: &Event, e: &AlarmStateChange) -> Outcome<'a> {
    let Some(env) = ctx.config.environment_for_alarm(&e.alarm_name) else {
        return Outcome::ignore(format!(
            "alarm {:?} is not under any environment's alarm_prefix",
            e.alarm_name
        ));
    };
    let suffix = &e.alarm_name[env.alarm_prefix.len()..];
    let incident_type = ctx
        .config
        .detection
        .alarm_rules
        .iter()
        .find(|r| suffix == r.suffix)
        .map(|r| r.incident_type)
        .or(ctx.config.detection.unmatched_alarms);
    let Some(incident_type) = incident_type else {
        return Outcome::ignore_in(env, format!("alarm {} matches no alarm rule", e.alarm_name));
    };
    match e.state {
        AlarmState::Alarm => alarm_fired(ctx, env, event, e, incident_type),
        AlarmState::Ok => {
            Outcome::act(env, alarm_cleared(ctx, env, &e.alarm_name)).with_note(format!(
                "alarm {} returned to OK; no open incident carries it",
                e.alarm_name
            ))
        }
        AlarmState::InsufficientData => Outcome::ignore_in(
            env,
            format!("alarm {} has insufficient data: no incident", e.alarm_name),
        ),
    }
}

fn alarm_key(
    incident_type: IncidentType,
    scope: &str,
    event: &Event,
    e: &AlarmStateChange,
) -> String {
    let at = e.state_timestamp.unwrap_or(event.time).timestamp_millis();
    format!("{incident_type}/{scope}/alarm/{}/{at}", e.alarm_name)
}

fn attach(
    ctx: Ctx<'_>,
    env: &Environment,
    existing: &IncidentView,
    alarm: &str,
    why: String,
) -> Vec<Action> {
    if existing.alarms.iter().any(|a| a == alarm) {
        return Vec::new();
    }
    let update = IncidentUpdate {
        alarm: Some(alarm.to_string()),
        notify: true,
        ..IncidentUpdate::default()
    };
    vec![notifications::update(ctx, env, existing, update, why)]
}

fn alarm_fired<'a>(
    ctx: Ctx<'a>,
    env: &'a Environment,
    event: &Event,
    e: &AlarmStateChange,
    incident_type: IncidentType,
) -> Outcome<'a> {
    let facts = Facts {
        alarm: Some(e.alarm_name.clone()),
        error: e.reason.clone().map(|reason| ErrorInfo {
            code: None,
            summary: Some(reason),
            external_url: None,
        }),
        ..Facts::default()
    };
    let actions = match incident_type {
        IncidentType::PipelineExecutionFailure
        | IncidentType::TestCoverageBelowThreshold
        | IncidentType::SecurityScanFailure => {
            let existing = ctx
                .active_on(&env.pipeline)
                .rev()
                .find(|i| i.incident_type.is_failure_family());
            match existing {
                Some(existing) => {
                    let mut actions = attach(
                        ctx,
                        env,
                        existing,
                        &e.alarm_name,
                        format!(
                            "alarm {} is about the open failure of {}",
                            e.alarm_name, env.pipeline
                        ),
                    );
                    if existing.incident_type != incident_type
                        && incident_type != IncidentType::PipelineExecutionFailure
                    {
                        actions.extend(refine(
                            ctx,
                            env,
                            existing,
                            incident_type,
                            format!("alarm {} fired", e.alarm_name),
                        ));
                    }
                    actions
                }
                None => open_new(
                    ctx,
                    env,
                    incident_type,
                    alarm_key(incident_type, &env.pipeline, event, e),
                    facts,
                ),
            }
        }
        IncidentType::DeploymentDurationExceeded => {
            let key = alarm_key(incident_type, &env.pipeline, event, e);
            open_or_join_duration(ctx, env, facts, Some(key))
        }
        IncidentType::RollbackTriggered => match active_rollback(ctx, env) {
            Some(existing) => attach(
                ctx,
                env,
                existing,
                &e.alarm_name,
                format!(
                    "alarm {} fired during the rollback in {}",
                    e.alarm_name, env.name
                ),
            ),
            None => open_new(
                ctx,
                env,
                incident_type,
                alarm_key(incident_type, &env.name, event, e),
                facts,
            ),
        },
        IncidentType::ApprovalPending => Vec::new(),
    };
    Outcome::act(env, actions).with_note(format!("alarm {} already recorded", e.alarm_name))
}

fn open_new(
    ctx: Ctx<'_>,
    env: &Environment,
    incident_type: IncidentType,
    key: String,
    facts: Facts,
) -> Vec<Action> {
    if ctx.view.get(&key).is_some() || !ctx.config.policy(incident_type).enabled {
        return Vec::new();
    }
    vec![Action::Open(plan::open(
        ctx,
        env,
        incident_type,
        key,
        facts,
    ))]
}

fn alarm_cleared(ctx: Ctx<'_>, env: &Environment, alarm: &str) -> Vec<Action> {
    ctx.active_on(&env.pipeline)
        .filter(|i| i.alarms.iter().any(|a| a == alarm))
        .map(|i| match i.incident_type {
            // A rollback is over only when the record, all alarms and the health check agree:
            // check them again rather than trusting one alarm.
            IncidentType::RollbackTriggered => {
                recheck_rollback(ctx, i, format!("alarm {alarm} returned to OK"))
            }
            _ => resolve(ctx, env, i, format!("alarm {alarm} returned to OK")),
        })
        .collect()
}

fn active_rollback<'a>(ctx: Ctx<'a>, env: &'a Environment) -> Option<&'a IncidentView> {
    ctx.active_on(&env.pipeline)
        .filter(|i| i.incident_type == IncidentType::RollbackTriggered && i.environment == env.name)
        .max_by_key(|i| i.opened_at)
}

fn recheck_rollback(ctx: Ctx<'_>, incident: &IncidentView, reason: String) -> Action {
    let rerun: Vec<Diagnostic> = ctx
        .config
        .policy(IncidentType::RollbackTriggered)
        .diagnostics
        .iter()
        .filter(|d| {
            matches!(
                d,
                Diagnostic::DeploymentRecord { .. }
                    | Diagnostic::Alarms { .. }
                    | Diagnostic::HealthCheck { .. }
            )
        })
        .cloned()
        .collect();
    Action::Update {
        key: incident.key.clone(),
        update: IncidentUpdate {
            rerun_diagnostics: rerun,
            ..IncidentUpdate::default()
        },
        reason,
        notifications: Vec::new(),
    }
}

/// The pipeline's own SNS messages.
pub(crate) fn notification<'a>(
    ctx: Ctx<'a>,
    event: &Event,
    n: &PipelineNotification,
) -> Outcome<'a> {
    let Some(env) = ctx.config.environment(&n.environment) else {
        return Outcome::ignore(format!("environment {:?} is not watched", n.environment));
    };
    let existing = active_rollback(ctx, env);
    match n.event {
        NotificationEvent::RollbackInitiated => {
            // What is rolled back to what, and why: "9e1d4b7 → 1a2b3c4: <reason>".
            let versions = match (&n.current_version, &n.target_version) {
                (Some(from), Some(to)) => Some(format!("{from} → {to}")),
                (Some(from), None) => Some(format!("from {from}")),
                (None, Some(to)) => Some(format!("to {to}")),
                (None, None) => None,
            };
            let summary = match (versions, n.reason.clone()) {
                (Some(v), Some(reason)) => Some(format!("{v}: {reason}")),
                (v, reason) => reason.or(v),
            };
            let facts = Facts {
                error: summary.map(|summary| ErrorInfo {
                    code: n.level.clone().map(|l| format!("level {l}")),
                    summary: Some(summary),
                    external_url: None,
                }),
                ..Facts::default()
            };
            let actions = match existing {
                Some(existing) => {
                    let update = IncidentUpdate {
                        error: facts.error,
                        notify: true,
                        ..IncidentUpdate::default()
                    };
                    let reason = "the rollback Lambda confirmed the rollback".into();
                    vec![notifications::update(ctx, env, existing, update, reason)]
                }
                None => {
                    let id = n
                        .current_version
                        .clone()
                        .unwrap_or_else(|| event.time.timestamp_millis().to_string());
                    open_new(
                        ctx,
                        env,
                        IncidentType::RollbackTriggered,
                        format!("rollback_triggered/{}/{id}", env.name),
                        facts,
                    )
                }
            };
            Outcome::act(env, actions).with_note("rollback already recorded".into())
        }
        NotificationEvent::RollbackCompleted => match existing {
            Some(i) => Outcome::act(
                env,
                vec![recheck_rollback(
                    ctx,
                    i,
                    "the rollback Lambda reported completion".into(),
                )],
            ),
            None => Outcome::ignore_in(env, "rollback completed; no open rollback incident"),
        },
        NotificationEvent::RollbackFailed => {
            let mut actions = Vec::new();
            let key = match existing {
                Some(i) => i.key.clone(),
                None => {
                    let key = format!(
                        "rollback_triggered/{}/{}",
                        env.name,
                        event.time.timestamp_millis()
                    );
                    actions.extend(open_new(
                        ctx,
                        env,
                        IncidentType::RollbackTriggered,
                        key.clone(),
                        Facts::default(),
                    ));
                    key
                }
            };
            let already = existing.and_then(|i| i.highest_level_notified);
            actions.extend(rollback_failed_escalations(ctx, env, &key, already));
            Outcome::act(env, actions)
        }
        NotificationEvent::DeploymentSucceeded => {
            let actions = ctx
                .active_on(&env.pipeline)
                .filter(|i| {
                    i.incident_type == IncidentType::RollbackTriggered && i.opened_at < event.time
                })
                .map(|i| resolve(ctx, env, i, "a later deployment succeeded".into()))
                .collect();
            Outcome::act(env, actions).with_note("deployment succeeded; no open rollback".into())
        }
        NotificationEvent::DeploymentStarted | NotificationEvent::DeploymentFailed => {
            Outcome::ignore_in(
                env,
                format!("{:?}: the pipeline's own events drive incidents", n.event),
            )
        }
    }
}

/// Runbook: "If rollback fails, escalate immediately to engineering manager and AWS support".
pub(crate) fn rollback_failed_escalations(
    ctx: Ctx<'_>,
    env: &Environment,
    key: &str,
    already: Option<usize>,
) -> Vec<Action> {
    ctx.config
        .escalation
        .rollback_failed_levels
        .iter()
        .filter(|l| already.is_none_or(|a| **l > a))
        .filter_map(|l| notifications::escalate(ctx, env, key, *l, "the rollback failed".into()))
        .collect()
}
