//! SNS: one Publish per post to the target topic, subject and plain body, with message
//! attributes subscribers can filter on (type, severity, environment, incident, notification).

use super::{Notifier, Post, SendError, Sent, Summary};
use futures_util::future::BoxFuture;
use pipeline_responder_aws::sns::SnsPublisher;

#[derive(Debug, Clone)]
pub struct SnsNotifier {
    pub sns: SnsPublisher,
}

impl Notifier for SnsNotifier {
    fn kind(&self) -> &'static str {
        "sns"
    }

    fn send<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let incident = post.incident;
            let attributes = [
                ("incident_type", incident.incident_type.as_str().to_string()),
                ("severity", incident.severity.as_str().to_string()),
                ("environment", incident.environment.clone()),
                ("incident_key", incident.key.clone()),
                ("notification", post.notification.kind.as_str().to_string()),
            ];
            let m = post.message;
            self.sns
                .publish(post.target, &m.subject, &m.plain, &attributes)
                .await
                .map(|_| Sent::default())
                .map_err(|e| SendError {
                    message: e.to_string(),
                    retry_after: None,
                    permanent: !e.is_retriable(),
                })
        })
    }

    fn send_summary<'a>(
        &'a self,
        target: &'a str,
        summary: &'a Summary,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            self.sns
                .publish(
                    target,
                    &summary.subject,
                    &summary.plain,
                    &[("notification", "storm_summary".to_string())],
                )
                .await
                .map(|_| ())
                .map_err(|e| SendError::transient(e.to_string()))
        })
    }
}
