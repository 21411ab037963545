//! Every way a stored incident changes, each written once: the rules' actions
//! ([`Incident::apply`]), a fired deadline, an acknowledgement, a resolution by hand, a diagnosis,
//! and the timeline entries of what the outbox did. Pure: both stores load an incident, call one
//! of these, and persist the result atomically, so they cannot drift apart in what an input, an
//! acknowledgement or a deadline means.

use crate::decision::NotificationKind;
use crate::decision::{Action, Deadline, DeadlineKind, IncidentUpdate, Notification};
use crate::incident::IncidentStatus;
use crate::record::{DiagnosticResult, Incident, TimelineEntry, TimelineKind};
use crate::rules::{deadline_applies, DeadlineState};
use chrono::{DateTime, Utc};

/// What firing a deadline did to its incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// The incident changed (its highest level notified); persist it.
    pub incident_changed: bool,
    pub entry: TimelineEntry,
    /// The note shown with the deadline's notifications.
    pub note: String,
}

fn entry(at: DateTime<Utc>, kind: TimelineKind, text: String) -> TimelineEntry {
    TimelineEntry { at, kind, text }
}

impl Incident {
    /// Applies one action of a decision about this incident; returns the timeline entry, or
    /// `None` when the action changes nothing (an open, a resolution of a resolved incident, an
    /// escalation to a level already reached: decided on an older view of the incident).
    pub fn apply(&mut self, action: &Action, now: DateTime<Utc>) -> Option<TimelineEntry> {
        match action {
            Action::Open(_) => None,
            Action::Update { update, reason, .. } => {
                self.merge(update);
                Some(entry(now, TimelineKind::Signal, reason.clone()))
            }
            Action::Refine {
                from,
                to,
                severity,
                reason,
                ..
            } => {
                self.incident_type = *to;
                self.severity = *severity;
                self.title = format!("{} — {}", to.title(), self.pipeline);
                self.runbook_section = to.runbook_section().to_string();
                self.next_steps = to.next_steps().to_string();
                Some(entry(
                    now,
                    TimelineKind::Refined,
                    format!("{from} → {to}: {reason}"),
                ))
            }
            Action::Resolve { reason, .. } => self.resolve(reason, now),
            Action::Escalate {
                level,
                level_id,
                reason,
                ..
            } => self.reach_level(*level).then(|| {
                entry(
                    now,
                    TimelineKind::Escalated,
                    format!("{level_id}: {reason}"),
                )
            }),
        }
    }

    /// Marks escalation level `level` as notified; false when it (or a higher one) already was.
    fn reach_level(&mut self, level: usize) -> bool {
        if self.highest_level_notified.is_some_and(|h| h >= level) {
            return false;
        }
        self.highest_level_notified = Some(level);
        true
    }

    /// Resolves an active incident with `reason`; `None` when it is already resolved.
    pub fn resolve(&mut self, reason: &str, now: DateTime<Utc>) -> Option<TimelineEntry> {
        if !self.status.is_active() {
            return None;
        }
        self.status = IncidentStatus::Resolved;
        self.resolved_at = Some(now);
        self.resolution = Some(reason.to_string());
        Some(entry(now, TimelineKind::Resolved, reason.to_string()))
    }

    /// Resolves an active incident by hand, in `by`'s name (the entry's text is the reason).
    pub fn resolve_by(&mut self, by: &str, now: DateTime<Utc>) -> Option<TimelineEntry> {
        self.resolve(&format!("resolved by {by}"), now)
    }

    /// Acknowledges an open incident; `None` when it is not open (already acknowledged,
    /// resolved).
    pub fn acknowledge(&mut self, by: &str, now: DateTime<Utc>) -> Option<TimelineEntry> {
        if self.status != IncidentStatus::Open {
            return None;
        }
        self.status = IncidentStatus::Acknowledged;
        self.acknowledged_at = Some(now);
        self.acknowledged_by = Some(by.to_string());
        Some(entry(
            now,
            TimelineKind::Acknowledged,
            format!("acknowledged by {by}"),
        ))
    }

    /// Records an operator's action; an answered approval resolves the incident as approved or
    /// rejected by that person. Always one timeline entry (refusals are audited too).
    pub fn record_action(
        &mut self,
        record: &crate::actions::ActionRecord,
        now: DateTime<Utc>,
    ) -> TimelineEntry {
        self.actions.push(record.clone());
        let line = record.line();
        if record.resolves() && self.status.is_active() {
            self.status = IncidentStatus::Resolved;
            self.resolved_at = Some(now);
            self.resolution = Some(line.clone());
        }
        entry(now, TimelineKind::Action, line)
    }

    /// Fires a due deadline against the incident as it is now; `None` when it no longer applies
    /// (acknowledged or resolved, its condition does not hold, its level was already reached).
    pub fn fire(&mut self, d: &Deadline, now: DateTime<Utc>) -> Option<Fired> {
        let state = DeadlineState {
            status: self.status,
            critical_findings: self.critical_findings,
            highest_level_notified: self.highest_level_notified,
        };
        if !deadline_applies(d, state) {
            return None;
        }
        let (what, note, incident_changed) = match d.kind {
            DeadlineKind::Escalation => {
                let changed = self.reach_level(d.level);
                let what = format!(
                    "{}: not acknowledged by {}",
                    d.level_id,
                    d.at.format("%H:%M UTC")
                );
                (what.clone(), format!("to {what}"), changed)
            }
            DeadlineKind::Reminder => {
                let what = format!(
                    "waiting {} min: {}, open since {}",
                    (d.at - self.opened_at).num_minutes().max(0),
                    d.level_id,
                    self.opened_at.format("%H:%M UTC")
                );
                // A first reminder to a level (an approval's) counts as reaching it, so the
                // resolution tells whoever it reached.
                (what.clone(), what, self.reach_level(d.level))
            }
        };
        Some(Fired {
            incident_changed,
            entry: entry(now, TimelineKind::Escalated, what),
            note,
        })
    }

    /// Records diagnostic results (replacing earlier runs of the same diagnostics) and the facts
    /// they revealed; returns the timeline entries.
    pub fn diagnose(
        &mut self,
        results: &[DiagnosticResult],
        update: &IncidentUpdate,
        now: DateTime<Utc>,
    ) -> Vec<TimelineEntry> {
        for result in results {
            self.diagnosis.retain(|d| d.name != result.name);
            self.diagnosis.push(result.clone());
        }
        self.merge(update);
        results
            .iter()
            .map(|r| {
                let failed = if r.ok { "" } else { " (failed)" };
                let text = format!("{}{failed}: {}", r.name, r.summary);
                entry(now, TimelineKind::Diagnostic, text)
            })
            .collect()
    }

    /// Adds facts learnt later (from an event or a diagnostic) without overwriting known ones.
    fn merge(&mut self, u: &IncidentUpdate) {
        fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
            if slot.is_none() {
                slot.clone_from(value);
            }
        }
        fill(&mut self.execution_id, &u.execution_id);
        fill(&mut self.execution_start, &u.execution_start);
        fill(&mut self.stage, &u.stage);
        fill(&mut self.action, &u.action);
        fill(&mut self.error_signature, &u.error_signature);
        if u.error.is_some() {
            self.error.clone_from(&u.error);
        }
        self.critical_findings |= u.critical_findings;
        self.retryable |= u.retryable;
        if let Some(stream) = &u.build_log_stream {
            self.build_log_stream = Some(stream.clone());
        }
        if let Some(alarm) = &u.alarm {
            if !self.alarms.contains(alarm) {
                self.alarms.push(alarm.clone());
            }
        }
    }
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

/// What the outbox did with one notification, as a timeline line. Channel names are printable
/// (never a URL or token).
impl TimelineEntry {
    pub fn sent(n: &Notification, now: DateTime<Utc>) -> Self {
        let text = format!("sent {} via {}", n.kind.as_str(), n.channel);
        entry(now, TimelineKind::Notified, text)
    }

    pub fn gave_up(n: &Notification, error: &str, now: DateTime<Utc>) -> Self {
        let text = format!("{}: gave up: {error}", n.channel);
        entry(now, TimelineKind::NotifyFailed, text)
    }

    pub fn silenced(n: &Notification, silence_id: i64, now: DateTime<Utc>) -> Self {
        let text = format!("{} not sent: silence {silence_id}", n.channel);
        entry(now, TimelineKind::Notified, text)
    }

    pub fn summarized(now: DateTime<Utc>) -> Self {
        let text = "included in a storm summary post".to_string();
        entry(now, TimelineKind::Notified, text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Until;

    fn deadline(level: usize, kind: DeadlineKind, until: Until) -> Deadline {
        Deadline {
            at: DateTime::from_timestamp(3_600, 0).unwrap(),
            level,
            level_id: format!("L{}", level + 1),
            kind,
            until,
            when: None,
        }
    }

    fn open_incident() -> Incident {
        let opened = DateTime::from_timestamp(3_000, 0).unwrap();
        let t = crate::incident::IncidentType::PipelineExecutionFailure;
        crate::record::tests_support::incident("k1", t, "production", opened)
    }

    #[test]
    fn an_escalation_reaches_each_level_once_however_it_arrives() {
        let mut incident = open_incident();
        let now = DateTime::from_timestamp(4_000, 0).unwrap();
        let escalate = Action::Escalate {
            key: incident.key.clone(),
            level: 1,
            level_id: "L2".into(),
            reason: "by hand".into(),
            notifications: Vec::new(),
        };
        assert!(incident.apply(&escalate, now).is_some());
        assert!(incident.apply(&escalate, now).is_none(), "already at L2");
        let fired = incident.fire(
            &deadline(1, DeadlineKind::Escalation, Until::Acknowledged),
            now,
        );
        assert!(
            fired.is_none(),
            "the deadline of a reached level does not fire"
        );
        let fired = incident
            .fire(
                &deadline(2, DeadlineKind::Escalation, Until::Acknowledged),
                now,
            )
            .unwrap();
        assert!(fired.incident_changed);
        assert_eq!(incident.highest_level_notified, Some(2));
        assert_eq!(fired.note, "to L3: not acknowledged by 01:00 UTC");
    }

    #[test]
    fn a_reminder_repeats_without_changing_the_incident_and_stops_at_resolution() {
        let mut incident = open_incident();
        let now = DateTime::from_timestamp(4_000, 0).unwrap();
        let d = deadline(0, DeadlineKind::Reminder, Until::Resolved);
        let before = incident.clone();
        let fired = incident.fire(&d, now).unwrap();
        assert!(!fired.incident_changed);
        assert_eq!(incident, before);
        assert!(incident.acknowledge("ana", now).is_some());
        assert!(
            incident.acknowledge("ana", now).is_none(),
            "acknowledged once"
        );
        assert!(incident.fire(&d, now).is_some(), "runs until resolution");
        assert!(incident.resolve_by("ana", now).is_some());
        assert!(incident.resolve_by("ana", now).is_none());
        assert!(incident.fire(&d, now).is_none());
    }
}
