//! Keeps the long-running tasks alive: a task that panics or returns while the daemon is still
//! running is logged and restarted with backoff; one that keeps failing stops the daemon with a
//! non-zero exit, so ECS replaces it, rather than leaving it half-alive.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Restarts allowed within [`FAILURE_WINDOW`] before giving up.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs `make()`'s task until `stop`; restarts it when it ends early. Cancels `fatal` and returns
/// after [`MAX_FAILURES`] failures within [`FAILURE_WINDOW`]. Returns the number of restarts.
pub async fn supervise<F, Fut>(
    name: &'static str,
    stop: CancellationToken,
    fatal: CancellationToken,
    make: F,
) -> usize
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut failures: Vec<Instant> = Vec::new();
    let mut backoff = Duration::from_secs(1);
    let mut restarts = 0;
    loop {
        let outcome = tokio::spawn(make()).await;
        if stop.is_cancelled() {
            return restarts;
        }
        match outcome {
            Err(e) if e.is_panic() => tracing::error!(task = name, "Task panicked"),
            _ => tracing::error!(task = name, "Task stopped unexpectedly"),
        }
        let now = Instant::now();
        failures.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
        failures.push(now);
        if failures.len() >= MAX_FAILURES {
            tracing::error!(
                task = name,
                failures = failures.len(),
                "Task keeps failing; stopping the daemon"
            );
            fatal.cancel();
            return restarts;
        }
        tokio::select! {
            _ = stop.cancelled() => return restarts,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        restarts += 1;
        tracing::warn!(task = name, restarts, "Task restarted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_with_backoff_and_then_runs() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (stop, fatal) = (CancellationToken::new(), CancellationToken::new());
        let counter = Arc::clone(&runs);
        let stop_inner = stop.clone();
        let started = Instant::now();
        let supervisor = tokio::spawn(supervise("test", stop.clone(), fatal.clone(), move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let stop = stop_inner.clone();
            async move {
                if n < 2 {
                    panic!("boom {n}");
                }
                stop.cancelled().await;
            }
        }));
        // Two failures: restarts after 1 s and 2 s of backoff, then the third run stays up.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        stop.cancel();
        assert_eq!(supervisor.await.unwrap_or(99), 2);
        assert!(!fatal.is_cancelled());
        assert!(started.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_keeps_failing_stops_the_daemon() {
        let (stop, fatal) = (CancellationToken::new(), CancellationToken::new());
        let restarts = supervise("test", stop, fatal.clone(), || async {}).await;
        assert!(fatal.is_cancelled());
        assert_eq!(restarts, MAX_FAILURES - 1);
    }
}
