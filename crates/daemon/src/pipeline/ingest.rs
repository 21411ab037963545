//! One input, from any source, through parse → de-duplicate → rules → store. The caller
//! acknowledges the input (deletes the SQS message, answers the HTTP request) only when this
//! returns `Ok`: by then every effect is durably stored.

use crate::metrics::metrics;
use crate::pipeline::diagnose::Diagnoser;
use crate::store::{Applied, InputRecord, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use pipeline_responder_core::config::Config;
use pipeline_responder_core::decision::Action;
use pipeline_responder_core::event::{parse_message, Event, ParseError, Parsed};
use pipeline_responder_core::rules;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_util::task::TaskTracker;

/// What happened to an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Parsed and its effects stored (possibly none).
    Stored {
        applied: Applied,
        kind: &'static str,
    },
    /// Already processed before (redelivery or the same transition by another route).
    Duplicate,
    /// Well-formed but not for us (unknown detail-type, SNS subscription confirmation).
    Ignored { kind: String, reason: String },
}

/// Why an input could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Bad input: leave it to the dead-letter queue.
    #[error("rejected: {0}")]
    Rejected(#[from] ParseError),
    /// The store failed: leave the input for a retry.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How far back the rules look at resolved incidents (recurrence rules, rejected approvals).
const HISTORY_DAYS: i64 = 8;

/// Parses, decides and stores inputs; wakes the outbox worker when there is something to send.
#[derive(Debug, Clone)]
pub struct Ingest {
    config: Arc<Config>,
    store: Store,
    /// Decide-and-store is serialised so that two inputs about the same failure never both see
    /// "no incident yet" (the store's conditional insert is the second line of defence).
    decide: Arc<Mutex<()>>,
    /// Wakes the outbox when posts were queued, the escalation engine when deadlines changed.
    wakeups: crate::wakeups::Wakeups,
    /// Runs diagnostics of new incidents in the background (never before the input is stored).
    diagnoser: Option<Diagnoser>,
    /// Tracks the diagnostic tasks so shutdown can wait for them.
    tasks: TaskTracker,
}

impl Ingest {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        wakeups: crate::wakeups::Wakeups,
        diagnoser: Option<Diagnoser>,
        tasks: TaskTracker,
    ) -> Self {
        Self {
            config,
            store,
            decide: Arc::new(Mutex::new(())),
            wakeups,
            diagnoser,
            tasks,
        }
    }

    /// Handles one message body from `source` (`sqs`, `http`: a metrics label).
    pub async fn handle(
        &self,
        source: &'static str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Handled, HandleError> {
        let m = metrics();
        match parse_message(body) {
            Err(e) => {
                m.events_rejected
                    .with_label_values(&[source, e.reason()])
                    .inc();
                Err(e.into())
            }
            Ok(Parsed::Ignored { reason, kind }) => {
                m.events_ignored.with_label_values(&[source]).inc();
                Ok(Handled::Ignored { kind, reason })
            }
            Ok(Parsed::Event(event)) => self.handle_event(source, &event, now).await,
        }
    }

    /// Whether this event (by id or transition) was stored before; false when the store cannot
    /// tell (the caller then does the work, and the store de-duplicates it).
    pub async fn is_processed(&self, event: &Event) -> bool {
        self.store
            .is_processed(&event.id, &event.transition_key())
            .await
            .unwrap_or(false)
    }

    /// Handles one parsed event (the watcher's synthesised events come in here).
    pub async fn handle_event(
        &self,
        source: &'static str,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<Handled, HandleError> {
        let result = self.decide_and_store(event, now).await;
        let m = metrics();
        match &result {
            Ok(Handled::Duplicate) => m.events_duplicate.with_label_values(&[source]).inc(),
            Ok(_) => m
                .events_received
                .with_label_values(&[source, event.kind_name()])
                .inc(),
            Err(_) => m.store_errors.with_label_values(&["apply"]).inc(),
        }
        result
    }

    async fn decide_and_store(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<Handled, HandleError> {
        let transition = event.transition_key();
        if self.store.is_processed(&event.id, &transition).await? {
            return Ok(Handled::Duplicate);
        }
        let _serial = self.decide.lock().await;
        let view = self.store.view(now - Duration::days(HISTORY_DAYS)).await?;
        let decision = rules::evaluate(&self.config, event, &view, now);
        tracing::debug!(event_id = %event.id, kind = event.kind_name(), actions = decision.actions.len(), ignored = ?decision.ignored, "Decided");
        // What happens to existing incidents, for the log (every line names its incident).
        let changes: Vec<(String, &'static str, String)> = decision
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Resolve { key, reason, .. } => {
                    Some((key.clone(), "Incident resolved", reason.clone()))
                }
                Action::Refine { key, reason, .. } => {
                    Some((key.clone(), "Incident refined", reason.clone()))
                }
                Action::Escalate { key, reason, .. } => {
                    Some((key.clone(), "Incident escalated", reason.clone()))
                }
                Action::Update { key, reason, .. } => {
                    Some((key.clone(), "Incident updated", reason.clone()))
                }
                Action::Open(_) => None,
            })
            .collect();
        let opens: Vec<(String, &'static str, &'static str, String)> = decision
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Open(o) => Some((
                    o.key.clone(),
                    o.incident_type.as_str(),
                    o.severity.as_str(),
                    o.environment.clone(),
                )),
                _ => None,
            })
            .collect();
        let input = InputRecord {
            id: event.id.clone(),
            transition,
            event_time: event.time,
        };
        let rerun: Vec<(String, Vec<pipeline_responder_core::config::Diagnostic>)> = decision
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Update { key, update, .. } if !update.rerun_diagnostics.is_empty() => {
                    Some((key.clone(), update.rerun_diagnostics.clone()))
                }
                _ => None,
            })
            .collect();
        // Incidents opened with diagnostics to run: their first post waits for the results (up
        // to `first_post_wait_secs`). One without diagnostics is posted at once, no task spawned.
        let to_diagnose: Vec<String> = decision
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Open(o) if !o.diagnostics.is_empty() => Some(o.key.clone()),
                _ => None,
            })
            .collect();
        let hold = (self.config.daemon.first_post_wait_secs > 0
            && self.diagnoser.is_some()
            && !to_diagnose.is_empty())
        .then(|| now + Duration::seconds(self.config.daemon.first_post_wait_secs as i64));
        let applied = self.store.apply(input, decision, now, hold).await?;
        if applied.duplicate {
            return Ok(Handled::Duplicate);
        }
        // Event age when its incident was stored: the store path's latency (plus transport).
        let stored_ms = (Utc::now() - event.time).num_milliseconds();
        for key in &applied.opened {
            tracing::info!(incident_key = %key, event_id = %event.id, stored_ms, "Incident opened");
            if let Some((_, kind, severity, env)) = opens.iter().find(|o| &o.0 == key) {
                metrics()
                    .incidents_opened
                    .with_label_values(&[kind, severity, env.as_str()])
                    .inc();
            }
        }
        for (key, what, reason) in &changes {
            tracing::info!(incident_key = %key, event_id = %event.id, reason = %reason, "{what}");
        }
        if let Some(diagnoser) = &self.diagnoser {
            for key in applied.opened.iter().filter(|k| to_diagnose.contains(k)) {
                let (d, key) = (diagnoser.clone(), key.clone());
                self.tasks.spawn(async move { d.run(&key, None).await });
            }
            for (key, list) in rerun {
                let d = diagnoser.clone();
                self.tasks
                    .spawn(async move { d.run(&key, Some(list)).await });
            }
        }
        if applied.queued > 0 {
            self.wakeups.posts_queued();
        }
        if !applied.opened.is_empty() {
            self.wakeups.deadlines_changed();
        }
        Ok(Handled::Stored {
            applied,
            kind: event.kind_name(),
        })
    }
}
