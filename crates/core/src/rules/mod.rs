//! The rule engine: `(config, input, incidents view, now) -> Decision`. Pure and synchronous:
//! no I/O, no clock reads. Each module covers one family of inputs; `cross` adds the
//! cross-incident escalation rules of the runbook's escalation procedure.

mod alarm;
mod cross;
mod findings;
mod notifications;
mod pipeline;
mod plan;

pub use plan::{deadline_applies, DeadlineState};

use crate::config::{Config, Environment};
use crate::decision::{Action, Decision};
use crate::event::{Event, EventKind};
use crate::finding::Finding;
use crate::incident::{IncidentView, IncidentsView};
use chrono::{DateTime, Utc};

/// What the rules see besides the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) view: &'a IncidentsView,
    pub(crate) now: DateTime<Utc>,
}

/// A handler's verdict: the environment (when known), the actions, and why nothing happens
/// when there are none.
#[derive(Debug)]
pub(crate) struct Outcome<'a> {
    pub(crate) environment: Option<&'a Environment>,
    pub(crate) actions: Vec<Action>,
    pub(crate) note: Option<String>,
}

impl<'a> Outcome<'a> {
    pub(crate) fn ignore(reason: impl Into<String>) -> Self {
        Self {
            environment: None,
            actions: Vec::new(),
            note: Some(reason.into()),
        }
    }

    pub(crate) fn ignore_in(environment: &'a Environment, reason: impl Into<String>) -> Self {
        Self {
            environment: Some(environment),
            actions: Vec::new(),
            note: Some(reason.into()),
        }
    }

    pub(crate) fn act(environment: &'a Environment, actions: Vec<Action>) -> Self {
        Self {
            environment: Some(environment),
            actions,
            note: None,
        }
    }
}

/// Decides what the runbook says should happen for one event.
pub fn evaluate(
    config: &Config,
    event: &Event,
    view: &IncidentsView,
    now: DateTime<Utc>,
) -> Decision {
    let ctx = Ctx { config, view, now };
    let outcome = match &event.kind {
        EventKind::PipelineExecution(e) => pipeline::execution(ctx, event, e),
        EventKind::StageExecution(e) => pipeline::stage(ctx, event, e),
        EventKind::ActionExecution(e) => pipeline::action(ctx, event, e),
        EventKind::ExecutionInProgress(e) => pipeline::in_progress(ctx, e),
        EventKind::BuildStateChange(e) => pipeline::build(ctx, event, e),
        EventKind::BuildPhaseChange(e) => Outcome::ignore(format!(
            "build phase {} of {} changes no incident",
            e.completed_phase, e.project
        )),
        EventKind::AlarmStateChange(e) => alarm::state_change(ctx, event, e),
        EventKind::PipelineNotification(e) => alarm::notification(ctx, event, e),
    };
    finish(ctx, event.id.clone(), event.kind_name(), outcome)
}

/// Decides what a diagnostic result changes (type refinement, rollback resolution).
pub fn evaluate_finding(
    config: &Config,
    finding: &Finding,
    view: &IncidentsView,
    now: DateTime<Utc>,
) -> Decision {
    let ctx = Ctx { config, view, now };
    let outcome = findings::evaluate(ctx, finding);
    let kind = match finding {
        Finding::RootCause(_) => "root_cause_finding",
        Finding::RollbackStatus(_) => "rollback_status_finding",
    };
    finish(ctx, format!("finding:{}", finding.key()), kind, outcome)
}

fn finish(ctx: Ctx<'_>, input_id: String, kind: &str, outcome: Outcome<'_>) -> Decision {
    let Outcome {
        environment,
        mut actions,
        note,
    } = outcome;
    cross::apply(ctx, &mut actions);
    let ignored = if actions.is_empty() {
        Some(note.unwrap_or_else(|| "no incident changes".to_string()))
    } else {
        None
    };
    Decision {
        input_id,
        input_kind: kind.to_string(),
        environment: environment.map(|e| e.name.clone()),
        actions,
        ignored,
    }
}

impl<'a> Ctx<'a> {
    /// Active incidents on a pipeline.
    pub(crate) fn active_on(
        &self,
        pipeline: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a IncidentView> + 'a {
        self.view.active_on(pipeline)
    }
}

/// Runs `f` with a context of no incidents for `environment`'s configuration, or gives no
/// notifications when the environment is not configured (any more).
fn for_environment(
    config: &Config,
    environment: &str,
    now: DateTime<Utc>,
    f: impl FnOnce(Ctx<'_>, &crate::config::Environment) -> Vec<crate::decision::Notification>,
) -> Vec<crate::decision::Notification> {
    let Some(env) = config.environment(environment) else {
        return Vec::new();
    };
    let view = IncidentsView::default();
    let ctx = Ctx {
        config,
        view: &view,
        now,
    };
    f(ctx, env)
}

/// The notifications a due deadline sends for an incident in `environment`: the environment's
/// channels plus the level's own targets, as an escalation or a reminder.
pub fn deadline_notifications(
    config: &Config,
    environment: &str,
    deadline: &crate::decision::Deadline,
    now: DateTime<Utc>,
) -> Vec<crate::decision::Notification> {
    let kind = match deadline.kind {
        crate::decision::DeadlineKind::Escalation => crate::decision::NotificationKind::Escalated,
        crate::decision::DeadlineKind::Reminder => crate::decision::NotificationKind::Reminder,
    };
    for_environment(config, environment, now, |ctx, env| {
        notifications::build(ctx, env, kind, &[deadline.level])
    })
}

/// The notifications of an incident resolved (`Resolved`) or acknowledged (`Acknowledged`) by
/// hand (API, CLI, Slack, a pager's webhook): the environment's targets and every level a pager
/// paged (`highest_level_notified`).
pub fn closing_notifications(
    config: &Config,
    environment: &str,
    kind: crate::decision::NotificationKind,
    highest_level_notified: Option<usize>,
    now: DateTime<Utc>,
) -> Vec<crate::decision::Notification> {
    for_environment(config, environment, now, |ctx, env| {
        notifications::closing(ctx, env, kind, highest_level_notified)
    })
}

/// The thread updates of an incident in `environment` (e.g. a diagnosis finished after the first
/// post): one per target whose notifier takes updates.
pub fn update_notifications(
    config: &Config,
    environment: &str,
    now: DateTime<Utc>,
) -> Vec<crate::decision::Notification> {
    for_environment(config, environment, now, |ctx, env| {
        notifications::build(ctx, env, crate::decision::NotificationKind::Updated, &[])
    })
}
