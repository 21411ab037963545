//! The store's front door, around whichever backend is configured. Two jobs, both in one place
//! because every write passes here:
//! - **Clean**: untrusted text in what is written (event fields, build-log lines, AWS answers,
//!   the API's `by` and comments, send errors) is cleaned by the one [`Redactor`]: control
//!   characters out, credentials and configured secrets redacted. Posts and API answers are
//!   made from what was stored, so nothing uncleaned is posted or served.
//! - **Health**: whether the last write worked. A failing store makes `/readyz` answer 503 with
//!   the reason, and the SQS consumer holds what it has instead of taking more.

use super::{
    Applied, Backend, Closing, DueDeadline, InputRecord, OutboxItem, Result, Silence, StoreError,
};
use chrono::{DateTime, Utc};
use pipeline_responder_core::actions::ActionRecord;
use pipeline_responder_core::decision::{Decision, IncidentUpdate, Notification};
use pipeline_responder_core::incident::IncidentsView;
use pipeline_responder_core::record::{DiagnosticResult, Incident, TimelineEntry};
use pipeline_responder_core::redact::{Clean, Redactor};
use std::sync::{Arc, Mutex};

/// Whether the store's writes work, as the last one went.
#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: Mutex<Option<String>>,
    last_probe: Mutex<Option<std::time::Instant>>,
    /// Writes that worked, counted (tells the metrics whether their counts can still be true).
    writes: std::sync::atomic::AtomicU64,
}

impl StoreHealth {
    /// Whether a probe write is due (none in the last `every`); claims it when it is.
    pub(super) fn probe_due(&self, every: std::time::Duration) -> bool {
        let mut last = self.last_probe.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= every);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

    /// Why writes fail now, if they do.
    pub fn problem(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many writes worked so far in this process.
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Acquire)
    }

    fn note<T>(&self, result: &Result<T>) {
        if result.is_ok() {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                if failing.take().is_some() {
                    tracing::info!("Store writes work again");
                }
            }
            // Another writer was first, or one item is malformed: the store itself works.
            Err(StoreError::Contended(_) | StoreError::Malformed { .. }) => {}
            Err(e) => {
                if failing.is_none() {
                    tracing::error!(error = %e, "Store writes fail; holding inputs until they work");
                }
                *failing = Some(e.to_string());
            }
        }
    }
}

pub(super) struct Boundary {
    pub(super) inner: Arc<dyn Backend>,
    pub(super) redactor: Redactor,
    pub(super) health: Arc<StoreHealth>,
}

impl Boundary {
    fn clean<T: Clean>(&self, mut value: T) -> T {
        value.clean(&self.redactor);
        value
    }

    fn text(&self, text: &str) -> String {
        self.redactor.clean(text).into_owned()
    }

    fn noted<T>(&self, result: Result<T>) -> Result<T> {
        self.health.note(&result);
        result
    }
}

#[async_trait::async_trait]
impl Backend for Boundary {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn is_processed(&self, id: &str, transition: &str) -> Result<bool> {
        self.inner.is_processed(id, transition).await
    }

    async fn view(&self, since: DateTime<Utc>) -> Result<Arc<IncidentsView>> {
        self.inner.view(since).await
    }

    async fn apply(
        &self,
        input: InputRecord,
        decision: Decision,
        now: DateTime<Utc>,
        hold_first_post_until: Option<DateTime<Utc>>,
    ) -> Result<Applied> {
        let decision = self.clean(decision);
        let result = self
            .inner
            .apply(input, decision, now, hold_first_post_until)
            .await;
        self.noted(result)
    }

    async fn incident(&self, key: &str) -> Result<Option<(Incident, Vec<TimelineEntry>)>> {
        self.inner.incident(key).await
    }

    async fn incidents(&self, active_only: bool) -> Result<Vec<Incident>> {
        self.inner.incidents(active_only).await
    }

    async fn incidents_page(
        &self,
        active_only: bool,
        limit: usize,
        after: Option<super::Cursor>,
    ) -> Result<Vec<Incident>> {
        self.inner.incidents_page(active_only, limit, after).await
    }

    async fn prune(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<super::Pruned> {
        let pruned = self.inner.prune(before, now).await;
        self.noted(pruned)
    }

    async fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxItem>> {
        self.inner.outbox_pending(limit).await
    }

    async fn outbox_claim(&self, item: &OutboxItem, now: DateTime<Utc>) -> Result<bool> {
        let result = self.inner.outbox_claim(item, now).await;
        self.noted(result)
    }

    async fn outbox_sent(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        thread: Option<(String, String)>,
    ) -> Result<()> {
        let result = self.inner.outbox_sent(item, now, thread).await;
        self.noted(result)
    }

    async fn outbox_failed(
        &self,
        item: &OutboxItem,
        now: DateTime<Utc>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let error = self.text(&error);
        let result = self.inner.outbox_failed(item, now, error, retry_at).await;
        self.noted(result)
    }

    async fn record_diagnosis(
        &self,
        key: &str,
        results: Vec<DiagnosticResult>,
        update: IncidentUpdate,
        follow_ups: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (results, update) = (self.clean(results), self.clean(update));
        let result = self
            .inner
            .record_diagnosis(key, results, update, follow_ups, now)
            .await;
        self.noted(result)
    }

    async fn acknowledge(
        &self,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let by = self.text(by);
        let result = self.inner.acknowledge(key, &by, notifications, now).await;
        self.noted(result)
    }

    async fn resolve(
        &self,
        key: &str,
        by: &str,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let by = self.text(by);
        let result = self.inner.resolve(key, &by, notifications, now).await;
        self.noted(result)
    }

    async fn record_action(
        &self,
        key: &str,
        mut record: ActionRecord,
        notifications: Closing,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        record.by = self.text(&record.by);
        record.detail = self.text(&record.detail);
        let result = self
            .inner
            .record_action(key, record, notifications, now)
            .await;
        self.noted(result)
    }

    async fn due_deadlines(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueDeadline>> {
        self.inner.due_deadlines(now, limit).await
    }

    async fn gauges(&self, now: DateTime<Utc>, late: chrono::Duration) -> Result<super::Gauges> {
        self.inner.gauges(now, late).await
    }

    async fn pending_deadlines(&self) -> Result<i64> {
        self.inner.pending_deadlines().await
    }

    async fn next_deadline_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.inner.next_deadline_at().await
    }

    async fn fire_deadline(
        &self,
        due: DueDeadline,
        notifications: Vec<Notification>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let result = self.inner.fire_deadline(due, notifications, now).await;
        self.noted(result)
    }

    async fn outbox_summarized(&self, items: Vec<(i64, String)>, now: DateTime<Utc>) -> Result<()> {
        let result = self.inner.outbox_summarized(items, now).await;
        self.noted(result)
    }

    async fn outbox_defer(&self, items: Vec<(i64, String)>, at: DateTime<Utc>) -> Result<()> {
        let result = self.inner.outbox_defer(items, at).await;
        self.noted(result)
    }

    async fn add_silence(&self, mut silence: Silence) -> Result<i64> {
        silence.created_by = self.text(&silence.created_by);
        silence.comment = silence.comment.map(|c| self.text(&c));
        let result = self.inner.add_silence(silence).await;
        self.noted(result)
    }

    async fn silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>> {
        self.inner.silences(now).await
    }

    async fn end_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let result = self.inner.end_silence(id, now).await;
        self.noted(result)
    }

    async fn outbox_silenced(
        &self,
        item: &OutboxItem,
        silence_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let result = self.inner.outbox_silenced(item, silence_id, now).await;
        self.noted(result)
    }

    async fn thread(&self, key: &str) -> Result<Option<(String, String)>> {
        self.inner.thread(key).await
    }

    async fn claim_once(&self, key: &str, now: DateTime<Utc>, keep_days: u32) -> Result<bool> {
        let result = self.inner.claim_once(key, now, keep_days).await;
        self.noted(result)
    }

    async fn probe(&self, now: DateTime<Utc>) -> Result<()> {
        let result = self.inner.probe(now).await;
        self.noted(result)
    }
}
