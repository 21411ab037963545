//! Who gets told: the environment's Slack channel and SNS topic, plus the level's own targets
//! for escalations.

use super::Ctx;
use crate::config::Environment;
use crate::decision::{Action, Channel, Notification, NotificationKind};

/// Notifications of `kind` for an incident in `env`; `levels` are the escalation levels the
/// message is addressed to (their mentions and extra SNS topics are added).
pub(crate) fn build(
    ctx: Ctx<'_>,
    env: &Environment,
    kind: NotificationKind,
    levels: &[usize],
) -> Vec<Notification> {
    let mut out = Vec::new();
    let mentions: Vec<&str> = levels
        .iter()
        .filter_map(|l| ctx.config.escalation.levels.get(*l))
        .filter_map(|l| l.slack_mention.as_deref())
        .collect();
    if ctx.config.notifiers.slack.is_some() {
        out.push(Notification {
            channel: Channel::Slack {
                channel: env.slack_channel.clone(),
            },
            kind,
            mention: (!mentions.is_empty()).then(|| mentions.join(" ")),
        });
    }
    if let Some(topic) = &env.sns_topic_arn {
        out.push(Notification {
            channel: Channel::Sns {
                topic_arn: topic.clone(),
            },
            kind,
            mention: None,
        });
    }
    if ctx.config.notifiers.sns_enabled {
        for level in levels {
            let Some(topic) = ctx
                .config
                .escalation
                .levels
                .get(*level)
                .and_then(|l| l.sns_topic_arn.as_ref())
            else {
                continue;
            };
            let channel = Channel::Sns {
                topic_arn: topic.clone(),
            };
            if !out.iter().any(|n| n.channel == channel) {
                out.push(Notification {
                    channel,
                    kind,
                    mention: None,
                });
            }
        }
    }
    out
}

/// Notify escalation level `level` about incident `key` now, or `None` if no such level exists.
pub(crate) fn escalate(
    ctx: Ctx<'_>,
    env: &Environment,
    key: &str,
    level: usize,
    reason: String,
) -> Option<Action> {
    let level_config = ctx.config.escalation.levels.get(level)?;
    Some(Action::Escalate {
        key: key.to_string(),
        level,
        level_id: level_config.id.clone(),
        reason,
        notifications: build(ctx, env, NotificationKind::Escalated, &[level]),
    })
}
