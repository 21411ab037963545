//! Notifications: the outbox worker drains stored notifications to Slack and SNS, with retries
//! and backoff; a failed channel is counted and does not stop the others.

pub mod markup;
pub mod outbox;
pub mod render;
pub mod slack;
pub mod storm;

use std::time::Duration;

/// A successful send.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    /// A new Slack thread (channel, ts) to reply under later.
    pub thread: Option<(String, String)>,
}

/// A failed send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// What failed, safe to log (no URL, no token).
    pub message: String,
    /// The server's Retry-After, if it sent one.
    pub retry_after: Option<Duration>,
    /// Retrying will not help (bad token, unknown channel).
    pub permanent: bool,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after: None,
            permanent: true,
        }
    }
}
