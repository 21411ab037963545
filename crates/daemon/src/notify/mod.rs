//! Notifications: the outbox worker drains stored notifications to Slack and SNS, with retries
//! and backoff; a failed channel is counted and does not stop the others.

pub mod markup;
pub mod outbox;
pub mod render;
pub mod slack;
pub mod storm;

use std::time::Duration;

/// Longest wait a server's Retry-After can impose (a huge value would overflow time arithmetic
/// and hold the lane forever).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

/// A Retry-After header's delay in seconds, capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    let secs = header?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_retry_after_is_capped() {
        assert_eq!(
            retry_after(Some("18446744073709551615")),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(Some(" 30 ")), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(Some("-5")), None);
        assert_eq!(retry_after(None), None);
    }
}
