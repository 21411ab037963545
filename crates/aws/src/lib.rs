//! AWS adapters: every call the daemon makes to AWS goes through this crate, so retries, error
//! classification and the list of operations used (for the IAM policy) live in one place.

pub mod diagnostics;
pub mod error;
pub mod metrics;
pub mod remediation;
pub mod sns;
pub mod sqs;

pub use aws_config::SdkConfig;
pub use error::AwsError;

use std::time::Duration;

/// Loads the AWS configuration the standard way (environment, profile, ECS task role), in the
/// configured region. Endpoints follow `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, which is
/// how tests and the local demo point the real SDK clients at emulators.
///
/// Every call is bounded in time ([`timeouts`]): without it an AWS endpoint that accepts the
/// connection and never answers would hold its caller (a post, a diagnosis) for as long as the
/// TCP connection lives.
pub async fn load_sdk_config(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .timeout_config(timeouts(Duration::ZERO))
        .load()
        .await
}

/// Connect within 5 s; each attempt answered within 20 s (plus `wait`, for a long poll that holds
/// the request open on purpose); the whole call, retries included, within 60 s (plus `wait`).
/// Generous for AWS (answers in milliseconds) so that a slow but working endpoint is not cut off;
/// what they bound is an answer that never comes.
pub fn timeouts(wait: Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(20) + wait)
        .operation_timeout(Duration::from_secs(60) + wait)
        .build()
}
