//! The one wake-up handle: whoever changes the store says what became due, and the task that
//! waits for it runs at once instead of at its next tick. Cheap to clone; all clones share it.

use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub struct Wakeups {
    outbox: Arc<Notify>,
    deadlines: Arc<Notify>,
}

impl Wakeups {
    /// Posts were queued: the outbox worker drains now.
    pub fn posts_queued(&self) {
        self.outbox.notify_one();
    }

    /// Deadlines were scheduled or cancelled: the escalator looks again at the next one.
    pub fn deadlines_changed(&self) {
        self.deadlines.notify_one();
    }

    /// Waits until posts are queued (or a wake-up was left while not waiting).
    pub async fn posts(&self) {
        self.outbox.notified().await;
    }

    /// Waits until deadlines change (or a wake-up was left while not waiting).
    pub async fn deadlines(&self) {
        self.deadlines.notified().await;
    }
}
