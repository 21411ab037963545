//! The test support itself, exercised through the clients the daemon uses (the real AWS SDK
//! clients, plain HTTP for Slack): when a daemon test fails against a fake, these say the fake
//! is not the reason.

mod cloudwatch;
mod codepipeline;
mod codepipeline_control;
mod moto;
mod slack;

use chrono::{DateTime, Utc};

/// A fixed instant with milliseconds, like the timestamps AWS returns.
fn at(epoch_millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(epoch_millis).expect("test timestamps are in range")
}

/// The SDK turns fractional epoch seconds into its own `DateTime` through an `f64`, so the
/// millisecond can come back one lower; that is how the real services behave too.
fn assert_same_instant(
    sdk: Option<&aws_sdk_codepipeline::primitives::DateTime>,
    expected: DateTime<Utc>,
) {
    let sdk = sdk.expect("the timestamp is present");
    let millis = sdk.to_millis().expect("timestamp fits in i64 milliseconds");
    let drift = (millis - expected.timestamp_millis()).abs();
    assert!(drift <= 1, "timestamp {sdk} is not {expected}");
}
