//! What each store operation changes, decided once for both backends. A backend loads the
//! incidents involved, asks this module what to write, and persists the answer atomically (the
//! embedded store in one SQLite transaction, the DynamoDB store in one `TransactWriteItems` with
//! conditions). So the two stores cannot drift apart in what an input, an acknowledgement or a
//! fired deadline means.

use super::{Applied, DueDeadline, InputRecord, OutboxItem};
use chrono::{DateTime, Utc};
use pipeline_responder_core::decision::{
    Action, Deadline, DeadlineKind, Decision, IncidentUpdate, Notification, NotificationKind,
};
use pipeline_responder_core::incident::IncidentStatus;
use pipeline_responder_core::record::{
    action_key, DiagnosticResult, Incident, TimelineEntry, TimelineKind,
};
use std::collections::HashMap;

/// How long a process holds an outbox item it is sending: longer than one attempt (HTTP timeout
/// 10 s), short enough that a post held by a replica that died goes out soon after.
pub const LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// Until when a one-off claim made at `now` is kept (see `Backend::claim_once`): `keep_days`
/// later, at least one day, so that a claim never lapses before the job it guards is over. Both
/// stores treat a claim whose time has passed as gone, whether or not it was cleaned up yet.
pub fn claim_expires(now: DateTime<Utc>, keep_days: u32) -> DateTime<Utc> {
    now + chrono::TimeDelta::days(i64::from(keep_days.max(1)))
}

/// A notification to put in the outbox, not to be sent before `due`.
#[derive(Debug, Clone)]
pub struct Queued {
    pub key: String,
    pub notification: Notification,
    pub note: Option<String>,
    pub due: DateTime<Utc>,
}

/// Everything one input changes.
#[derive(Debug, Default)]
pub struct Changes {
    /// Incidents to write, each once, with whether it is new (a conditional create).
    pub incidents: Vec<(Incident, bool)>,
    pub timeline: Vec<(String, TimelineEntry)>,
    /// Keys whose stored pending deadlines are cancelled (before `schedule` is written).
    pub cancel: Vec<String>,
    pub schedule: Vec<(String, Deadline)>,
    pub outbox: Vec<Queued>,
    pub applied: Applied,
}

/// The incidents a decision touches (to load before planning), each once.
pub fn keys(decision: &Decision) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for key in decision.actions.iter().map(action_key) {
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
    }
    keys
}

/// What storing `decision` changes, given the incidents as stored now (`loaded`, by key; a key
/// missing from it has no incident).
pub fn apply(
    input: &InputRecord,
    decision: &Decision,
    now: DateTime<Utc>,
    hold_first_post_until: Option<DateTime<Utc>>,
    mut loaded: HashMap<String, Incident>,
) -> Changes {
    let mut changes = Changes::default();
    // Incidents changed so far, in first-touched order; `true` = created by this input.
    let mut touched: Vec<(String, bool)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let touch = |touched: &mut Vec<(String, bool)>, key: &str, new: bool| {
        if !touched.iter().any(|(k, _)| k == key) {
            touched.push((key.to_string(), new));
        }
    };
    for action in &decision.actions {
        let key = action_key(action);
        if let Action::Open(open) = action {
            if loaded.contains_key(key) {
                // Another input (or replica) opened it first: this one only joins.
                skipped.push(key.to_string());
                continue;
            }
            loaded.insert(
                key.to_string(),
                Incident::open(open, &input.id, input.event_time),
            );
            touch(&mut touched, key, true);
            changes.timeline.push((
                key.to_string(),
                TimelineEntry {
                    at: now,
                    kind: TimelineKind::Opened,
                    text: format!("opened by {} event {}", decision.input_kind, input.id),
                },
            ));
            for deadline in &open.schedule {
                changes.schedule.push((key.to_string(), deadline.clone()));
            }
            // The first post waits briefly for the diagnostics, so it can say what failed.
            let due = if open.diagnostics.is_empty() {
                now
            } else {
                hold_first_post_until.unwrap_or(now)
            };
            for n in &open.notifications {
                changes.outbox.push(Queued {
                    key: key.to_string(),
                    notification: n.clone(),
                    note: None,
                    due,
                });
                changes.applied.queued += 1;
            }
            changes.applied.opened.push(key.to_string());
            continue;
        }
        if skipped.iter().any(|k| k == key) {
            continue;
        }
        let Some(incident) = loaded.get_mut(key) else {
            continue;
        };
        if let Action::Escalate { level, .. } = action {
            // Decided on an older view (another replica escalated meanwhile): notify once.
            if incident.highest_level_notified.is_some_and(|h| h >= *level) {
                continue;
            }
        }
        let Some(entry) = incident.apply(action, now) else {
            continue;
        };
        touch(&mut touched, key, false);
        changes.timeline.push((key.to_string(), entry));
        let (notifications, note): (&[Notification], Option<String>) = match action {
            Action::Refine {
                schedule,
                notifications,
                reason,
                ..
            } => {
                cancel(&mut changes, key);
                for deadline in schedule {
                    changes.schedule.push((key.to_string(), deadline.clone()));
                }
                (notifications, Some(reason.clone()))
            }
            Action::Resolve {
                notifications,
                reason,
                ..
            } => {
                cancel(&mut changes, key);
                (notifications, Some(reason.clone()))
            }
            Action::Escalate {
                notifications,
                reason,
                level_id,
                ..
            } => (notifications, Some(format!("to {level_id}: {reason}"))),
            Action::Update { notifications, .. } => (notifications, None),
            Action::Open(_) => (&[], None),
        };
        for n in notifications {
            changes.outbox.push(Queued {
                key: key.to_string(),
                notification: n.clone(),
                note: note.clone(),
                due: now,
            });
            changes.applied.queued += 1;
        }
    }
    for (key, new) in touched {
        if let Some(incident) = loaded.remove(&key) {
            changes.incidents.push((incident, new));
        }
    }
    changes
}

/// Cancels `key`'s stored pending deadlines and any this input scheduled before.
fn cancel(changes: &mut Changes, key: &str) {
    if !changes.cancel.iter().any(|k| k == key) {
        changes.cancel.push(key.to_string());
    }
    changes.schedule.retain(|(k, _)| k != key);
}

/// What firing a deadline does to its incident.
#[derive(Debug)]
pub struct Fire {
    /// Whether the deadline still applies (else it is claimed as skipped).
    pub applies: bool,
    /// The incident changed (its highest level notified).
    pub incident_changed: bool,
    pub entry: Option<TimelineEntry>,
    /// The note shown with the notifications.
    pub note: String,
}

/// Decides a due deadline against the incident as it is now (ack, resolution, CRITICAL
/// condition, level already reached), updating `incident` when it fires.
pub fn fire(incident: &mut Incident, due: &DueDeadline, now: DateTime<Utc>) -> Fire {
    let state = pipeline_responder_core::rules::DeadlineState {
        status: incident.status,
        critical_findings: incident.critical_findings,
        highest_level_notified: incident.highest_level_notified,
    };
    let d = &due.deadline;
    if !pipeline_responder_core::rules::deadline_applies(d, state) {
        return Fire {
            applies: false,
            incident_changed: false,
            entry: None,
            note: String::new(),
        };
    }
    let (what, incident_changed) = match d.kind {
        DeadlineKind::Escalation => {
            incident.highest_level_notified = Some(
                incident
                    .highest_level_notified
                    .map_or(d.level, |h| h.max(d.level)),
            );
            (
                format!(
                    "{}: not acknowledged by {}",
                    d.level_id,
                    d.at.format("%H:%M UTC")
                ),
                true,
            )
        }
        DeadlineKind::Reminder => (
            format!(
                "{}: still waiting since {}",
                d.level_id,
                incident.opened_at.format("%H:%M UTC")
            ),
            false,
        ),
    };
    let note = match d.kind {
        DeadlineKind::Escalation => format!("to {what}"),
        DeadlineKind::Reminder => what.clone(),
    };
    Fire {
        applies: true,
        incident_changed,
        entry: Some(TimelineEntry {
            at: now,
            kind: TimelineKind::Escalated,
            text: what,
        }),
        note,
    }
}

/// Acknowledges an open incident; `None` when it is not open (already acknowledged, resolved).
pub fn acknowledge(incident: &mut Incident, by: &str, now: DateTime<Utc>) -> Option<TimelineEntry> {
    if incident.status != IncidentStatus::Open {
        return None;
    }
    incident.status = IncidentStatus::Acknowledged;
    incident.acknowledged_at = Some(now);
    incident.acknowledged_by = Some(by.to_string());
    Some(TimelineEntry {
        at: now,
        kind: TimelineKind::Acknowledged,
        text: format!("acknowledged by {by}"),
    })
}

/// Resolves an active incident by hand; `None` when it is already resolved. Returns the entry
/// and the reason (the note of the resolution notifications).
pub fn resolve(
    incident: &mut Incident,
    by: &str,
    now: DateTime<Utc>,
) -> Option<(TimelineEntry, String)> {
    if !incident.status.is_active() {
        return None;
    }
    let reason = format!("resolved by {by}");
    incident.status = IncidentStatus::Resolved;
    incident.resolved_at = Some(now);
    incident.resolution = Some(reason.clone());
    Some((
        TimelineEntry {
            at: now,
            kind: TimelineKind::Resolved,
            text: reason.clone(),
        },
        reason,
    ))
}

/// Records diagnostic results and the facts they revealed; returns the timeline entries.
pub fn diagnosis(
    incident: &mut Incident,
    results: &[DiagnosticResult],
    update: &IncidentUpdate,
    now: DateTime<Utc>,
) -> Vec<TimelineEntry> {
    incident.record_diagnosis(results);
    incident.merge(update);
    results
        .iter()
        .map(|r| TimelineEntry {
            at: now,
            kind: TimelineKind::Diagnostic,
            text: format!(
                "{}{}: {}",
                r.name,
                if r.ok { "" } else { " (failed)" },
                r.summary
            ),
        })
        .collect()
}

/// Follow-ups of a diagnosis: those of `candidates` (the rules' thread updates for the
/// incident) whose channel already got the first post (`sent`: the incident's sent
/// notifications), so that a reply has a thread to go to.
pub fn follow_ups(sent: &[Notification], candidates: &[Notification]) -> Vec<Notification> {
    let mut out: Vec<Notification> = Vec::new();
    for c in candidates {
        let opened = sent
            .iter()
            .any(|n| n.kind == NotificationKind::Opened && n.channel == c.channel);
        if opened && !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

/// Timeline entry of a sent notification.
pub fn sent(item: &OutboxItem, now: DateTime<Utc>) -> TimelineEntry {
    TimelineEntry {
        at: now,
        kind: TimelineKind::Notified,
        text: format!(
            "sent {} via {}",
            kind_name(&item.notification),
            channel_name(&item.notification)
        ),
    }
}

/// Timeline entry of a notification given up on.
pub fn gave_up(item: &OutboxItem, error: &str, now: DateTime<Utc>) -> TimelineEntry {
    TimelineEntry {
        at: now,
        kind: TimelineKind::NotifyFailed,
        text: format!("{}: gave up: {error}", channel_name(&item.notification)),
    }
}

/// Timeline entry of a notification covered by a silence.
pub fn silenced(item: &OutboxItem, silence_id: i64, now: DateTime<Utc>) -> TimelineEntry {
    TimelineEntry {
        at: now,
        kind: TimelineKind::Notified,
        text: format!(
            "{} not sent: silence {silence_id}",
            channel_name(&item.notification)
        ),
    }
}

/// Timeline entry of a notification grouped into a storm summary.
pub fn summarized(now: DateTime<Utc>) -> TimelineEntry {
    TimelineEntry {
        at: now,
        kind: TimelineKind::Notified,
        text: "included in a storm summary post".into(),
    }
}

fn kind_name(n: &Notification) -> String {
    serde_json::to_value(n.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A printable channel name (never a URL or token).
pub fn channel_name(n: &Notification) -> String {
    n.channel.to_string()
}
