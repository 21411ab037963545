//! Fault injection shared by the AWS fakes: queued errors and a per-operation rate limit.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// An error a fake answers instead of running the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedError {
    /// HTTP status, e.g. 400 for throttling, 500/503 for service faults.
    pub status: u16,
    /// The error code as the service spells it, e.g. `ServiceUnavailableException`.
    pub code: String,
    /// Human-readable message; the daemon shows these in posts.
    pub message: String,
}

impl InjectedError {
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        InjectedError {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Why a call was refused before reaching the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The test queued this error for the operation.
    Injected(InjectedError),
    /// The operation exceeded its requests-per-second limit; each service words this itself.
    Throttled,
}

/// Faults configured by a test. Off by default: a fake only misbehaves when asked to.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Requests per second allowed per operation, if limited.
    tps_limit: Option<u32>,
    /// Per operation: start of the current one-second window and requests admitted in it.
    windows: HashMap<String, (Instant, u32)>,
    /// Per operation: errors to answer with, one per call, in order.
    queued: HashMap<String, VecDeque<InjectedError>>,
}

impl Faults {
    pub(crate) fn set_tps_limit(&mut self, limit: Option<u32>) {
        self.tps_limit = limit;
        self.windows.clear();
    }

    pub(crate) fn inject(&mut self, operation: &str, times: usize, error: InjectedError) {
        let queue = self.queued.entry(operation.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(error, times));
    }

    /// Decides whether this call is refused: queued errors first, then the rate limit. Refused
    /// calls do not count against the limit, like a real token bucket.
    pub(crate) fn check(&mut self, operation: &str) -> Option<Refusal> {
        if let Some(error) = self
            .queued
            .get_mut(operation)
            .and_then(|queue| queue.pop_front())
        {
            return Some(Refusal::Injected(error));
        }
        let limit = self.tps_limit?;
        let now = Instant::now();
        let (started, admitted) = self.windows.entry(operation.to_owned()).or_insert((now, 0));
        if now.duration_since(*started) >= Duration::from_secs(1) {
            *started = now;
            *admitted = 0;
        }
        if *admitted >= limit {
            return Some(Refusal::Throttled);
        }
        *admitted += 1;
        None
    }
}
