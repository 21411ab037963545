//! SNS `Publish` of incident posts to the environment's topic.

use crate::AwsError;
use aws_sdk_sns::types::MessageAttributeValue;

/// Publishes incident posts.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
}

impl SnsPublisher {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: crate::metrics::sns(config),
        }
    }

    /// Publishes `body` with `subject` and string message attributes; returns the message id.
    pub async fn publish(
        &self,
        topic_arn: &str,
        subject: &str,
        body: &str,
        attributes: &[(&str, String)],
    ) -> Result<String, AwsError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(topic_arn)
            .subject(sns_subject(subject))
            .message(body);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| AwsError {
                    service: "sns",
                    operation: "Publish",
                    code: None,
                    message: e.to_string(),
                    retriable: false,
                })?;
            request = request.message_attributes(*name, value);
        }
        let output = request
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sns", "Publish", e))?;
        Ok(output.message_id.unwrap_or_default())
    }
}

/// SNS subjects: ASCII text without line breaks, at most 100 characters.
fn sns_subject(subject: &str) -> String {
    subject
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_are_ascii_single_line_and_short() {
        let s = super::sns_subject("🔴 [HIGH] production\nPipeline execution failed — kiro");
        assert!(s.is_ascii() && !s.contains('\n'), "{s}");
        assert_eq!(super::sns_subject(&"x".repeat(300)).len(), 100);
    }
}
