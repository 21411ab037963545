//! Which fields of what the store keeps hold untrusted text. Identities (incident keys, pipeline
//! and environment names, execution ids, log stream names) are left as they are: they are
//! matched against AWS and the configuration, and they are escaped wherever they are shown.

use super::Redactor;
use crate::decision::{Action, Decision, ErrorInfo, IncidentUpdate, OpenIncident};
use crate::record::{DiagnosticResult, Incident, TimelineEntry};

/// A value whose untrusted text can be cleaned in place.
pub trait Clean {
    fn clean(&mut self, r: &Redactor);
}

impl Clean for String {
    fn clean(&mut self, r: &Redactor) {
        r.clean_string(self);
    }
}

impl<T: Clean> Clean for Option<T> {
    fn clean(&mut self, r: &Redactor) {
        if let Some(v) = self {
            v.clean(r);
        }
    }
}

impl<T: Clean> Clean for Vec<T> {
    fn clean(&mut self, r: &Redactor) {
        for v in self {
            v.clean(r);
        }
    }
}

impl<A: Clean, B: Clean> Clean for (A, B) {
    fn clean(&mut self, r: &Redactor) {
        self.0.clean(r);
        self.1.clean(r);
    }
}

impl Clean for ErrorInfo {
    fn clean(&mut self, r: &Redactor) {
        self.code.clean(r);
        self.summary.clean(r);
        self.external_url.clean(r);
    }
}

impl Clean for OpenIncident {
    fn clean(&mut self, r: &Redactor) {
        self.stage.clean(r);
        self.action.clean(r);
        self.alarm.clean(r);
        self.error.clean(r);
        self.title.clean(r);
    }
}

impl Clean for IncidentUpdate {
    fn clean(&mut self, r: &Redactor) {
        self.stage.clean(r);
        self.action.clean(r);
        self.alarm.clean(r);
        self.error.clean(r);
    }
}

impl Clean for Action {
    fn clean(&mut self, r: &Redactor) {
        match self {
            Action::Open(open) => open.clean(r),
            Action::Update { update, reason, .. } => {
                update.clean(r);
                reason.clean(r);
            }
            Action::Refine { reason, .. }
            | Action::Resolve { reason, .. }
            | Action::Escalate { reason, .. } => reason.clean(r),
        }
    }
}

impl Clean for Decision {
    fn clean(&mut self, r: &Redactor) {
        self.actions.clean(r);
        self.ignored.clean(r);
    }
}

impl Clean for DiagnosticResult {
    fn clean(&mut self, r: &Redactor) {
        self.summary.clean(r);
        r.clean_lines(&mut self.lines);
    }
}

impl Clean for TimelineEntry {
    fn clean(&mut self, r: &Redactor) {
        self.text.clean(r);
    }
}

impl Clean for Incident {
    fn clean(&mut self, r: &Redactor) {
        self.stage.clean(r);
        self.action.clean(r);
        self.alarms.clean(r);
        self.error.clean(r);
        self.title.clean(r);
        self.acknowledged_by.clean(r);
        self.resolution.clean(r);
        self.diagnosis.clean(r);
    }
}
