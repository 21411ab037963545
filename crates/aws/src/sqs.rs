//! The EventBridge queue: long-poll receive, batch delete after the effects are stored, and
//! visibility extension while work runs. Messages that cannot be handled are simply not deleted:
//! the queue's redrive policy moves them to the dead-letter queue.

use crate::AwsError;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
};

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    /// How many times SQS has delivered it (1 on the first delivery).
    pub receive_count: u32,
}

/// The queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    wait_secs: i32,
    max_messages: i32,
    visibility_secs: i32,
}

impl SqsQueue {
    pub fn new(
        config: &aws_config::SdkConfig,
        url: &str,
        wait_secs: u64,
        max_messages: u64,
        visibility_secs: u64,
    ) -> Self {
        Self {
            client: crate::metrics::sqs(config),
            url: url.to_string(),
            wait_secs: i32::try_from(wait_secs.min(20)).unwrap_or(20),
            max_messages: i32::try_from(max_messages.clamp(1, 10)).unwrap_or(10),
            visibility_secs: i32::try_from(visibility_secs).unwrap_or(60),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The visibility timeout requested on receive, in seconds.
    pub fn visibility_secs(&self) -> u64 {
        u64::try_from(self.visibility_secs).unwrap_or(60)
    }

    /// Long-polls for up to `max_messages` messages.
    pub async fn receive(&self) -> Result<Vec<Received>, AwsError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .wait_time_seconds(self.wait_secs)
            .max_number_of_messages(self.max_messages)
            .visibility_timeout(self.visibility_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(
                crate::timeouts(std::time::Duration::from_secs(self.wait_secs.max(0) as u64)),
            ))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sqs", "ReceiveMessage", e))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    message_id: m.message_id?,
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                    receive_count,
                })
            })
            .collect())
    }

    /// Deletes handled messages (batches of 10); returns the message ids that failed.
    pub async fn delete(&self, messages: &[&Received]) -> Result<Vec<String>, AwsError> {
        let mut failed = Vec::new();
        for chunk in messages.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(&m.receipt_handle)
                        .build()
                        .ok()
                })
                .collect();
            let output = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("sqs", "DeleteMessageBatch", e))?;
            failed.extend(failed_messages(chunk, &output.failed));
        }
        Ok(failed)
    }

    /// Keeps messages invisible for `secs` more seconds while they are worked on: one
    /// `ChangeMessageVisibilityBatch` per 10 messages. Returns the ids of the messages SQS did not
    /// extend (their receipt handle no longer valid: the message came back to another consumer).
    pub async fn extend(&self, messages: &[&Received], secs: u64) -> Result<Vec<String>, AwsError> {
        let secs = i32::try_from(secs).unwrap_or(i32::MAX);
        let mut failed = Vec::new();
        for chunk in messages.chunks(10) {
            let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .receipt_handle(&m.receipt_handle)
                        .visibility_timeout(secs)
                        .build()
                        .ok()
                })
                .collect();
            let output = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("sqs", "ChangeMessageVisibilityBatch", e))?;
            failed.extend(failed_messages(chunk, &output.failed));
        }
        Ok(failed)
    }
}

/// The message ids of a batch call's failed entries (entry ids are `m<index in the chunk>`).
fn failed_messages<'a>(
    chunk: &'a [&Received],
    failed: &'a [BatchResultErrorEntry],
) -> impl Iterator<Item = String> + 'a {
    failed.iter().filter_map(|f| {
        let index = f.id.strip_prefix('m')?.parse::<usize>().ok()?;
        chunk.get(index).map(|m| m.message_id.clone())
    })
}
