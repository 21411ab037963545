//! Records what a fake received and lets a test wait for it without sleeping.

use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

/// An append-only log of requests plus a change signal.
///
/// Waiting goes through a `watch` channel and `tokio::time::timeout`, so a waiting test wakes on
/// the request itself (no polling interval) and a test with paused time still works.
#[derive(Debug)]
pub(crate) struct Recorder<T> {
    /// Everything received so far, in arrival order.
    items: Mutex<Vec<T>>,
    /// Bumped after every push; waiters subscribe to it.
    changed: watch::Sender<usize>,
}

impl<T: Clone + Debug> Recorder<T> {
    pub(crate) fn new() -> Self {
        Recorder {
            items: Mutex::new(Vec::new()),
            changed: watch::Sender::new(0),
        }
    }

    pub(crate) fn push(&self, item: T) {
        let len = {
            let mut items = self.lock();
            items.push(item);
            items.len()
        };
        self.changed.send_replace(len);
    }

    pub(crate) fn snapshot(&self) -> Vec<T> {
        self.lock().clone()
    }

    /// Waits until `done` holds for the recorded items and returns them; panics after `timeout`
    /// with `what` and everything recorded, which is what a failing test needs to show.
    pub(crate) async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[T]) -> bool,
    ) -> Vec<T> {
        let mut changes = self.changed.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                {
                    let items = self.lock();
                    if done(&items) {
                        return items.clone();
                    }
                }
                // The sender lives as long as `self`, so this cannot fail while we borrow it.
                let _ = changes.changed().await;
            }
        })
        .await;
        match waited {
            Ok(items) => items,
            Err(_) => panic!(
                "timed out after {timeout:?} waiting for {what}; recorded so far: {:#?}",
                self.snapshot()
            ),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        // A panic while holding the lock can only come from a test assertion elsewhere; the
        // log itself is still consistent, so keep serving it.
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A recorded request that names the operation it called.
pub(crate) trait Operation {
    fn operation(&self) -> &str;
}

impl<T: Clone + Debug + Operation> Recorder<T> {
    /// The requests to `operation`, in arrival order.
    pub(crate) fn calls_to(&self, operation: &str) -> Vec<T> {
        self.lock()
            .iter()
            .filter(|c| c.operation() == operation)
            .cloned()
            .collect()
    }

    /// Waits until `operation` of `service` was called at least `n` times; panics after
    /// `timeout`.
    pub(crate) async fn wait_for_calls(
        &self,
        service: &str,
        operation: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<T> {
        let what = format!("{n} {service} {operation} calls");
        self.wait_until(&what, timeout, |calls| {
            calls.iter().filter(|c| c.operation() == operation).count() >= n
        })
        .await
    }
}
