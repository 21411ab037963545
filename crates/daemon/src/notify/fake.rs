//! A notifier for unit tests: records what it is handed and answers what the test scripted, so
//! the outbox's stages (claim, silence, storm, send, record) are tested without any service.
#![allow(clippy::unwrap_used)]

use super::{Notifier, Post, SendError, Sent, Summary};
use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// What the fake was handed: (target, notification kind or `summary`, incident key or count).
pub type Call = (String, String, String);

#[derive(Debug, Clone)]
pub struct FakeNotifier {
    kind: &'static str,
    grouped: bool,
    calls: Arc<Mutex<Vec<Call>>>,
    /// Answers of the next sends, in order; `Ok` once they run out.
    script: Arc<Mutex<VecDeque<Result<(), SendError>>>>,
}

impl FakeNotifier {
    /// A fake serving channels of `kind`; `grouped`: whether storm control groups it.
    pub fn new(kind: &'static str, grouped: bool) -> Self {
        Self {
            kind,
            grouped,
            calls: Arc::default(),
            script: Arc::default(),
        }
    }

    /// The next sends answer these, in order.
    pub fn answer(&self, results: impl IntoIterator<Item = Result<(), SendError>>) {
        self.script.lock().unwrap().extend(results);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn next(&self) -> Result<(), SendError> {
        self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))
    }
}

impl Notifier for FakeNotifier {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn groups_in_storms(&self) -> bool {
        self.grouped
    }

    fn send<'a>(&'a self, post: Post<'a>) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push((
                post.target.to_string(),
                post.notification.kind.as_str().to_string(),
                post.incident.key.clone(),
            ));
            self.next().map(|_| Sent::default())
        })
    }

    fn send_summary<'a>(
        &'a self,
        target: &'a str,
        summary: &'a Summary,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push((
                target.to_string(),
                "summary".to_string(),
                summary.grouped.to_string(),
            ));
            self.next()
        })
    }
}
