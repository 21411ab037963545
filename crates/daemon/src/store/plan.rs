//! What storing one decision writes, planned once for both backends: which incidents to create
//! or update, their timeline, deadlines to cancel and schedule, and outbox items with their due
//! times. A backend loads the incidents involved, asks [`apply`] what to write, and persists the
//! answer atomically (the embedded store in one SQLite transaction, the DynamoDB store in one
//! `TransactWriteItems` with conditions). How an incident changes is the core's
//! (`pipeline_responder_core::transition`); this module only collects the writes.

use super::{Applied, InputRecord};
use chrono::{DateTime, Utc};
use pipeline_responder_core::decision::{Action, Deadline, Decision, Notification};
use pipeline_responder_core::record::{action_key, Incident, TimelineEntry, TimelineKind};
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

/// A printable channel name (never a URL or token).
pub fn channel_name(n: &Notification) -> String {
    n.channel.to_string()
}
