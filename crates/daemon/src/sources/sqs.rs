//! The SQS consumer: long-poll, handle each message, delete in a batch what was stored. A bad
//! message is left alone (the redrive policy sends it to the DLQ); a receive failure backs off.
//! A failure of our own store is not the message's fault: the consumer keeps the message in
//! hand (its visibility extended, so its receive count does not grow towards the DLQ), receives
//! nothing new, and retries it with backoff until the store takes it; `/readyz` says why.

use crate::health::{Health, SourceState};
use crate::pipeline::ingest::{HandleError, Handled, Ingest};
use chrono::Utc;
use pipeline_responder_aws::sqs::{Received, SqsQueue};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Counts of what the consumer did (for logs now, metrics later).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SqsStats {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub store_failures: u64,
    pub deleted: u64,
}

/// Consumes the queue until `cancel`; the batch in hand is finished before returning.
pub async fn consume(
    queue: SqsQueue,
    ingest: Ingest,
    health: Arc<Health>,
    cancel: CancellationToken,
) -> SqsStats {
    let mut stats = SqsStats::default();
    let mut backoff = Duration::from_secs(1);
    tracing::info!(queue_url = %queue.url(), "SQS consumer started");
    loop {
        let receive = queue.receive();
        tokio::pin!(receive);
        let (batch, stopping) = tokio::select! {
            batch = &mut receive => (batch, false),
            // A receive in flight may already have taken messages off the queue (SQS answers
            // the long poll whether or not we still listen): wait for its answer (bounded by
            // the long poll) and hand what it brought back at once, so that a deploy does not
            // leave up to ten messages invisible for the whole visibility timeout.
            _ = cancel.cancelled() => (receive.await, true),
        };
        if stopping {
            if let Ok(messages) = &batch {
                hand_back(&queue, messages).await;
            }
            break;
        }
        let messages = match batch {
            Ok(messages) => {
                backoff = Duration::from_secs(1);
                health.sqs(SourceState::Running);
                messages
            }
            Err(e) => {
                health.sqs(SourceState::Failing(e.to_string()));
                tracing::warn!(error = %e, retriable = e.is_retriable(), backoff_secs = backoff.as_secs(), "SQS receive failed");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        stats.received += messages.len() as u64;
        // Long work (a slow store) must not let the messages reappear for another consumer.
        let finished = CancellationToken::new();
        let extender = tokio::spawn(keep_invisible(
            queue.clone(),
            messages.clone(),
            finished.clone(),
        ));
        let mut done: Vec<&Received> = Vec::new();
        let mut released: &[Received] = &[];
        for (i, message) in messages.iter().enumerate() {
            match hold_until_stored(&ingest, message, &mut stats, &cancel).await {
                Some(true) => done.push(message),
                Some(false) => {}
                None => {
                    // Stopping while the store fails: hand the rest back at once.
                    released = &messages[i..];
                    break;
                }
            }
        }
        finished.cancel();
        let _ = extender.await;
        hand_back(&queue, released).await;
        if !done.is_empty() {
            match queue.delete(&done).await {
                Ok(failed) => {
                    stats.deleted += (done.len() - failed.len()) as u64;
                    crate::metrics::metrics()
                        .sqs_messages
                        .with_label_values(&["deleted"])
                        .inc_by((done.len() - failed.len()) as u64);
                    for id in failed {
                        tracing::warn!(message_id = %id, "SQS delete failed; the message will come back and be recognised as a duplicate");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SQS delete failed; the messages will come back and be recognised as duplicates")
                }
            }
        }
    }
    tracing::info!(?stats, "SQS consumer stopped");
    stats
}

/// Makes `messages` visible again at once (`ChangeMessageVisibilityBatch` to 0), for another
/// consumer, when this one stops before it handled them.
async fn hand_back(queue: &SqsQueue, messages: &[Received]) {
    if messages.is_empty() {
        return;
    }
    let back: Vec<&Received> = messages.iter().collect();
    match queue.extend(&back, 0).await {
        Ok(failed) if failed.is_empty() => {
            tracing::info!(
                messages = back.len(),
                "Stopping: messages not handled were handed back to the queue"
            )
        }
        Ok(failed) => {
            tracing::warn!(messages = back.len(), refused = failed.len(), "Stopping: some messages could not be handed back; they return after their visibility timeout")
        }
        Err(e) => {
            tracing::warn!(messages = back.len(), error = %e, "Could not hand messages back; they return after their visibility timeout")
        }
    }
}

/// Extends the visibility of a batch every half visibility timeout until `finished`.
async fn keep_invisible(queue: SqsQueue, messages: Vec<Received>, finished: CancellationToken) {
    let visibility = queue.visibility_secs().max(2);
    loop {
        tokio::select! {
            _ = finished.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(visibility / 2)) => {}
        }
        let batch: Vec<&Received> = messages.iter().collect();
        match queue.extend(&batch, visibility).await {
            Ok(failed) => {
                for message_id in failed {
                    tracing::warn!(%message_id, "SQS visibility extension refused; the message may be handled twice (recognised as a duplicate)");
                }
            }
            Err(e) => {
                tracing::warn!(messages = batch.len(), error = %e, "SQS visibility extension failed")
            }
        }
        tracing::info!(
            messages = messages.len(),
            visibility_secs = visibility,
            "Batch still in work; visibility extended"
        );
    }
}

fn count(outcome: &str) {
    crate::metrics::metrics()
        .sqs_messages
        .with_label_values(&[outcome])
        .inc();
}

/// Longest pause between two tries of a message the store could not take.
const STORE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Handles one message, retrying it while the store fails: `Some(true)` when it may be deleted,
/// `Some(false)` when it is left to the redrive policy, `None` when `cancel` came first.
async fn hold_until_stored(
    ingest: &Ingest,
    message: &Received,
    stats: &mut SqsStats,
    cancel: &CancellationToken,
) -> Option<bool> {
    let mut pause = Duration::from_secs(1);
    loop {
        match handle(ingest, message, stats).await {
            Handling::Done(delete) => return Some(delete),
            Handling::StoreFailed => {
                tracing::warn!(message_id = %message.message_id, retry_in_secs = pause.as_secs(), "Store failed; holding the message and receiving nothing new until it works");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(STORE_RETRY_MAX);
            }
        }
    }
}

enum Handling {
    /// Handled: whether the message may be deleted.
    Done(bool),
    /// Our store failed; the message is fine.
    StoreFailed,
}

/// Handles one message once.
async fn handle(ingest: &Ingest, message: &Received, stats: &mut SqsStats) -> Handling {
    let delete = match ingest.handle("sqs", &message.body, Utc::now()).await {
        Ok(Handled::Stored { applied, kind }) => {
            stats.stored += 1;
            count("stored");
            tracing::debug!(message_id = %message.message_id, kind, opened = ?applied.opened, "Message stored");
            true
        }
        Ok(Handled::Duplicate) => {
            stats.duplicates += 1;
            count("duplicate");
            true
        }
        Ok(Handled::Ignored { kind, reason }) => {
            stats.ignored += 1;
            count("ignored");
            tracing::info!(message_id = %message.message_id, kind = %kind, reason = %reason, "Message ignored");
            true
        }
        Err(HandleError::Rejected(e)) => {
            stats.rejected += 1;
            count("rejected");
            tracing::warn!(
                message_id = %message.message_id,
                reason = e.reason(),
                error = %e,
                receive_count = message.receive_count,
                "Message rejected; left for the dead-letter queue"
            );
            false
        }
        Err(HandleError::Store(e)) => {
            stats.store_failures += 1;
            count("store_failed");
            tracing::error!(message_id = %message.message_id, error = %e, "Store failed");
            return Handling::StoreFailed;
        }
    };
    Handling::Done(delete)
}
