//! Diagnostic results as inputs: refinement of a failure into the coverage or security type, and
//! the end (or failure) of a rollback.

use super::alarm::rollback_failed_escalations;
use super::pipeline::{outage_signature, resolve};
use super::plan::{immediate_levels, schedule};
use super::{notifications, Ctx, Outcome};
use crate::config::Environment;
use crate::decision::{Action, ErrorInfo, IncidentUpdate, NotificationKind};
use crate::finding::{Finding, RollbackStatusFinding, RootCauseClass, RootCauseFinding};
use crate::incident::{IncidentType, IncidentView};

pub(crate) fn evaluate<'a>(ctx: Ctx<'a>, finding: &Finding) -> Outcome<'a> {
    let Some(incident) = ctx.view.get(finding.key()).filter(|i| i.status.is_active()) else {
        return Outcome::ignore(format!("incident {} is not open", finding.key()));
    };
    let Some(env) = ctx.config.environment(&incident.environment) else {
        return Outcome::ignore(format!(
            "environment {:?} is no longer configured",
            incident.environment
        ));
    };
    let actions = match finding {
        Finding::RootCause(f) => root_cause(ctx, env, incident, f),
        Finding::RollbackStatus(f) => rollback_status(ctx, env, incident, f),
    };
    Outcome::act(env, actions).with_note(format!("finding changes nothing for {}", incident.key))
}

/// Runbook Incident 1 step 3 → Incidents 4 and 5: the log tells which incident this really is.
fn root_cause(
    ctx: Ctx<'_>,
    env: &Environment,
    incident: &IncidentView,
    f: &RootCauseFinding,
) -> Vec<Action> {
    if !incident.incident_type.is_failure_family() {
        return Vec::new();
    }
    if f.class == RootCauseClass::AwsThrottling {
        return throttled(ctx, incident);
    }
    let threshold = ctx.config.thresholds.coverage_percent;
    let to = match f.class {
        RootCauseClass::SecurityScan => IncidentType::SecurityScanFailure,
        RootCauseClass::Coverage if f.coverage_percent.is_none_or(|c| c < threshold) => {
            IncidentType::TestCoverageBelowThreshold
        }
        _ => return Vec::new(),
    };
    // Security outranks coverage: never refine a security incident back down.
    if incident.incident_type == to || incident.incident_type == IncidentType::SecurityScanFailure {
        return Vec::new();
    }
    let reason = match (f.class, f.coverage_percent) {
        (RootCauseClass::Coverage, Some(c)) => {
            format!("build log shows coverage {c:.1} % under the {threshold} % threshold")
        }
        (RootCauseClass::Coverage, None) => {
            "build log shows coverage under the threshold".to_string()
        }
        _ if f.critical_findings => {
            "build log shows security scan failures with CRITICAL findings".to_string()
        }
        _ => "build log shows security scan failures (cfn-guard / npm audit)".to_string(),
    };
    refine(ctx, env, incident, to, reason)
}

/// A build that failed on AWS throttling carries the outage rule's throttling signature, so that
/// several pipelines throttled at once look like the AWS outage they may be (runbook: L3). Only
/// when the configured `escalation.outage.error_patterns` count throttling, and only once.
fn throttled(ctx: Ctx<'_>, incident: &IncidentView) -> Vec<Action> {
    if incident.error_signature.is_some() {
        return Vec::new();
    }
    let probe = ErrorInfo {
        code: Some("ThrottlingException".to_string()),
        summary: Some("Rate exceeded".to_string()),
        external_url: None,
    };
    let Some(signature) = outage_signature(ctx, &probe) else {
        return Vec::new();
    };
    vec![Action::Update {
        key: incident.key.clone(),
        update: IncidentUpdate {
            error_signature: Some(signature),
            ..IncidentUpdate::default()
        },
        reason: "build log shows AWS throttling".to_string(),
        notifications: Vec::new(),
    }]
}

/// Changes an incident's type, keeping key and timeline; severity and escalation follow the new
/// type from now on (levels already notified are not notified again unless the new policy
/// notifies them immediately at a higher level).
pub(crate) fn refine(
    ctx: Ctx<'_>,
    env: &Environment,
    incident: &IncidentView,
    to: IncidentType,
    reason: String,
) -> Vec<Action> {
    let policy = ctx.config.policy(to);
    if !policy.enabled {
        return Vec::new();
    }
    let already: Vec<usize> = match incident.highest_level_notified {
        Some(h) => (0..=h).collect(),
        None => Vec::new(),
    };
    let now_levels: Vec<usize> = immediate_levels(policy, false)
        .into_iter()
        .filter(|l| !already.contains(l))
        .collect();
    let mut notified = already.clone();
    notified.extend(&now_levels);
    let mut actions = vec![Action::Refine {
        key: incident.key.clone(),
        from: incident.incident_type,
        to,
        severity: policy.severity_for(&env.name).max(incident.severity),
        reason: reason.clone(),
        schedule: schedule(ctx, policy, ctx.now, &notified),
        notifications: notifications::build(ctx, env, NotificationKind::Refined, &[]),
    }];
    for level in now_levels {
        let id = ctx
            .config
            .escalation
            .levels
            .get(level)
            .map(|l| l.id.as_str())
            .unwrap_or("?");
        let reason = format!("{to} policy notifies {id} at once");
        actions.extend(notifications::escalate(
            ctx,
            env,
            &incident.key,
            level,
            reason,
        ));
    }
    actions
}

/// Runbook Incident 2 steps 4–5: resolved when the record says rolled back, no alarm fires and the
/// health check passes; escalated at once when the rollback failed.
fn rollback_status(
    ctx: Ctx<'_>,
    env: &Environment,
    incident: &IncidentView,
    f: &RollbackStatusFinding,
) -> Vec<Action> {
    if incident.incident_type != IncidentType::RollbackTriggered {
        return Vec::new();
    }
    if f.failed {
        return rollback_failed_escalations(
            ctx,
            env,
            &incident.key,
            incident.highest_level_notified,
        );
    }
    if f.completed && f.alarms_in_alarm.is_empty() && f.health_ok != Some(false) {
        let health = match f.health_ok {
            Some(true) => ", health check passes",
            _ => " (no health check configured)",
        };
        return vec![resolve(
            ctx,
            env,
            incident,
            format!("rollback completed, all alarms OK{health}"),
        )];
    }
    Vec::new()
}
