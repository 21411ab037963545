//! Cross-incident escalation (runbook "Escalation Procedures"): several environments affected →
//! L2; the same AWS error across pipelines (an AWS outage) → L3.

use super::plan::secs;
use super::{notifications, Ctx};
use crate::decision::Action;
use crate::incident::{IncidentType, IncidentView, Severity};
use std::collections::BTreeSet;

/// How many distinct pipelines the outage rule counts before it says "N or more" (counting
/// further would make each event of a storm cost more).
const COUNT_PIPELINES_UP_TO: usize = 100;

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
fn escalations<'a>(ctx: Ctx<'a>, actions: &'a [Action]) -> Vec<Action> {
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
    let member = |i: &'a IncidentView| Member {
        key: &i.key,
        environment: &i.environment,
        pipeline: &i.pipeline,
        signature: i.error_signature.as_deref(),
        reached: i.highest_level_notified,
        opened_at: i.opened_at,
    };
    let not_fresh = |i: &&IncidentView| !fresh.iter().any(|f| f.key == i.key);

    // The view answers from its indexes: the environments with a recent member, and only the
    // members that have not reached the level yet (so a storm costs the same per event).
    let rule = &ctx.config.escalation.multi_environment;
    let since = ctx.now - secs(rule.window_secs);
    let fresh_recent = || fresh.iter().filter(move |m| m.opened_at >= since);
    let mut environments: BTreeSet<&str> = ctx.view.member_environments_since(since);
    environments.extend(fresh_recent().map(|m| m.environment));
    if environments.len() >= rule.environments {
        let reason = format!(
            "{} environments have open incidents within {} min ({}): runbook \"Multiple environments affected\"",
            environments.len(),
            rule.window_secs / 60,
            environments.iter().copied().collect::<Vec<_>>().join(", ")
        );
        let recent: Vec<Member> = ctx
            .view
            .members_below(rule.level, since)
            .into_iter()
            .filter(not_fresh)
            .map(member)
            .chain(fresh_recent().cloned())
            .collect();
        escalate(ctx, actions, &mut extra, &recent, rule.level, &reason);
    }

    let outage = &ctx.config.escalation.outage;
    let since = ctx.now - secs(outage.window_secs);
    let signatures: BTreeSet<&str> = fresh.iter().filter_map(|f| f.signature).collect();
    for signature in signatures {
        let fresh_same = || {
            fresh
                .iter()
                .filter(move |m| m.opened_at >= since && m.signature == Some(signature))
        };
        let mut pipelines =
            ctx.view
                .signature_pipelines_since(signature, since, COUNT_PIPELINES_UP_TO);
        pipelines.extend(fresh_same().map(|m| m.pipeline));
        if pipelines.len() >= outage.pipelines {
            let count = if pipelines.len() >= COUNT_PIPELINES_UP_TO {
                format!("{COUNT_PIPELINES_UP_TO} or more")
            } else {
                pipelines.len().to_string()
            };
            let reason = format!(
                "{count} pipelines failed with the same AWS error ({signature}) within {} min: possible AWS service outage",
                outage.window_secs / 60
            );
            let same: Vec<Member> = ctx
                .view
                .signature_members_below(signature, outage.level, since)
                .into_iter()
                .filter(not_fresh)
                .map(member)
                .chain(fresh_same().cloned())
                .collect();
            escalate(ctx, actions, &mut extra, &same, outage.level, &reason);
        }
    }
    extra
}

fn escalate(
    ctx: Ctx<'_>,
    decided: &[Action],
    actions: &mut Vec<Action>,
    members: &[Member],
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
