//! What `/readyz` reports: the sources say how their last attempt went; the store is asked at
//! each probe. Liveness (`/healthz`) only needs the process to answer.

use std::sync::Mutex;

/// How the SQS consumer's last receive went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// Configured, first receive not answered yet.
    Starting,
    Running,
    /// The last receive failed with this error.
    Failing(String),
}

/// Shared by the sources and the HTTP handlers.
#[derive(Debug)]
pub struct Health {
    sqs: Option<Mutex<SourceState>>,
}

impl Health {
    /// `sqs`: whether an SQS source is configured (it must be running to be ready).
    pub fn new(sqs: bool) -> Self {
        Self {
            sqs: sqs.then(|| Mutex::new(SourceState::Starting)),
        }
    }

    pub fn sqs(&self, state: SourceState) {
        if let Some(s) = &self.sqs {
            *s.lock().unwrap_or_else(|p| p.into_inner()) = state;
        }
    }

    /// Why the SQS source is not running, if it is configured and not running.
    pub fn sqs_problem(&self) -> Option<String> {
        let state = self
            .sqs
            .as_ref()?
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match state {
            // Started and no failure seen: the first long poll may take `wait_time_secs` to
            // answer on an empty queue, and a broken queue or credentials fail within seconds.
            SourceState::Running | SourceState::Starting => None,
            SourceState::Failing(e) => Some(format!("sqs: receive failing: {e}")),
        }
    }
}
