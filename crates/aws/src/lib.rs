//! AWS adapters: every call the daemon makes to AWS goes through this crate, so retries, error
//! classification and the list of operations used (for the IAM policy) live in one place.

pub mod diagnostics;
pub mod error;
pub mod metrics;
pub mod sns;
pub mod sqs;

pub use error::AwsError;

/// Loads the AWS configuration the standard way (environment, profile, ECS task role), in the
/// configured region. Endpoints follow `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, which is
/// how tests and the local demo point the real SDK clients at emulators.
pub async fn load_sdk_config(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .load()
        .await
}
