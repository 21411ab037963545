//! Helpers shared by the test modules.
#![allow(dead_code)]

use pipeline_responder_core::event::ParseError;
use serde_json::Value;

/// The AWS samples (`fixtures/events`, copied from the project's shared fixtures).
pub const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/events");

/// The shipped configuration (the runbook as written) and the local demo's.
pub const SHIPPED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../config/pipeline-responder.toml"
));
pub const LOCAL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../config/local.toml"
));

/// Samples written for these tests.
pub const TEST_DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/events");

/// The text of a shared fixture, e.g. `fixture("codepipeline-pipeline-failed.json")`.
pub fn fixture(name: &str) -> String {
    let path = format!("{FIXTURE_DIR}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading fixture {path}: {e}"))
}

/// The text of a sample under `tests/data/events`.
pub fn test_data(name: &str) -> String {
    let path = format!("{TEST_DATA_DIR}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading test data {path}: {e}"))
}

/// `message` as the string `Message` of an SNS envelope shaped like the shared sample.
pub fn sns_envelope(message: &str, message_id: &str) -> String {
    let mut envelope: Value = serde_json::from_str(&fixture("sqs-body-sns-envelope.json"))
        .expect("the shared SNS envelope sample is JSON");
    envelope["Message"] = Value::String(message.to_string());
    envelope["MessageId"] = Value::String(message_id.to_string());
    envelope.to_string()
}

/// The field a [`ParseError`] names, if it names one.
pub fn field_of(e: &ParseError) -> Option<&str> {
    match e {
        ParseError::NotJson { field, .. }
        | ParseError::MissingField { field }
        | ParseError::EmptyField { field }
        | ParseError::WrongType { field, .. }
        | ParseError::UnknownValue { field, .. }
        | ParseError::BadTimestamp { field } => Some(field),
        ParseError::Empty
        | ParseError::TooLarge { .. }
        | ParseError::UnrecognisedShape
        | ParseError::NestedTooDeep(_) => None,
    }
}
