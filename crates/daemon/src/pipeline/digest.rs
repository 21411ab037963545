//! The weekly digest (runbook "Weekly Maintenance"): on the configured schedule, per environment
//! the success rate, rollbacks, incidents by type, MTTA/MTTR, alarms that flapped and executions
//! stuck or very old, posted to Slack through its notifier (the outbox's retry rule, like storm
//! summaries). One post per period across replicas and restarts (a
//! claim in the store decides); a digest missed while the daemon was down is posted when it
//! comes back, if that is within [`CATCH_UP`].

use crate::metrics::metrics;
use crate::notify::registry::Notifiers;
use crate::notify::{backoff, Summary};
use crate::pipeline::digest_schedule::{last_run, next_run, period_key};
use crate::pipeline::figures;
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use pipeline_responder_aws::diagnostics::Diagnostics;
use pipeline_responder_core::config::Config;
use pipeline_responder_core::stats::{self, Window};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A digest whose time passed less than this long ago is still posted.
pub const CATCH_UP: Duration = Duration::hours(6);
/// How long the claim of a period is kept.
const CLAIM_DAYS: u32 = 60;
/// Attempts per digest post.
const POST_ATTEMPTS: u32 = 5;
/// The longest single sleep (so a wall-clock jump is noticed within the hour).
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// The digest's Slack posts: (channel, text) for each channel, with the environments whose
/// posts go there.
pub async fn compose(
    config: &Config,
    aws: &Diagnostics,
    incidents: &[pipeline_responder_core::record::Incident],
    window: Window,
    problems: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut by_channel: BTreeMap<String, Vec<stats::EnvironmentFigures>> = BTreeMap::new();
    for env in &config.environments {
        let channel = config
            .digest
            .slack_channel
            .clone()
            .unwrap_or_else(|| env.slack_channel.clone());
        let f = figures::environment_figures(
            aws,
            env,
            window,
            incidents,
            config.digest.flap_secs as i64,
            config.digest.stale_execution_secs as i64,
            problems,
        )
        .await;
        by_channel.entry(channel).or_default().push(f);
    }
    by_channel
        .into_iter()
        .map(|(channel, figures)| {
            let mut text = stats::digest_markdown(&figures);
            if !problems.is_empty() {
                text.push_str("\n_Some figures could not be fetched:_ ");
                text.push_str(&problems.join("; "));
                text.push('\n');
            }
            (channel, text)
        })
        .collect()
}

/// Posts the digest on schedule.
#[derive(Clone)]
pub struct DigestTask {
    pub config: Arc<Config>,
    pub store: Store,
    pub aws: Diagnostics,
    /// The configured notifiers; the digest goes to the `slack` one.
    pub notifiers: Notifiers,
}

impl std::fmt::Debug for DigestTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestTask").finish_non_exhaustive()
    }
}

impl DigestTask {
    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let schedule = &self.config.digest;
        let mut done: Option<DateTime<Utc>> = None;
        tracing::info!(next = %next_run(schedule, Utc::now()), "Digest scheduled");
        loop {
            let now = Utc::now();
            let run = last_run(schedule, now);
            if now - run <= CATCH_UP && done != Some(run) && self.once(run, now).await {
                done = Some(run);
            }
            let wait = (next_run(schedule, Utc::now()) - Utc::now())
                .to_std()
                .unwrap_or_default()
                .min(MAX_SLEEP);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claims the period of `run` and posts its digest. Returns false only when the claim could
    /// not be decided (store error), so the next pass tries again.
    async fn once(&self, run: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let key = period_key(run);
        match self.store.claim_once(&key, now, CLAIM_DAYS).await {
            Ok(true) => {}
            Ok(false) => {
                metrics().digests.with_label_values(&["skipped"]).inc();
                tracing::info!(period = %key, "Digest already posted (another replica or before a restart)");
                return true;
            }
            Err(e) => {
                tracing::error!(period = %key, error = %e, "Digest: cannot claim the period; retried");
                return false;
            }
        }
        let window = Window {
            start: run - Duration::days(i64::from(self.config.digest.window_days)),
            end: run,
        };
        let incidents = match self.store.incidents(false).await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, "Digest: incidents unreadable; posting without them");
                Vec::new()
            }
        };
        let mut problems = Vec::new();
        let posts = compose(&self.config, &self.aws, &incidents, window, &mut problems).await;
        let Some(slack) = self.notifiers.get("slack") else {
            tracing::info!(period = %key, "Digest: Slack is not configured; nothing posted");
            return true;
        };
        for (channel, text) in posts {
            let digest = Summary {
                subject: format!("Digest {key}"),
                plain: text.clone(),
                slack: text,
                grouped: 0,
            };
            // A digest is one post a week: worth a few retries (Slack rate limits, a blip).
            let mut attempt = 0;
            loop {
                attempt += 1;
                match slack.send_summary(&channel, &digest).await {
                    Ok(()) => {
                        metrics().digests.with_label_values(&["posted"]).inc();
                        tracing::info!(period = %key, channel = %channel, "Digest posted");
                        break;
                    }
                    Err(e) if !e.permanent && attempt < POST_ATTEMPTS => {
                        tracing::warn!(period = %key, channel = %channel, attempt, error = %e.message, "Digest post failed; retrying");
                        tokio::time::sleep(backoff(attempt, &e)).await;
                    }
                    Err(e) => {
                        metrics().digests.with_label_values(&["failed"]).inc();
                        tracing::error!(period = %key, channel = %channel, attempt, error = %e.message, "Digest post failed; giving up for this period");
                        break;
                    }
                }
            }
        }
        true
    }
}
