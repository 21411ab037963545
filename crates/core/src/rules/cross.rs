//! Cross-incident escalation (runbook "Escalation Procedures"): several environments affected →
//! L2; the same AWS error across pipelines (an AWS outage) → L3.

use super::plan::secs;
use super::{notifications, Ctx};
use crate::decision::Action;
use crate::incident::{IncidentType, Severity};
use std::collections::BTreeSet;

/// One incident as the cross rules see it: those in the view plus the ones being opened now.
#[derive(Debug, Clone)]
struct Member<'a> {
    key: &'a str,
    environment: &'a str,
    pipeline: &'a str,
    signature: Option<&'a str>,
    reached: Option<usize>,
    opened_at: chrono::DateTime<chrono::Utc>,
}

/// Adds the escalations the cross-incident rules call for, given the actions decided so far.
pub(crate) fn apply(ctx: Ctx<'_>, actions: &mut Vec<Action>) {
    let extra = escalations(ctx, actions);
    actions.extend(extra);
}

/// The escalations called for by the actions decided so far (borrowing them, hence separate).
fn escalations(ctx: Ctx<'_>, actions: &[Action]) -> Vec<Action> {
    let mut extra = Vec::new();
    let fresh: Vec<Member> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Open(o)
                if o.incident_type != IncidentType::ApprovalPending
                    && o.severity > Severity::Info =>
            {
                Some(Member {
                    key: &o.key,
                    environment: &o.environment,
                    pipeline: &o.pipeline,
                    signature: o.error_signature.as_deref(),
                    reached: super::plan::immediate_levels(
                        ctx.config.policy(o.incident_type),
                        false,
                    )
                    .into_iter()
                    .max(),
                    opened_at: o.opened_at,
                })
            }
            Action::Update { key, update, .. } if update.error_signature.is_some() => {
                ctx.view.get(key).map(|i| Member {
                    key: &i.key,
                    environment: &i.environment,
                    pipeline: &i.pipeline,
                    signature: update.error_signature.as_deref(),
                    reached: i.highest_level_notified,
                    opened_at: i.opened_at,
                })
            }
            _ => None,
        })
        .collect();
    if fresh.is_empty() {
        return extra;
    }
    let mut members: Vec<Member> = ctx
        .view
        .active()
        .filter(|i| i.incident_type != IncidentType::ApprovalPending && i.severity > Severity::Info)
        .filter(|i| !fresh.iter().any(|f| f.key == i.key))
        .map(|i| Member {
            key: &i.key,
            environment: &i.environment,
            pipeline: &i.pipeline,
            signature: i.error_signature.as_deref(),
            reached: i.highest_level_notified,
            opened_at: i.opened_at,
        })
        .collect();
    members.extend(fresh.iter().cloned());

    let rule = &ctx.config.escalation.multi_environment;
    let since = ctx.now - secs(rule.window_secs);
    let recent: Vec<&Member> = members.iter().filter(|m| m.opened_at >= since).collect();
    let environments: BTreeSet<&str> = recent.iter().map(|m| m.environment).collect();
    if environments.len() >= rule.environments {
        let reason = format!(
            "{} environments have open incidents within {} min ({}): runbook \"Multiple environments affected\"",
            environments.len(),
            rule.window_secs / 60,
            environments.iter().copied().collect::<Vec<_>>().join(", ")
        );
        escalate(ctx, actions, &mut extra, &recent, rule.level, &reason);
    }

    let outage = &ctx.config.escalation.outage;
    let since = ctx.now - secs(outage.window_secs);
    let signatures: BTreeSet<&str> = fresh.iter().filter_map(|f| f.signature).collect();
    for signature in signatures {
        let same: Vec<&Member> = members
            .iter()
            .filter(|m| m.opened_at >= since && m.signature == Some(signature))
            .collect();
        let pipelines: BTreeSet<&str> = same.iter().map(|m| m.pipeline).collect();
        if pipelines.len() >= outage.pipelines {
            let reason = format!(
                "{} pipelines failed with the same AWS error ({signature}) within {} min: possible AWS service outage",
                pipelines.len(),
                outage.window_secs / 60
            );
            escalate(ctx, actions, &mut extra, &same, outage.level, &reason);
        }
    }
    extra
}

fn escalate(
    ctx: Ctx<'_>,
    decided: &[Action],
    actions: &mut Vec<Action>,
    members: &[&Member],
    level: usize,
    reason: &str,
) {
    for member in members {
        if member.reached.is_some_and(|r| r >= level) {
            continue;
        }
        let duplicate = decided.iter().chain(actions.iter()).any(|a| {
            matches!(a, Action::Escalate { key, level: l, .. } if *key == member.key && *l >= level)
        });
        if duplicate {
            continue;
        }
        let Some(env) = ctx.config.environment(member.environment) else {
            continue;
        };
        actions.extend(notifications::escalate(
            ctx,
            env,
            member.key,
            level,
            reason.to_string(),
        ));
    }
}
