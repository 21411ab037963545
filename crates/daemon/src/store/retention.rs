//! The retention sweep (`store.retention_days`): once an hour, what is older than the retention
//! and no longer needed is removed from the embedded store (see [`super::Backend::prune`]); DynamoDB
//! items carry `expires_at` for the table's TTL instead.

use super::Store;
use chrono::Utc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the sweep runs.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Sweeps at start and then every [`EVERY`] until `stop`.
pub async fn run(store: Store, days: u32, stop: CancellationToken) {
    loop {
        let now = Utc::now();
        match store
            .prune(now - chrono::Duration::days(days.into()), now)
            .await
        {
            Ok(pruned) if pruned != super::Pruned::default() => tracing::info!(
                incidents = pruned.incidents,
                events = pruned.events,
                other = pruned.other,
                retention_days = days,
                "Retention: removed what is older than the retention"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Retention: the sweep failed; retrying at the next one")
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
