//! Building a new incident: severity, immediate levels, the escalation schedule as absolute
//! deadlines, and whether a stored deadline still applies when it comes due.

use super::{notifications, Ctx};
use crate::config::{Environment, Policy, StepCondition, Until};
use crate::decision::{Deadline, DeadlineKind, ErrorInfo, NotificationKind, OpenIncident};
use crate::incident::{IncidentStatus, IncidentType};
use chrono::{DateTime, Duration, Utc};

/// The facts a signal gives about a new incident.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub(crate) execution_id: Option<String>,
    pub(crate) execution_start: Option<DateTime<Utc>>,
    pub(crate) stage: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) alarm: Option<String>,
    pub(crate) error: Option<ErrorInfo>,
    pub(crate) error_signature: Option<String>,
}

/// Levels notified as soon as the incident opens (steps with `after_secs = 0`).
pub(crate) fn immediate_levels(policy: &Policy, critical: bool) -> Vec<usize> {
    let mut levels: Vec<usize> = policy
        .steps
        .iter()
        .filter(|s| s.after_secs == 0 && condition_holds(s.when, critical))
        .map(|s| s.level)
        .collect();
    levels.sort_unstable();
    levels.dedup();
    levels
}

fn condition_holds(when: Option<StepCondition>, critical: bool) -> bool {
    match when {
        None => true,
        Some(StepCondition::CriticalFindings) => critical,
    }
}

/// Future deadlines of a policy counted from `base`, leaving out levels in `already`.
pub(crate) fn schedule(
    ctx: Ctx<'_>,
    policy: &Policy,
    base: DateTime<Utc>,
    already: &[usize],
) -> Vec<Deadline> {
    let mut out = Vec::new();
    for step in &policy.steps {
        let Some(level) = ctx.config.escalation.levels.get(step.level) else {
            continue;
        };
        let first = base + secs(step.after_secs);
        let notified = already.contains(&step.level);
        // With no acknowledgement target (an approval) there is nothing to escalate past: the
        // first timed post is a reminder, like the repeats.
        let kind = if policy.ack_target_secs.is_some() {
            DeadlineKind::Escalation
        } else {
            DeadlineKind::Reminder
        };
        if step.after_secs > 0 && !notified {
            out.push(Deadline {
                at: first,
                level: step.level,
                level_id: level.id.clone(),
                kind,
                until: step.until,
                when: step.when,
            });
        }
        if let Some(every) = step.repeat_every_secs {
            for k in 1..=step.max_repeats {
                out.push(Deadline {
                    at: first + secs(every.saturating_mul(k)),
                    level: step.level,
                    level_id: level.id.clone(),
                    kind: DeadlineKind::Reminder,
                    until: step.until,
                    when: step.when,
                });
            }
        }
    }
    out.sort_by_key(|d| (d.at, d.level));
    out
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::seconds(
        i64::try_from(s)
            .unwrap_or(i64::MAX / 1000)
            .min(10 * 365 * 86_400),
    )
}

/// A new incident of `incident_type` in `env`, as the policy says.
pub(crate) fn open(
    ctx: Ctx<'_>,
    env: &Environment,
    incident_type: IncidentType,
    key: String,
    facts: Facts,
) -> OpenIncident {
    let policy = ctx.config.policy(incident_type);
    let levels = immediate_levels(policy, false);
    let opened_at = ctx.now;
    OpenIncident {
        key,
        incident_type,
        severity: policy.severity_for(&env.name),
        environment: env.name.clone(),
        pipeline: env.pipeline.clone(),
        execution_id: facts.execution_id,
        execution_start: facts.execution_start,
        stage: facts.stage,
        action: facts.action,
        alarm: facts.alarm,
        error: facts.error,
        error_signature: facts.error_signature,
        title: format!("{} — {}", incident_type.title(), env.pipeline),
        runbook_section: incident_type.runbook_section().to_string(),
        next_steps: incident_type.next_steps().to_string(),
        opened_at,
        ack_by: policy.ack_target_secs.map(|s| opened_at + secs(s)),
        diagnostics: policy.diagnostics.clone(),
        notifications: notifications::build(ctx, env, NotificationKind::Opened, &levels),
        notified_levels: levels.clone(),
        schedule: schedule(ctx, policy, opened_at, &levels),
    }
}

/// What the incident manager knows when a stored deadline comes due.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineState {
    pub status: IncidentStatus,
    /// The security scan reported CRITICAL findings.
    pub critical_findings: bool,
    /// Highest level already notified (index), if any.
    pub highest_level_notified: Option<usize>,
}

/// Whether a due deadline should still notify: not after resolution, not after an ack unless the
/// step runs until resolution, not when its condition does not hold, and an escalation (not a
/// reminder) not when its level was already reached another way.
pub fn deadline_applies(deadline: &Deadline, state: DeadlineState) -> bool {
    let stopped = matches!(
        (state.status, deadline.until),
        (IncidentStatus::Resolved, _) | (IncidentStatus::Acknowledged, Until::Acknowledged)
    );
    let already = deadline.kind == DeadlineKind::Escalation
        && state
            .highest_level_notified
            .is_some_and(|h| h >= deadline.level);
    !stopped && !already && condition_holds(deadline.when, state.critical_findings)
}
