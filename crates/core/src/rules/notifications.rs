//! Who gets told. A notification goes to every target of the incident's environment whose
//! notifier takes its kind, plus the targets of the escalation levels it is addressed to; a
//! pager's acknowledgements and resolutions go to every level it paged. The notifiers and what
//! each takes are data ([`crate::config::ChannelSpec`]): nothing here names one, except that
//! mentions are the levels' `slack_mention`s.

use super::Ctx;
use crate::config::Environment;
use crate::decision::{Action, Channel, IncidentUpdate, Notification, NotificationKind};
use crate::incident::IncidentView;

/// Notifications of `kind` for an incident in `env`; `levels` are the escalation levels the
/// message is addressed to (their mentions and their own targets are added).
pub(crate) fn build(
    ctx: Ctx<'_>,
    env: &Environment,
    kind: NotificationKind,
    levels: &[usize],
) -> Vec<Notification> {
    collect(ctx, env, kind, levels, &[])
}

/// Notifications of an acknowledgement or resolution: the environment's targets, and for
/// notifiers that follow levels (pagers) the targets of every level up to the highest paged.
pub(crate) fn closing(
    ctx: Ctx<'_>,
    env: &Environment,
    kind: NotificationKind,
    highest_level_notified: Option<usize>,
) -> Vec<Notification> {
    let paged: Vec<usize> = highest_level_notified.map_or(Vec::new(), |h| (0..=h).collect());
    collect(ctx, env, kind, &[], &paged)
}

fn collect(
    ctx: Ctx<'_>,
    env: &Environment,
    kind: NotificationKind,
    levels: &[usize],
    paged: &[usize],
) -> Vec<Notification> {
    let notifiers = &ctx.config.notifiers;
    let all_levels = &ctx.config.escalation.levels;
    let mentions: Vec<&str> = levels
        .iter()
        .filter_map(|l| all_levels.get(*l))
        .filter_map(|l| l.slack_mention.as_deref())
        .collect();
    let mut out: Vec<Notification> = Vec::new();
    let mut add = |channel_kind: &str, target: &str| {
        let Some(spec) = notifiers.spec(channel_kind).filter(|s| s.takes(kind)) else {
            return;
        };
        let channel = Channel::new(channel_kind, target);
        if out.iter().any(|n| n.channel == channel) {
            return;
        }
        out.push(Notification {
            channel,
            kind,
            mention: (spec.mentions && !mentions.is_empty()).then(|| mentions.join(" ")),
        });
    };
    for (channel_kind, target) in &env.targets {
        add(channel_kind, target);
    }
    for level in levels.iter().filter_map(|l| all_levels.get(*l)) {
        for (channel_kind, target) in &level.targets {
            add(channel_kind, target);
        }
    }
    for level in paged.iter().filter_map(|l| all_levels.get(*l)) {
        for (channel_kind, target) in &level.targets {
            if notifiers
                .spec(channel_kind)
                .is_some_and(|s| s.follows_levels)
            {
                add(channel_kind, target);
            }
        }
    }
    out
}

/// Adds what an input tells to an existing incident; when the update carries news, the
/// notifiers that take thread updates are told.
pub(crate) fn update(
    ctx: Ctx<'_>,
    env: &Environment,
    existing: &IncidentView,
    update: IncidentUpdate,
    reason: String,
) -> Action {
    let notifications = if update.notify {
        build(ctx, env, NotificationKind::Updated, &[])
    } else {
        Vec::new()
    };
    Action::Update {
        key: existing.key.clone(),
        update,
        reason,
        notifications,
    }
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
