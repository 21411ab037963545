//! One error type for every AWS call, with the single decision that matters: retry or not.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

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
    pub fn from_sdk<E, R>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let (code, retriable) = match &err {
            SdkError::ServiceError(service_err) => {
                let code = service_err.err().code().map(String::from);
                let retriable = code
                    .as_deref()
                    .is_some_and(|c| RETRIABLE_CODES.contains(&c));
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
