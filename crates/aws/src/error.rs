//! One error type for every AWS call, with the single decision that matters: retry or not.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// A failed AWS call, safe to log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {operation}: {message}")]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// AWS error code (`ThrottlingException`, `QueueDoesNotExist`, ...), when the service sent one.
    pub code: Option<String>,
    pub message: String,
    pub(crate) retriable: bool,
}

/// Error codes that mean "try again later".
const RETRIABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "KMSThrottlingException",
];

impl AwsError {
    /// Classifies an SDK error: network failures, timeouts, throttling and 5xx are retriable.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (code, retriable) = match &err {
            SdkError::ServiceError(service_err) => {
                let code = service_err.err().code().map(String::from);
                // A throttling/unavailable code, or a status that means "later" even when the
                // body names no code (a bare 503 from a load balancer, 429, 408).
                let status = service_err.raw().status().as_u16();
                let retriable = code
                    .as_deref()
                    .is_some_and(|c| RETRIABLE_CODES.contains(&c))
                    || status >= 500
                    || status == 429
                    || status == 408;
                (code, retriable)
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => (None, true),
            _ => (None, false),
        };
        Self {
            service,
            operation,
            code,
            message: DisplayErrorContext(&err).to_string(),
            retriable,
        }
    }

    /// Whether retrying later can succeed.
    pub fn is_retriable(&self) -> bool {
        self.retriable
    }
}
